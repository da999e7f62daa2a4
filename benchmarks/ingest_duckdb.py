"""A columnar fast path for Jetstream lines in DuckDB, measured by bench_ingest.py and not used by the build.

One DuckDB query parses a block of lines (``json_extract`` with a list of paths),
checks the JSON type of every field the typed decoder reads, and derives the event
row in SQL. DuckDB casts leniently (``1.5`` reads as the integer 2, an object as a
string) and keeps the first of two equal keys where the typed decoder keeps the last,
so a path that takes exactly what the typed decoder takes must check every field's
JSON text and every object's keys. With those checks it came out several times
slower than the typed decoder (bench_ingest.py prints both), so ingest keeps the
typed decoder. Every row it makes was checked equal to the typed decoder's on real,
synthetic and mutated lines while it was measured (the benchmark checks its corpus).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from blueprint.actions import BLOCK, COLLECTIONS, FOLLOW, LIKE, POST, REPOST, classify

_PATHS = {
    "did": "$.did", "time_us": "$.time_us", "kind": "$.kind", "commit": "$.commit",
    "op": "$.commit.operation", "coll": "$.commit.collection", "rkey": "$.commit.rkey", "rec": "$.commit.record",
    "type": '$.commit.record."$type"', "text": "$.commit.record.text", "langs": "$.commit.record.langs",
    "reply": "$.commit.record.reply", "parent": "$.commit.record.reply.parent",
    "parent_uri": "$.commit.record.reply.parent.uri", "parent_cid": "$.commit.record.reply.parent.cid",
    "root": "$.commit.record.reply.root", "root_uri": "$.commit.record.reply.root.uri",
    "root_cid": "$.commit.record.reply.root.cid", "embed": "$.commit.record.embed",
    "erec": "$.commit.record.embed.record", "erec_uri": "$.commit.record.embed.record.uri",
    "eref": "$.commit.record.embed.record.record", "eref_uri": "$.commit.record.embed.record.record.uri",
    "eref_cid": "$.commit.record.embed.record.record.cid", "subject": "$.commit.record.subject",
    "subject_uri": "$.commit.record.subject.uri", "subject_cid": "$.commit.record.subject.cid",
}
_I = {name: i + 1 for i, name in enumerate(_PATHS)}  # DuckDB lists count from 1


def _sql_list(values) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _v(name: str) -> str:
    return f"c_{name}"


def _is_str(name: str) -> str:
    return f"(left({_v(name)}, 1) = '\"')"


def _is_obj(name: str) -> str:
    return f"(left({_v(name)}, 1) = '{{')"


def _absent(name: str) -> str:
    return f"({_v(name)} IS NULL OR {_v(name)} = 'null')"


def _str_or_absent(name: str) -> str:
    return f"({_absent(name)} OR {_is_str(name)})"


def _val(name: str) -> str:
    """The string a JSON string literal stands for: the inside of the quotes when nothing is escaped."""
    return (f"(CASE WHEN NOT {_is_str(name)} THEN NULL WHEN strpos({_v(name)}, '\\') = 0 "
            f"THEN {_v(name)}[2:-2] ELSE {_v(name)} ->> '$' END)")


_DELETE_ACTION = "CASE " + " ".join(f"WHEN {_v('coll')} = '\"{c}\"' THEN '{classify(c, 'delete')}'"
                                    for c in sorted(COLLECTIONS)) + " END"
_CREATE_ACTION = " ".join(f"WHEN {_v('coll')} = '\"{c}\"' THEN '{classify(c, 'create')}'"
                          for c in (LIKE, REPOST, FOLLOW, BLOCK))
_KNOWN = "(" + " OR ".join(f"{_v('coll')} = '\"{c}\"'" for c in sorted(COLLECTIONS)) + ")"

_REF_OK = {  # a strong ref: its uri a string, its cid a string or nothing
    "parent": f"({_is_obj('parent')} AND {_is_str('parent_uri')} AND {_str_or_absent('parent_cid')})",
    "root": f"({_absent('root')} OR ({_is_obj('root')} AND {_is_str('root_uri')} AND {_str_or_absent('root_cid')}))",
    "eref": f"({_absent('eref')} OR ({_is_obj('eref')} AND {_is_str('eref_uri')} AND {_str_or_absent('eref_cid')}))",
    "subject": f"({_is_obj('subject')} AND {_is_str('subject_uri')} AND {_str_or_absent('subject_cid')})",
}
_LANGS_OK = (f"({_absent('langs')} OR (left({_v('langs')}, 1) = '[' AND coalesce(list_bool_and(list_transform("
             f"json_extract({_v('langs')}, '$[*]'), lambda e: left(e, 1) = '\"')), true)))")
_POST_OK = (f"({_is_str('text')} AND {_LANGS_OK} "
            f"AND ({_absent('reply')} OR ({_is_obj('reply')} AND {_REF_OK['parent']} AND {_REF_OK['root']})) "
            f"AND ({_absent('embed')} OR ({_is_obj('embed')} AND ({_absent('erec')} OR ({_is_obj('erec')} "
            f"AND {_str_or_absent('erec_uri')} AND {_REF_OK['eref']})))))")
_QUOTED = (f"(CASE WHEN {_is_str('erec_uri')} THEN {_val('erec_uri')} "
           f"WHEN {_is_obj('erec')} AND {_is_obj('eref')} THEN {_val('eref_uri')} END)")

def _unique_keys(expr: str) -> str:
    """No key twice in the object (DuckDB reads the first of two, the typed decoder the last)."""
    return f"(len(list_distinct(json_keys({expr}))) = len(json_keys({expr})))"


_OBJECTS = ("commit", "rec", "reply", "parent", "root", "embed", "erec", "eref", "subject")
_UNIQUE = " AND ".join([_unique_keys("l")] + [f"(NOT coalesce({_is_obj(o)}, false) OR {_unique_keys(_v(o))})"
                                               for o in _OBJECTS])

_SQL = f"""
WITH e AS (
    SELECT i, try(json_extract(l, {_sql_list(_PATHS.values())})) AS v
    FROM lines WHERE NOT regexp_matches(l, '\\\\[uU][dD][89a-fA-F]')
), p AS (
    SELECT i, v IS NOT NULL AS parsed, {", ".join(f"v[{k}] AS c_{name}" for name, k in _I.items())} FROM e
), t AS (
    SELECT *,
        parsed AND {_is_str('did')} AND starts_with({_v('did')}, '"did:')
        AND regexp_full_match({_v('time_us')}, '-?[0-9]+') AND TRY_CAST({_v('time_us')} AS BIGINT) IS NOT NULL
        AND {_v('kind')} = '"commit"' AND {_is_obj('commit')}
        AND {_is_str('op')} AND {_is_str('coll')} AND {_is_str('rkey')} AND {_KNOWN} AS envelope_ok
    FROM p
), r AS (
    SELECT *, envelope_ok AND CASE
        WHEN {_v('op')} = '"delete"' THEN {_v('rec')} IS NULL
        WHEN {_v('op')} = '"create"' OR ({_v('op')} = '"update"' AND {_v('coll')} = '"{POST}"') THEN
            {_is_obj('rec')} AND {_is_str('type')} AND {_v('type')} = {_v('coll')} AND CASE
                WHEN {_v('coll')} = '"{POST}"' THEN {_POST_OK}
                WHEN {_v('coll')} IN ('"{LIKE}"', '"{REPOST}"') THEN {_REF_OK['subject']}
                ELSE {_is_str('subject')} AND starts_with({_v('subject')}, '"did:') END
        ELSE false END AS ok
    FROM t
), u AS (
    -- only the lines that parsed and passed: json_keys fails on malformed JSON
    SELECT r.* REPLACE (CASE WHEN r.ok THEN coalesce({_UNIQUE}, false) ELSE false END AS ok)
    FROM r JOIN lines USING (i)
)
SELECT i,
    {_val('did')} AS did,
    CAST({_v('time_us')} AS BIGINT) AS time_us,
    {_val('coll')} AS collection,
    {_val('op')} AS operation,
    {_val('rkey')} AS rkey,
    CASE WHEN {_v('op')} = '"delete"' THEN {_DELETE_ACTION}
         WHEN {_v('coll')} = '"{POST}"' THEN
             CASE WHEN {_v('op')} = '"update"' THEN 'post_update'
                  WHEN {_is_obj('reply')} THEN 'reply'
                  WHEN {_QUOTED} IS NOT NULL THEN 'quote' ELSE 'post' END
         {_CREATE_ACTION} END AS action,
    CASE WHEN {_v('coll')} = '"{POST}"' AND {_v('op')} <> '"delete"' THEN {_val('text')} END AS text,
    CASE WHEN {_v('coll')} = '"{POST}"' AND {_v('op')} <> '"delete"' AND left({_v('langs')}, 1) = '['
         THEN list_transform(json_extract({_v('langs')}, '$[*]'), lambda e: e ->> '$') END AS langs,
    CASE WHEN {_v('coll')} = '"{POST}"' AND {_v('op')} <> '"delete"' AND {_is_obj('reply')}
         THEN {_val('parent_uri')} END AS reply_parent,
    CASE WHEN {_v('coll')} = '"{POST}"' AND {_v('op')} <> '"delete"' AND {_is_obj('reply')} AND {_is_obj('root')}
         THEN {_val('root_uri')} END AS reply_root,
    CASE WHEN {_v('op')} = '"delete"' THEN NULL
         WHEN {_v('coll')} = '"{POST}"' THEN {_QUOTED}
         WHEN {_v('coll')} IN ('"{LIKE}"', '"{REPOST}"') THEN {_val('subject_uri')} END AS subject_uri,
    CASE WHEN {_v('op')} <> '"delete"' AND {_v('coll')} IN ('"{FOLLOW}"', '"{BLOCK}"')
         THEN {_val('subject')} END AS subject_did
