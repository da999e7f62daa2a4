"""The threads stage's DuckDB work: everything that needs the whole corpus at once.

DuckDB (embedded, spilling to a database file in the stage's folder) gives the events
their total order, maps URIs, DIDs and record keys to integers, counts scope, streams
the replay's input as integers only, and joins each example's context texts at the
end. The replay (:mod:`.replay`) never sees an event or a text.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from blueprint.actions import ACTIONS
from blueprint.simpact import duck
from blueprint.simpact.threads.topics import keyword_pattern

if TYPE_CHECKING:
    from blueprint.simpact.config import ThreadConfig

BATCH = 65_536


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def connect(out_dir: Path, memory_limit: str | None, threads: int | None):
    """A connection to a fresh database file in ``out_dir`` (spilling beside it), and the file's path."""
    db = out_dir / "_threads.duckdb"
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    con = duck.connect(db, temp_directory=out_dir / "_threads.tmp", memory_limit=memory_limit, threads=threads,
                       ordered=False)  # every order that matters is an ORDER BY
    return con, db


def load_events(con, events_dir: Path, cfg: ThreadConfig) -> None:
    """The events in their total order (``seq``), each with its URI and its language flag."""
    parts = sorted((events_dir / "events").glob("part-*.parquet"))
    if parts:
        source = f"read_parquet({_sql_list([str(p) for p in parts])})"
    else:
        source = ("(SELECT NULL::VARCHAR src, NULL::BIGINT line, NULL::VARCHAR did, NULL::BIGINT time_us, "
                  "NULL::VARCHAR collection, NULL::VARCHAR rkey, NULL::VARCHAR action, NULL::VARCHAR text, "
                  "NULL::VARCHAR[] langs, NULL::VARCHAR reply_parent, NULL::VARCHAR subject_uri, "
                  "NULL::VARCHAR subject_did WHERE false)")
    lang = "true" if cfg.langs is None else f"coalesce(langs = {_sql_list(cfg.langs)}::VARCHAR[], false)"
    con.execute(f"""
        CREATE TABLE ev AS
        SELECT (row_number() OVER (ORDER BY time_us, src, line) - 1)::BIGINT AS seq,
               src, line, did, time_us, collection, rkey, action, text, reply_parent, subject_uri, subject_did,
               'at://' || did || '/' || collection || '/' || rkey AS uri,
               {lang} AS lang_ok,
               coalesce(length(text) > 0, false) AS has_text
        FROM {source}""")


def mark_topics(con, cfg: ThreadConfig) -> None:
    """``topic(seq)`` for every event with a text that matches the keywords (Python's regex, in batches)."""
    con.execute("CREATE TABLE topic (seq BIGINT)")
    if cfg.topics is None:
        return
    rx = keyword_pattern(cfg.topics)
    reader = con.cursor().sql("SELECT seq, text FROM ev WHERE has_text").to_arrow_reader(BATCH)
    for batch in reader:
        seqs = batch.column(0).to_numpy()
        hit = np.fromiter((rx.search(t) is not None for t in batch.column(1).to_pylist()), bool, batch.num_rows)
        if hit.any():
            found = pa.table({"seq": pa.array(seqs[hit], pa.int64())})  # noqa: F841 (read by DuckDB)
            con.execute("INSERT INTO topic SELECT seq FROM found")


def scope(con, cfg: ThreadConfig) -> dict:
    """The ``scope(did)`` table, and the filter counts of the report."""
    topic = "true" if cfg.topics is None else "t.seq IS NOT NULL"
    con.execute(f"""
        CREATE TABLE kept AS
        SELECT e.did, e.lang_ok, {topic} AS topic_ok
        FROM ev e LEFT JOIN topic t ON t.seq = e.seq WHERE e.action IN ('post', 'reply')""")
    n, lang_kept, kept = con.execute(
        "SELECT count(*), count(*) FILTER (lang_ok), count(*) FILTER (lang_ok AND topic_ok) FROM kept").fetchone()
    if cfg.min_user_posts == 0:
        con.execute("CREATE TABLE scope AS SELECT DISTINCT did FROM ev")
    else:
        con.execute(f"""CREATE TABLE scope AS SELECT did FROM kept WHERE lang_ok AND topic_ok
                        GROUP BY did HAVING count(*) >= {int(cfg.min_user_posts)}""")
    seen = con.execute("SELECT count(DISTINCT did) FROM ev").fetchone()[0]
    in_scope = con.execute("SELECT count(*) FROM scope").fetchone()[0]
    return {
        "language": {"langs": list(cfg.langs) if cfg.langs else None, "posts_and_replies": n,
                     "kept": lang_kept},
        "topic": {"keywords": len(cfg.topics) if cfg.topics else None, "posts_and_replies": lang_kept,
                  "kept": kept},
        "scope": {"min_user_posts": cfg.min_user_posts, "users_seen": seen, "users_in_scope": in_scope},
    }


