"""Threads: normalised events -> one example per in-scope action, with its context.

Thread shapes (DESIGN.md):
- text threads: the reply chain rebuilt through ``reply.parent``, oldest first,
  capped at ``max_depth`` messages; the last message is the actor's post or reply;
- reactions (like, unlike, repost, unrepost, quote): ``[target post, actor message]``;
- follow, unfollow, block, unblock: ``[target's latest post before the action, actor message]``;
- post_update, post_delete: ``[original post, actor message]``.

Events are replayed in time order (``time_us``, then input file and line), so input
that arrived out of order gives the same threads as sorted input. Unlike and
unrepost are resolved to their target through the like's or repost's record key;
unfollow and unblock likewise to the user. Deletes and updates of records that were
never seen are counted, not fatal. Reply cycles and self-references are bad input:
the event is skipped, counted, and written with its file and line to the quarantine.

Filters, each configurable and each counted in the report:
- language: a post is kept when its ``langs`` equal ``langs`` exactly (the paper keeps ``['en']``);
- topic: a post is on topic when it matches the keyword lists (default: the 2025
  Canadian federal election list shipped in ``blueprint/resources/topics``); a
  thread is kept when any of its texts is on topic;
- scope: a user is in scope with at least ``min_user_posts`` kept posts and replies.
Only in-scope users' actions become examples; context may come from anyone.

Every event ends in exactly one bucket of the report: an example, a skip reason, a
quarantine reason, or ``actor_out_of_scope``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint._io import atomic_open, atomic_path, write_json
from blueprint.actions import ACTIONS
from blueprint.errors import BadInputError

log = logging.getLogger(__name__)

MESSAGE_TYPE = pa.struct(
    [
        pa.field("did", pa.string()),
        pa.field("text", pa.string()),
        pa.field("time_us", pa.int64()),
        pa.field("uri", pa.string()),  # the record the message stands for (at://did/collection/rkey)
    ]
)

THREAD_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),  # the actor's event: unique per example
        pa.field("did", pa.string(), nullable=False),  # the actor
        pa.field("action", pa.string(), nullable=False),
        pa.field("time_us", pa.int64(), nullable=False),
        pa.field("messages", pa.list_(MESSAGE_TYPE), nullable=False),
        pa.field("src", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
    ]
)

USER_TEXT_SCHEMA = pa.schema(
    [
        pa.field("did", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),  # post, reply or quote
        pa.field("text", pa.string(), nullable=False),
    ]
)

DEFAULT_TOPICS = "canada_2025"


def read_keywords(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Keywords from a list file: one per line; ``# `` starts a comment; ``#tag`` is a keyword."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such keyword file", path=p, field="--topics")
    return _parse_keywords(p.read_text(encoding="utf-8"), str(p))


def _parse_keywords(text: str, source: str) -> tuple[str, ...]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        word = line.strip()
        if not word or word == "#" or word.startswith("# "):
            continue
        word = word.lstrip("#").strip().lower()
        if not word or word == "*":
            raise BadInputError(f"empty keyword {line!r}", path=source, line=lineno)
        out.append(word)
    if not out:
        raise BadInputError("the keyword list is empty", path=source)
    return tuple(dict.fromkeys(out))


def default_keywords() -> tuple[str, ...]:
    """The shipped keyword list for the 2025 Canadian federal election."""
    text = resources.files("blueprint").joinpath(f"resources/topics/{DEFAULT_TOPICS}.txt").read_text("utf-8")
    return _parse_keywords(text, f"blueprint/resources/topics/{DEFAULT_TOPICS}.txt")


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern:
    """One case-insensitive regex for whole-word keywords; ``word*`` matches any ending."""
    parts = []
    for k in sorted(set(keywords), key=len, reverse=True):
        if k.endswith("*"):
            parts.append(re.escape(k[:-1]) + r"[\w'-]*")
        else:
            parts.append(re.escape(k))
    return re.compile(r"(?<![\w'])(?:" + "|".join(parts) + r")(?![\w'])", re.IGNORECASE)


@dataclass(frozen=True)
class ThreadConfig:
    """How threads are rebuilt, and the filters that decide scope."""

    max_depth: int = 5
    langs: tuple[str, ...] | None = ("en",)
    topics: tuple[str, ...] | None = field(default_factory=default_keywords)
    min_user_posts: int = 2

    def __post_init__(self) -> None:
        if self.max_depth < 2:
            raise BadInputError(f"must be at least 2 (a reply and its parent), got {self.max_depth}",
                                field="max_depth")
        if self.min_user_posts < 0:
            raise BadInputError(f"must be at least 0, got {self.min_user_posts}", field="min_user_posts")
        if self.topics is not None and not self.topics:
            raise BadInputError("give at least one keyword, or None to keep every topic", field="topics")


@dataclass
class ThreadReport:
    """Where every event went, and what each filter kept."""

    events: int = 0
    examples: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    filters: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "events": self.events,
            "examples": sum(self.examples.values()),
            "examples_by_action": {a: self.examples.get(a, 0) for a in ACTIONS},
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "filters": self.filters,
            "users_seen": self.filters.get("scope", {}).get("users_seen", 0),
            "users_in_scope": self.filters.get("scope", {}).get("users_in_scope", 0),
        }


# --- the out-of-core build --------------------------------------------------------
#
# DuckDB (embedded, spilling to a database file in the stage's folder) does everything
# that needs the whole corpus: the total event order, the id maps from URIs, DIDs and
# record keys to integers, the scope counts, and the final join of each example's
# context texts. Python replays the events in order over those integers only: its
# state is a few bytes per post, record and user (``array``/``bytearray``), never an
# event or a text. The replay's rules are those of the module docstring.

_POST_TYPES = ("post", "reply", "quote")
_A = {a: i for i, a in enumerate(ACTIONS)}
_POST, _REPLY, _QUOTE = _A["post"], _A["reply"], _A["quote"]
_UPDATE, _DELETE = _A["post_update"], _A["post_delete"]
_CREATES = {_A[a] for a in ("like", "repost", "follow", "block")}
_REACTIONS = {_A[a] for a in ("like", "unlike", "repost", "unrepost")}  # their subject is a post
_QUOTE_FIELD = "$.commit.record.reply.parent.uri"
_BAD = ("reply_self_reference", "reply_cycle")  # reasons that quarantine instead of skipping
_ABSENT = -2  # a record key with no live record
_BATCH = 65_536


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _connect(out_dir: Path, memory_limit: str | None, threads: int | None):
    import duckdb

    db = out_dir / "_threads.duckdb"
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute(f"SET temp_directory = '{out_dir / '_threads.tmp'}'")
    con.execute("SET preserve_insertion_order = false")  # every order that matters is an ORDER BY
    con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con, db


def _load(con, events_dir: Path, cfg: ThreadConfig) -> None:
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


def _topics(con, cfg: ThreadConfig) -> None:
    """``topic(seq)`` for every event with a text that matches the keywords (Python's regex, in batches)."""
    con.execute("CREATE TABLE topic (seq BIGINT)")
    if cfg.topics is None:
        return
    rx = keyword_pattern(cfg.topics)
    reader = con.cursor().sql("SELECT seq, text FROM ev WHERE has_text").to_arrow_reader(_BATCH)
    for batch in reader:
        seqs = batch.column(0).to_numpy()
        hit = np.fromiter((rx.search(t) is not None for t in batch.column(1).to_pylist()), bool, batch.num_rows)
        if hit.any():
            found = pa.table({"seq": pa.array(seqs[hit], pa.int64())})  # noqa: F841 (read by DuckDB)
            con.execute("INSERT INTO topic SELECT seq FROM found")


def _scope_sql(con, cfg: ThreadConfig) -> dict:
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


def _ids(con) -> tuple[int, int, int]:
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


def _slim(con, cfg: ThreadConfig):
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
        ORDER BY e.seq""").to_arrow_reader(_BATCH)


class _Replay:
    """The events' rules over integer ids. Each call of ``run`` takes one batch of the slim stream.

    Outputs are integers too: ``examples`` (seq, whether the key carries ``#action@time``),
    ``context`` (example seq, position, the post's creating event, the event holding its
    text then), ``texts`` (seqs of the posts that are their authors' own voice) and
    ``quarantine`` (seq, reason).
    """

    def __init__(self, cfg: ThreadConfig, n_posts: int, n_users: int, n_records: int,
                 report: ThreadReport) -> None:
        self.depth = cfg.max_depth
        self.reg = bytearray(n_posts)
        self.lang = bytearray(n_posts)
        self.topic = bytearray(n_posts)
        self.deleted = bytearray(n_posts)
        self.parent = array("q", [-1]) * n_posts
        self.created = array("q", [0]) * n_posts
        self.version = array("q", [0]) * n_posts
        self.latest = array("q", [-1]) * n_users
        self.records = array("q", [_ABSENT]) * n_records
        self.report = report

    def run(self, batch: pa.RecordBatch) -> dict[str, list]:
        ex_seq, ex_suffix = [], []
        ctx_ex, ctx_pos, ctx_created, ctx_version = [], [], [], []
        texts, bad_seq, bad_reason = [], [], []
        reg, lang, topic, deleted = self.reg, self.lang, self.topic, self.deleted
        parent_of, created, version, latest, records = self.parent, self.created, self.version, self.latest, \
            self.records
        examples, skipped, quarantined = self.report.examples, self.report.skipped, self.report.quarantined
        depth = self.depth
        cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for seq, a, uid, parent, subj, actor, subj_did, rid, in_scope, ev_lang, ev_topic, has_text, self_ref \
                in zip(*cols):
            ctx: list[int] | None = None
            suffix = False
            why: str | None = None
            if a == _POST or a == _REPLY or a == _QUOTE:
                if reg[uid]:
                    why = "duplicate_record"
                elif self_ref:
                    why = "reply_self_reference"
                else:
                    chain = [uid]
                    if a == _REPLY:
                        p = parent
                        while p != -1:
                            if p == uid or p in chain:
                                why = "reply_cycle"
                                break
                            if not reg[p] or len(chain) >= depth:
                                break
                            if not lang[p]:
                                break
                            chain.append(p)
                            p = parent_of[p]
                    if why is None:
                        reg[uid], parent_of[uid], lang[uid], topic[uid] = 1, parent, ev_lang, ev_topic
                        created[uid] = version[uid] = seq
                        latest[actor] = uid
                        if in_scope and has_text and ev_lang and ev_topic:
                            texts.append(seq)
                        if not in_scope:
                            why = "actor_out_of_scope"
                        elif a == _REPLY and len(chain) < 2:
                            why = "language" if not ev_lang or (parent != -1 and reg[parent]) \
                                else "reply_parent_unseen"
                        else:
                            if a == _QUOTE:
                                if subj == -1 or not reg[subj] or deleted[subj]:
                                    why = "target_unseen"
                                chain = [uid, subj]
                            if why is None:
                                ctx = chain[:0:-1]
                                if not all(lang[p] for p in chain):
                                    why = "language"
                                elif not any(topic[p] for p in chain):
                                    why = "off_topic"
            elif a == _UPDATE or a == _DELETE:
                if uid == -1 or not reg[uid] or deleted[uid]:
                    why = "post_update_unseen" if a == _UPDATE else "post_delete_unseen"
                else:
                    before = (created[uid], version[uid])
                    before_lang, before_topic = lang[uid], topic[uid]
                    if a == _UPDATE:
                        version[uid], lang[uid], topic[uid] = seq, ev_lang, ev_topic
                        actor_lang, actor_topic = ev_lang, ev_topic
                    else:
                        deleted[uid] = 1
                        if actor != -1 and latest[actor] == uid:
                            latest[actor] = -1
                        actor_lang, actor_topic = True, False
                    if not in_scope:
                        why = "actor_out_of_scope"
                    elif not (before_lang and actor_lang):
                        why = "language"
                    elif not (before_topic or actor_topic):
                        why = "off_topic"
                    else:
                        suffix = True
                        ctx_ex.append(seq)
                        ctx_pos.append(0)
                        ctx_created.append(before[0])
                        ctx_version.append(before[1])
            else:  # likes, reposts, follows, blocks and their deletes
                if a in _CREATES:
                    if records[rid] != _ABSENT:
                        why = "duplicate_record"
                    else:
                        subject = subj if a in _REACTIONS else subj_did
                        records[rid] = subject
                else:
                    suffix = True
                    subject = records[rid]
                    records[rid] = _ABSENT
                    if subject == _ABSENT:
                        why = ACTIONS[a] + "_unresolved"
                if why is None:
                    if not in_scope:
                        why = "actor_out_of_scope"
                    else:
                        if a in _REACTIONS:
                            target = subject
                            if target == -1 or not reg[target] or deleted[target]:
                                why = "target_unseen"
                        else:
                            target = latest[subject] if subject != -1 else -1
                            if target == -1:
                                why = "target_has_no_post"
                        if why is None:
                            if not lang[target]:
                                why = "language"
                            elif not topic[target]:
                                why = "off_topic"
                            else:
                                ctx = [target]
            if why is None:
                if ctx is not None:
                    for pos, p in enumerate(ctx):
                        ctx_ex.append(seq)
                        ctx_pos.append(pos)
                        ctx_created.append(created[p])
                        ctx_version.append(version[p])
                ex_seq.append(seq)
                ex_suffix.append(suffix)
                examples[ACTIONS[a]] += 1
            elif why in _BAD:
                quarantined[why] += 1
                bad_seq.append(seq)
                bad_reason.append(why)
            else:
                skipped[why] += 1
        return {"ex": (ex_seq, ex_suffix), "ctx": (ctx_ex, ctx_pos, ctx_created, ctx_version),
                "texts": texts, "bad": (bad_seq, bad_reason)}


_OUT_TABLES = {
    "ex": "CREATE TABLE ex (seq BIGINT, suffix BOOLEAN)",
    "ctx": "CREATE TABLE ctx (ex BIGINT, pos INTEGER, created BIGINT, version BIGINT)",
    "texts": "CREATE TABLE texts (seq BIGINT)",
    "bad": "CREATE TABLE bad (seq BIGINT, reason VARCHAR)",
}


def _store(con, out: dict[str, list]) -> None:
    for name, cols in out.items():
        cols = (cols,) if name == "texts" else cols
        if not cols[0]:
            continue
        names = {"ex": ["seq", "suffix"], "ctx": ["ex", "pos", "created", "version"], "texts": ["seq"],
                 "bad": ["seq", "reason"]}[name]
        batch = pa.table(dict(zip(names, cols)))  # noqa: F841 (read by DuckDB)
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


def _thread_batches(con) -> Iterator[pa.Table]:
    """The threads rows in event order: each example's context and its own message, assembled in Arrow.

    Two ordered streams (the examples, and every context message by example and
    position) are merged here rather than aggregated into lists by DuckDB, whose list
    aggregation does not spill to disk.
    """
    context = _Rows(con.cursor().sql(_CONTEXT_SQL).to_arrow_reader(_BATCH))
    for batch in con.cursor().sql(_EXAMPLES_SQL).to_arrow_reader(_BATCH):
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


def _write(batches, path: Path, schema: pa.Schema) -> None:
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            for batch in batches:
                table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
                w.write_table(table.cast(schema))


def build_threads(events_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  config: ThreadConfig | None = None, *, memory_limit: str | None = "1GB",
                  threads: int | None = None, progress: bool = False) -> ThreadReport:
    """Rebuild threads from the ingest stage's events; write ``threads.parquet``,
    ``user_texts.parquet``, ``quarantine.jsonl`` and ``report.json`` to ``out_dir``.

    Memory is bounded: DuckDB works under ``memory_limit`` and spills to a database
    file in ``out_dir`` (removed at the end); the replay holds a few bytes per post,
    user and record key. The output does not depend on ``memory_limit`` or ``threads``.
    """
    from blueprint.progress import progress_bar

    cfg = config or ThreadConfig()
    events_dir, out_dir = Path(events_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con, db = _connect(out_dir, memory_limit, threads)
    try:
        _load(con, events_dir, cfg)
        _topics(con, cfg)
        filters = _scope_sql(con, cfg)
        n_posts, n_users, n_records = _ids(con)
        n_events = con.execute("SELECT count(*) FROM ev").fetchone()[0]
        report = ThreadReport(events=n_events, filters=filters)
        replay = _Replay(cfg, n_posts, n_users, n_records, report)
        for ddl in _OUT_TABLES.values():
            con.execute(ddl)
        with progress_bar(total=n_events, desc="threads", unit="event", enabled=progress) as pbar:
            for batch in _slim(con, cfg):
                _store(con, replay.run(batch))
                pbar.update(batch.num_rows)
        _write(_thread_batches(con), out_dir / "threads.parquet", THREAD_SCHEMA)
        _write(con.sql("SELECT e.did, e.action, e.text FROM texts t JOIN ev e ON e.seq = t.seq ORDER BY t.seq")
               .to_arrow_reader(_BATCH), out_dir / "user_texts.parquet", USER_TEXT_SCHEMA)
        bad = con.execute("SELECT e.src, e.line, b.reason FROM bad b JOIN ev e ON e.seq = b.seq ORDER BY b.seq") \
            .fetchall()
    finally:
        con.close()
        for p in (db, db.with_name(db.name + ".wal")):
            p.unlink(missing_ok=True)
        shutil.rmtree(out_dir / "_threads.tmp", ignore_errors=True)
    with atomic_open(out_dir / "quarantine.jsonl", "wb") as fh:
        for src, line, reason in bad:
            fh.write(orjson.dumps({"file": src, "line": line, "reason": reason, "field": _QUOTE_FIELD}) + b"\n")
    config_doc = asdict(cfg)
    config_doc["topics"] = None if cfg.topics is None else {"keywords": len(cfg.topics)}
    write_json(out_dir / "report.json", {"config": config_doc, **report.to_dict()})
    return report


def read_threads(out_dir: str | os.PathLike[str]) -> pa.Table:
    return pq.read_table(Path(out_dir) / "threads.parquet")