FROM u WHERE ok ORDER BY i
"""


class FastPath:
    """One DuckDB connection (one thread: a worker process is one core) that turns blocks of lines into rows."""

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET threads = 1")
        self.con.execute("SET enable_progress_bar = false")

    def rows(self, lines: list[bytes]) -> tuple[pa.Table, np.ndarray]:
        """(the rows of the lines this path takes, with ``i``, their index in ``lines``; a mask of those lines)."""
        arr = _strings(lines)
        table = pa.table({"i": pa.array(np.arange(len(lines), dtype=np.int64)), "l": arr})
        self.con.register("lines", table)
        try:
            out = self.con.sql(_SQL).to_arrow_table()
        finally:
            self.con.unregister("lines")
        taken = np.zeros(len(lines), dtype=bool)
        taken[out["i"].to_numpy()] = True
        return out, taken

    def close(self) -> None:
        self.con.close()


def _strings(lines: list[bytes]) -> pa.Array:
    """The lines as an Arrow string array; a line that is not UTF-8 becomes null (the typed decoder takes it)."""
    arr = pa.array(lines, pa.binary())
    try:
        return arr.cast(pa.string())
    except pa.ArrowInvalid:
        ok = [x.isascii() or _utf8(x) for x in lines]
        return pa.array([x if good else None for x, good in zip(lines, ok)], pa.binary()).cast(pa.string())


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