def map_ids(con) -> tuple[int, int, int]:
    """Integer ids for post URIs, posting users and record keys; returns how many of each."""
    posts = "action IN ('post', 'reply', 'quote')"
    con.execute(f"CREATE TABLE puri AS SELECT uri, (row_number() OVER () - 1)::BIGINT AS uid "
                f"FROM (SELECT DISTINCT uri FROM ev WHERE {posts})")
    con.execute(f"CREATE TABLE pdid AS SELECT did, (row_number() OVER () - 1)::BIGINT AS pid "
                f"FROM (SELECT DISTINCT did FROM ev WHERE {posts})")
    records = _sql_list(["like", "unlike", "repost", "unrepost", "follow", "unfollow", "block", "unblock"])
    con.execute(f"CREATE TABLE rec AS SELECT did, collection, rkey, (row_number() OVER () - 1)::BIGINT AS rid "
                f"FROM (SELECT DISTINCT did, collection, rkey FROM ev WHERE list_contains({records}, action))")
    return tuple(con.execute(f"SELECT (SELECT count(*) FROM {t})" ).fetchone()[0] for t in ("puri", "pdid", "rec"))


def slim_events(con, cfg: ThreadConfig):
    """The events in order as integers only: what the replay reads."""
    codes = _sql_list(ACTIONS)
    topic = "true" if cfg.topics is None else "t.seq IS NOT NULL"
    return con.cursor().sql(f"""
        SELECT e.seq, (list_position({codes}, e.action) - 1)::TINYINT AS a,
               coalesce(u.uid, -1) AS uid, coalesce(pu.uid, -1) AS parent, coalesce(su.uid, -1) AS subj,
               coalesce(d.pid, -1) AS actor, coalesce(sd.pid, -1) AS subj_did, coalesce(r.rid, -1) AS rid,
               s.did IS NOT NULL AS in_scope, e.lang_ok, {topic} AS topic_ok, e.has_text,
               e.reply_parent IS NOT NULL AND e.reply_parent = e.uri AS self_ref
        FROM ev e
        LEFT JOIN puri u ON u.uri = e.uri AND e.action IN ('post', 'reply', 'quote', 'post_update', 'post_delete')
        LEFT JOIN puri pu ON pu.uri = e.reply_parent
        LEFT JOIN puri su ON su.uri = e.subject_uri
        LEFT JOIN pdid d ON d.did = e.did
        LEFT JOIN pdid sd ON sd.did = e.subject_did
        LEFT JOIN rec r ON r.did = e.did AND r.collection = e.collection AND r.rkey = e.rkey
        LEFT JOIN scope s ON s.did = e.did
        LEFT JOIN topic t ON t.seq = e.seq
        ORDER BY e.seq""").to_arrow_reader(BATCH)


OUT_TABLES = {
    "ex": "CREATE TABLE ex (seq BIGINT, suffix BOOLEAN)",
    "ctx": "CREATE TABLE ctx (ex BIGINT, pos INTEGER, created BIGINT, version BIGINT)",
    "texts": "CREATE TABLE texts (seq BIGINT)",
    "bad": "CREATE TABLE bad (seq BIGINT, reason VARCHAR)",
}
"""The replay's outputs: examples, their context posts, the persona texts, the quarantined events."""
_OUT_COLUMNS = {"ex": ["seq", "suffix"], "ctx": ["ex", "pos", "created", "version"], "texts": ["seq"],
                "bad": ["seq", "reason"]}


def store(con, out: dict[str, tuple]) -> None:
    """Append one batch of the replay's outputs (columns by table) to their tables."""
    for name, cols in out.items():
        if not cols[0]:
            continue
        batch = pa.table(dict(zip(_OUT_COLUMNS[name], cols)))  # noqa: F841 (DuckDB reads it by name)
        con.execute(f"INSERT INTO {name} SELECT * FROM batch")


_EXAMPLES_SQL = """
    SELECT x.seq, x.suffix, e.uri, e.did, e.action, e.time_us, e.text, e.src, e.line
    FROM ex x JOIN ev e ON e.seq = x.seq ORDER BY x.seq"""
_CONTEXT_SQL = """
    SELECT c.ex, o.did, v.text, o.time_us, o.uri
    FROM ctx c JOIN ev o ON o.seq = c.created JOIN ev v ON v.seq = c.version ORDER BY c.ex, c.pos"""
_TEXT_ACTIONS = pa.array(["post", "reply", "quote", "post_update"])


class _Rows:
    """Takes rows from an ordered stream of record batches while a key column stays at or below a bound."""

    def __init__(self, reader) -> None:
        self.reader = iter(reader)
        self.buf: pa.Table | None = None

    def upto(self, bound: int) -> pa.Table:
        parts = []
        while True:
            if self.buf is None or not self.buf.num_rows:
                batch = next(self.reader, None)
                if batch is None:
                    break
                self.buf = pa.Table.from_batches([batch])
            keys = self.buf.column(0).to_numpy()
            cut = int(np.searchsorted(keys, bound, side="right"))
            parts.append(self.buf.slice(0, cut))
            self.buf = self.buf.slice(cut)
            if self.buf.num_rows:
                break
        return pa.concat_tables(parts) if parts else None


def thread_batches(con) -> Iterator[pa.Table]:
    """The threads rows in event order: each example's context and its own message, assembled in Arrow.

    Two ordered streams (the examples, and every context message by example and
    position) are merged here rather than aggregated into lists by DuckDB, whose list
    aggregation does not spill to disk.
    """
    context = _Rows(con.cursor().sql(_CONTEXT_SQL).to_arrow_reader(BATCH))
    for batch in con.cursor().sql(_EXAMPLES_SQL).to_arrow_reader(BATCH):
        ex = pa.Table.from_batches([batch])
        seqs = ex["seq"].to_numpy()
        ctx = context.upto(int(seqs[-1]))
        ctx_ex = ctx["ex"].to_numpy() if ctx is not None else np.zeros(0, np.int64)
        n_ctx = np.searchsorted(ctx_ex, seqs, side="right") - np.searchsorted(ctx_ex, seqs, side="left")
        offsets = np.concatenate([[0], np.cumsum(n_ctx + 1)]).astype(np.int32)
        actor_text = pc.if_else(pc.is_in(ex["action"], value_set=_TEXT_ACTIONS), ex["text"],
                                pa.nulls(ex.num_rows, pa.string()))
        actor = pa.table({"did": ex["did"], "text": actor_text, "time_us": ex["time_us"], "uri": ex["uri"]})
        parts = [actor] if ctx is None else [ctx.select(["did", "text", "time_us", "uri"]), actor]
        combined = pa.concat_tables([p.cast(actor.schema) for p in parts]).combine_chunks()
        n_c = len(ctx_ex)
        actor_pos = offsets[1:] - 1
        ctx_pos = np.delete(np.arange(offsets[-1]), actor_pos)
        perm = np.empty(offsets[-1], dtype=np.int64)
        perm[ctx_pos] = np.arange(n_c)
        perm[actor_pos] = n_c + np.arange(ex.num_rows)
        msgs = combined.take(pa.array(perm)).to_struct_array().combine_chunks()
        suffix = ex["suffix"].to_numpy(zero_copy_only=False)
        uris, actions, times = ex["uri"].to_pylist(), ex["action"].to_pylist(), ex["time_us"].to_pylist()
        keys = [f"{u}#{a}@{t}" if sx else u for u, a, t, sx in zip(uris, actions, times, suffix)]
        yield pa.table({"key": pa.array(keys, pa.string()), "did": ex["did"], "action": ex["action"],
                        "time_us": ex["time_us"], "messages": pa.ListArray.from_arrays(pa.array(offsets), msgs),
                        "src": ex["src"], "line": ex["line"]})



def create_outputs(con) -> None:
    """The tables the replay's outputs go to (:func:`store`)."""
    for ddl in OUT_TABLES.values():
        con.execute(ddl)


def user_texts(con):
    """A reader of the texts that make personas (``did``, ``action``, ``text``), in event order."""
    return con.sql("SELECT e.did, e.action, e.text FROM texts t JOIN ev e ON e.seq = t.seq ORDER BY t.seq") \
        .to_arrow_reader(BATCH)


def quarantined(con) -> list[tuple[str, int, str]]:
    """(file, line, reason) of every quarantined event, in event order."""
    return con.execute("SELECT e.src, e.line, b.reason FROM bad b JOIN ev e ON e.seq = b.seq ORDER BY b.seq") \
        .fetchall()


def disconnect(con, db: Path) -> None:
    """Close the connection and remove the database file and the spill folder: nothing of the corpus is left."""
    con.close()
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(db.parent / "_threads.tmp", ignore_errors=True)
