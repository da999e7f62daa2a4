"""Ingest: raw Bluesky records -> one normalised, typed event table.

Readers stream their input with bounded memory and turn every record into the
same row shape (:data:`EVENT_SCHEMA`), written as Parquet in chunks, one part per
input file. Only records that carry one of the 13 actions become rows.

Every input line is accounted for in the report, in exactly one place:
- ``events``: a row was written, counted by action;
- ``no_action``: a valid line that carries no action (identity and account events,
  other collections, unmapped operations), counted by reason;
- ``quarantined``: a bad line (invalid JSON, truncated, invalid UTF-8, a missing or
  mistyped field), counted by reason and written with its file and line number to
  ``quarantine.jsonl``. Bad input never stops a run.

Decoding is typed (msgspec structs that skip unused fields): it is faster than
generic JSON parsing and names the offending field in its errors.
"""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
import gzip
import io
import logging
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Iterator, Sequence

import msgspec
import xxhash
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint._io import atomic_path, file_hash, read_json, write_json
from blueprint.actions import BLOCK, COLLECTIONS, FOLLOW, LIKE, POST, REPOST, classify
from blueprint.errors import BadInputError

log = logging.getLogger(__name__)

EVENT_SCHEMA = pa.schema(
    [
        pa.field("src", pa.string(), nullable=False),  # input file, as given or relative to the folder given
        pa.field("line", pa.int64(), nullable=False),  # 1-based line (or record) number in that file
        pa.field("did", pa.string(), nullable=False),  # the actor
        pa.field("time_us", pa.int64(), nullable=False),
        pa.field("collection", pa.string(), nullable=False),
        pa.field("operation", pa.string(), nullable=False),
        pa.field("rkey", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("text", pa.string()),  # post text (create and update)
        pa.field("langs", pa.list_(pa.string())),
        pa.field("reply_parent", pa.string()),  # at:// URI
        pa.field("reply_root", pa.string()),
        pa.field("subject_uri", pa.string()),  # liked, reposted or quoted post
        pa.field("subject_did", pa.string()),  # followed or blocked user
    ]
)
"""The normalised event row. Every reader produces exactly these columns."""

PART_VERSION = 1  # bump when the same input would give another part

JETSTREAM_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".jsonl.zst", ".ndjson.zst")
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "jetstream": JETSTREAM_SUFFIXES,
    "car": (".car",),
    "post_thread": (".json",),
}


# --- typed decoding of Jetstream v1 -------------------------------------------


class _Ref(msgspec.Struct):
    uri: str
    cid: str | None = None


class _ReplyRef(msgspec.Struct):
    parent: _Ref
    root: _Ref | None = None


class _EmbedRecord(msgspec.Struct):
    # app.bsky.embed.record holds the strong ref itself; recordWithMedia nests it once more
    uri: str | None = None
    record: _Ref | None = None


class _Embed(msgspec.Struct):
    record: _EmbedRecord | None = None


class _PostRecord(msgspec.Struct):
    # the JSON string literal itself: most texts need no unescaping and go to Arrow as bytes,
    # which is several times faster than building Python str objects for them
    text: msgspec.Raw
    langs: list[str] | None = None
    reply: _ReplyRef | None = None
    embed: _Embed | None = None


class _PostRecordObj(msgspec.Struct):
    """The same post record, for readers that hold decoded objects (CAR exports, thread views)."""

    text: str
    langs: list[str] | None = None
    reply: _ReplyRef | None = None
    embed: _Embed | None = None


class _SubjectRecord(msgspec.Struct):
    subject: _Ref


class _GraphRecord(msgspec.Struct):
    subject: str


class _Commit(msgspec.Struct):
    operation: str
    collection: str
    rkey: str
    record: msgspec.Raw = msgspec.Raw()


class _Event(msgspec.Struct):
    did: str
    time_us: int
    kind: str
    commit: _Commit | None = None


# The fast path decodes envelope and record in one call, dispatching on the record's
# ``$type``. Anything it cannot take (another collection's record, a bad field) goes
# to the two-step path below, which gives the precise reason.
class _PostT(_PostRecord, tag_field="$type", tag=POST):
    pass


class _LikeT(_SubjectRecord, tag_field="$type", tag=LIKE):
    pass


class _RepostT(_SubjectRecord, tag_field="$type", tag=REPOST):
    pass


class _FollowT(_GraphRecord, tag_field="$type", tag=FOLLOW):
    pass


class _BlockT(_GraphRecord, tag_field="$type", tag=BLOCK):
    pass


class _CommitT(msgspec.Struct):
    operation: str
    collection: str
    rkey: str
    record: _PostT | _LikeT | _RepostT | _FollowT | _BlockT | None = None


class _EventT(msgspec.Struct):
    did: str
    time_us: int
    kind: str
    commit: _CommitT | None = None


_TAGGED = {_PostT: POST, _LikeT: LIKE, _RepostT: REPOST, _FollowT: FOLLOW, _BlockT: BLOCK}
_EVENT_FAST = msgspec.json.Decoder(_EventT)
_EVENT = msgspec.json.Decoder(_Event)
_RECORD_TYPES: dict[str, type] = {
    POST: _PostRecord,
    LIKE: _SubjectRecord,
    REPOST: _SubjectRecord,
    FOLLOW: _GraphRecord,
    BLOCK: _GraphRecord,
}
_RECORDS = {c: msgspec.json.Decoder(t) for c, t in _RECORD_TYPES.items()}
_OBJECT_TYPES = {**_RECORD_TYPES, POST: _PostRecordObj}
_STR = msgspec.json.Decoder(str)
_TID_INDEX = {c: i for i, c in enumerate("234567abcdefghijklmnopqrstuvwxyz")}
_AT_URI = re.compile(r"^at://(?P<did>did:[a-z]+:[A-Za-z0-9._:%-]+)/(?P<collection>[A-Za-z0-9.-]+)/(?P<rkey>[A-Za-z0-9._:~-]+)$")
_MISSING = re.compile(r"missing required field `([^`]+)`(?: - at `([^`]+)`)?")
_AT = re.compile(r" - at `([^`]+)`")


class BadLine(Exception):
    """A line that cannot become an event; ``reason`` and ``field`` go to the quarantine."""

    def __init__(self, reason: str, field: str | None, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.field, self.detail = reason, field, detail


def _validation_error(exc: msgspec.ValidationError, prefix: str = "$") -> BadLine:
    msg = str(exc)
    m = _MISSING.search(msg)
    if m:
        where = (m.group(2) or "$").replace("$", prefix, 1)
        return BadLine("missing_field", f"{where}.{m.group(1)}", msg)
    m = _AT.search(msg)
    where = m.group(1).replace("$", prefix, 1) if m else prefix
    if where == "$" and "got `" in msg:
        return BadLine("not_an_object", "$", msg)
    return BadLine("mistyped_field", where, msg)


def _decode_error(raw: bytes, exc: Exception) -> BadLine:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as uexc:
        return BadLine("invalid_utf8", None, str(uexc))
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc2:
        if "surrogate" in str(exc2):  # a \ud800 escape with no pair: not encodable as UTF-8
            return BadLine("invalid_utf8", None, str(exc2))
    # a line cut short ends inside a string, where the newline is an invalid character
    try:
        msgspec.json.decode(raw.rstrip())
    except msgspec.DecodeError as exc2:
        if "truncated" in str(exc2):
            return BadLine("truncated", None, str(exc2))
    return BadLine("invalid_json", None, str(exc))


def _needs_did(value: str, field: str) -> None:
    if not value.startswith("did:"):
        raise BadLine("mistyped_field", field, f"expected a DID, got {value[:40]!r}")


def decode_jetstream(raw: bytes) -> tuple | str:
    """Decode one Jetstream line into an event row tuple (schema order, without src/line),
    or return the reason it carries no action. Raises :class:`BadLine` for bad input."""
    if not raw.isascii():
        # msgspec does not check the bytes of fields it skips; a line must be valid UTF-8 throughout
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadLine("invalid_utf8", None, str(exc)) from None
    try:
        ev = _EVENT_FAST.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        pass
    else:
        c = ev.commit
        if c is not None and ev.did[:4] == "did:" and ev.kind == "commit":
            rec = c.record
            if rec is None:
                if c.operation == "delete" and c.collection in _DELETES:
                    return (ev.did, ev.time_us, c.collection, "delete", c.rkey, _DELETES[c.collection],
                            None, None, None, None, None, None)
            elif _TAGGED[type(rec)] == c.collection and (c.operation == "create" or (
                    c.operation == "update" and c.collection == POST)):
                return _row(ev.did, ev.time_us, c.collection, c.operation, c.rkey, rec, "$.commit.record")
    # the two-step path: slower, and precise about what is wrong
    try:
        ev = _EVENT.decode(raw)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _decode_error(raw, exc) from None
    if ev.did[:4] != "did:":
        _needs_did(ev.did, "$.did")
    if ev.kind != "commit":
        return ev.kind if ev.kind in ("identity", "account") else "other_kind"
    c = ev.commit
    if c is None:
        raise BadLine("missing_field", "$.commit", "a commit event without its commit")
    return record_row(ev.did, ev.time_us, c.collection, c.operation, c.rkey, c.record, "$.commit.record")


# (collection, operation) -> action for the operations that need no record, and for record operations
_DELETES = {c: classify(c, "delete") for c in COLLECTIONS}
_NON_POST_CREATES = {c: classify(c, "create") for c in COLLECTIONS if c != POST}


def record_row(did: str, time_us: int, collection: str, operation: str, rkey: str,
               record: msgspec.Raw | dict | None, where: str) -> tuple | str:
    """The event row of one record operation, from any reader; or the reason it carries no action.

    ``record`` is the record's JSON (``msgspec.Raw``, from Jetstream) or the decoded
    object (from a CAR export or a getPostThread response); both are validated by the
    same typed structs. ``where`` prefixes field paths in errors. This is the hot path
    of ingest, so the mapping of :func:`blueprint.actions.classify` is precomputed.
    """
    if operation == "delete":
        action = _DELETES.get(collection)
        if action is None:
            return "other_collection"
        return (did, time_us, collection, "delete", rkey, action, None, None, None, None, None, None)
    decoder = _RECORDS.get(collection)
    if decoder is None:
        return "other_collection"
    if operation != "create" and (operation != "update" or collection != POST):
        return "unmapped_operation"
    if not record:
        raise BadLine("missing_field", where, f"a {operation} without its record")
    try:
        rec = decoder.decode(record) if type(record) is msgspec.Raw else msgspec.convert(
            record, _OBJECT_TYPES[collection])
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, where) from None
    return _row(did, time_us, collection, operation, rkey, rec, where)


def _row(did: str, time_us: int, collection: str, operation: str, rkey: str, rec, where: str) -> tuple:
    """The event row of a decoded record (a create, or a post update)."""
    if collection == POST:
        reply = rec.reply
        embed = rec.embed
        quoted = None
        if embed is not None and embed.record is not None:
            inner = embed.record
            quoted = inner.uri if inner.uri is not None else (inner.record.uri if inner.record else None)
        if operation == "update":
            action = "post_update"
        else:
            action = "reply" if reply is not None else ("quote" if quoted is not None else "post")
        return (did, time_us, POST, operation, rkey, action, _utf8_text(rec.text, where), rec.langs,
                reply.parent.uri if reply is not None else None,
                reply.root.uri if reply is not None and reply.root is not None else None,
                quoted, None)
    subject = rec.subject
    if type(subject) is str:  # follows and blocks name a user
        if subject[:4] != "did:":
            _needs_did(subject, f"{where}.subject")
        return (did, time_us, collection, "create", rkey, _NON_POST_CREATES[collection],
                None, None, None, None, None, subject)
    return (did, time_us, collection, "create", rkey, _NON_POST_CREATES[collection],
            None, None, None, None, subject.uri, None)


def _utf8_text(text: msgspec.Raw | str, where: str) -> bytes:
    """A post's text as UTF-8 bytes, from its JSON literal or from a str."""
    if not isinstance(text, str):
        literal = bytes(text)
        if literal[:1] != b'"':
            raise BadLine("mistyped_field", f"{where}.text", f"Expected `str`, got {literal[:20]!r}")
        if b"\\" not in literal:
            return literal[1:-1]  # no escapes: the literal's bytes are the text's UTF-8
        text = _STR.decode(literal)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, written as a \ud800 escape
        raise BadLine("invalid_utf8", f"{where}.text", str(exc)) from None


# --- repository CAR exports and getPostThread responses --------------------------


def tid_time_us(rkey: str) -> int | None:
    """The microsecond timestamp inside a TID record key, or None when the key is not a TID."""
    if len(rkey) != 13:
        return None
    n = 0
    for ch in rkey:
        i = _TID_INDEX.get(ch)
        if i is None:
            return None
        n = n * 32 + i
    return n >> 10


def _created_us(record: object, rkey: str) -> int | None:
    """When a record says it was made: ``createdAt``, else the TID in its key."""
    if isinstance(record, dict):
        created = record.get("createdAt")
        if isinstance(created, str):
            try:
                stamp = datetime.fromisoformat(created.replace("Z", "+00:00"))
                if stamp.tzinfo is None:
                    stamp = stamp.replace(tzinfo=timezone.utc)
                return int(stamp.timestamp() * 1_000_000)
            except ValueError:
                pass
    return tid_time_us(rkey)


Outcome = tuple | str | BadLine


def _walk_mst(blocks: dict, root_cid) -> Iterator[tuple[str, object]]:
    """Yield (key, record CID) for every entry of a repository's Merkle search tree, in key order.

    The SDK decodes blocks but does not walk the tree: a node is ``{l, e: [{p, k, v, t}]}``,
    an entry's key is the first ``p`` bytes of the previous key plus ``k``, ``v`` is the
    record's CID, and ``l`` / ``t`` are subtrees to the left of the node and right of the entry.
    """
    from atproto_core.cid import CID

    stack: list = [("node", root_cid)]
    while stack:
        kind, item = stack.pop()
        if kind == "entry":
            yield item
            continue
        node = blocks.get(item)
        if node is None:
            raise BadLine("missing_block", "$.data", f"MST node {item} is not in the CAR")
        # push in reverse so the left subtree comes out first
        todo = []
        if node.get("l"):
            todo.append(("node", CID.decode(node["l"])))
        prev = b""
        for e in node.get("e") or []:
            key = prev[: e["p"]] + e["k"]
            prev = key
            todo.append(("entry", (key.decode("utf-8", "replace"), CID.decode(e["v"]))))
            if e.get("t"):
                todo.append(("node", CID.decode(e["t"])))
        stack.extend(reversed(todo))


def read_car(path: Path) -> Iterator[tuple[int, Outcome, str]]:
    """Every record of a repository export (``com.atproto.sync.getRepo``), decoded by the atproto SDK.

    Yields (record number, outcome, key) in key order; the key (``collection/rkey``)
    stands in for the line in quarantine reports.
    """
    from atproto import CAR
    from atproto_core.cid import CID

    try:
        car = CAR.from_bytes(path.read_bytes())
    except Exception as exc:  # the SDK raises several types for a damaged archive
        yield 1, BadLine("invalid_car", None, f"{type(exc).__name__}: {exc}"), ""
        return
    commit = car.blocks.get(car.root)
    if not isinstance(commit, dict) or not isinstance(commit.get("did"), str) or "data" not in commit:
        yield 1, BadLine("missing_field", "$.root", "the root block is not a repository commit"), ""
        return
    did = commit["did"]
    try:
        entries = list(_walk_mst(car.blocks, CID.decode(commit["data"])))
    except BadLine as bad:
        yield 1, bad, ""
        return
    for n, (key, cid) in enumerate(entries, start=1):
        collection, _, rkey = key.partition("/")
        record = car.blocks.get(cid)
        if record is None:
            yield n, BadLine("missing_block", key, f"record block {cid} is not in the CAR"), key
            continue
        if collection not in COLLECTIONS:
            yield n, "other_collection", key
            continue
        t = _created_us(record, rkey)
        if t is None:
            yield n, BadLine("missing_field", f"{key}.createdAt", "no createdAt and the key is not a TID"), key
            continue
        try:
            yield n, record_row(did, t, collection, "create", rkey, record, key), key
        except BadLine as bad:
            yield n, bad, key


def read_post_thread(path: Path) -> Iterator[tuple[int, Outcome, str]]:
    """Every post of an ``app.bsky.feed.getPostThread`` response: ancestors oldest first, then
    the anchor, then its replies depth-first. Blocked and missing posts carry no action."""
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        yield 1, BadLine("invalid_json", None, str(exc)), ""
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("thread"), dict):
        yield 1, BadLine("missing_field", "$.thread", "not a getPostThread response"), ""
        return
    chain = []
    node = doc["thread"]
    path_ = "$.thread"
    while isinstance(node, dict):
        chain.append((node, path_))
        node = node.get("parent")
        path_ += ".parent"
    ordered = list(reversed(chain))
    stack = [(r, f"$.thread.replies[{i}]") for i, r in reversed(list(enumerate(doc["thread"].get("replies") or [])))]
    while stack:
        node, where = stack.pop()
        if not isinstance(node, dict):
            continue
        ordered.append((node, where))
        kids = node.get("replies") or []
        stack.extend((r, f"{where}.replies[{i}]") for i, r in reversed(list(enumerate(kids))))
    for n, (node, where) in enumerate(ordered, start=1):
        kind = node.get("$type", "")
        if kind.endswith("#blockedPost"):
            yield n, "blocked_post", where
            continue
        if kind.endswith("#notFoundPost"):
            yield n, "not_found_post", where
            continue
        post = node.get("post")
        if not isinstance(post, dict):
            yield n, BadLine("missing_field", f"{where}.post", "a thread view without its post"), where
            continue
        uri, record = post.get("uri"), post.get("record")
        m = _AT_URI.match(uri) if isinstance(uri, str) else None
        if m is None:
            yield n, BadLine("mistyped_field", f"{where}.post.uri", f"not an at:// record URI: {uri!r}"), where
            continue
        t = _created_us(record, m.group("rkey"))
        if t is None:
            yield n, BadLine("missing_field", f"{where}.post.record.createdAt", "no createdAt"), where
            continue
        try:
            yield n, record_row(m.group("did"), t, m.group("collection"), "create", m.group("rkey"), record,
                                f"{where}.post.record"), where
        except BadLine as bad:
            yield n, bad, where


Batch = tuple[list[tuple], list[tuple[int, Outcome, object]], int]
"""(event rows with their line numbers first, other outcomes with their lines, lines read)."""


def read_jetstream(path: Path, start: int = 0, end: int | None = None, first_line: int = 1) -> Iterator[Batch]:
    """A Jetstream JSONL file (plain, gzip or zstd), decoded in batches of lines.

    ``start``/``end`` restrict a plain file to a byte range that begins at a line start,
    whose first line is number ``first_line``. Each batch gives its event rows, each
    led by its line number, and the other outcomes (no action, bad line, blank line
    as ``None``) with their lines. The per-line work is the decoding and one append.
    """
    lineno = first_line - 1
    decode = decode_jetstream
    for batch in _line_batches(path, start, end):
        rows: list[tuple] = []
        others: list[tuple[int, Outcome, object]] = []
        append = rows.append
        for raw in batch:
            lineno += 1
            try:
                row = decode(raw)
            except BadLine as bad:
                others.append((lineno, None if not raw.strip() else bad, raw))
                continue
            if type(row) is tuple:
                append((lineno, *row))
            else:
                others.append((lineno, row, raw))
        yield rows, others, len(batch)


def _batched(outcomes: Iterator[tuple[int, Outcome, object]], size: int = 16384) -> Iterator[Batch]:
    """Group a per-record reader's outcomes into the batch shape of :func:`read_jetstream`."""
    rows: list[tuple] = []
    others: list[tuple[int, Outcome, object]] = []
    n = 0
    for lineno, row, raw in outcomes:
        n += 1
        if type(row) is tuple:
            rows.append((lineno, *row))
        else:
            others.append((lineno, row, raw))
        if n == size:
            yield rows, others, n
            rows, others, n = [], [], 0
    if n:
        yield rows, others, n


def _line_batches(path: Path, start: int, end: int | None, batch_bytes: int = 8 << 20) -> Iterator[list[bytes]]:
    with open_lines(path) as fh:
        if not _is_plain(path):
            # a compressed stream may break off: hand over every whole line read before the break
            batch: list[bytes] = []
            try:
                for line in fh:
                    batch.append(line)
                    if len(batch) >= 16384:
                        yield batch
                        batch = []
            finally:
                if batch:
                    yield batch
            return
        if start:
            fh.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            hint = batch_bytes if remaining is None else min(batch_bytes, remaining)
            lines = fh.readlines(hint)
            if not lines:
                return
            if remaining is not None:
                # readlines stops after the line that crosses the hint: keep the segment's own lines only
                size = 0
                for i, line in enumerate(lines):
                    size += len(line)
                    if size >= remaining:
                        lines = lines[: i + 1]
                        break
                remaining -= size
            yield lines


def _is_plain(path: Path) -> bool:
    return not path.name.lower().endswith((".gz", ".zst"))


# --- input discovery ----------------------------------------------------------


@dataclass(frozen=True)
class InputFile:
    """One file to read: where it is, how to name it in reports, and its format."""

    path: Path
    name: str
    format: str


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for fmt, suffixes in FORMAT_SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None


def discover(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[InputFile], list[str]]:
    """Expand files and folders into the list of inputs, in a stable order.

    Folders are walked recursively in sorted order; names starting with ``_`` or
    ``.`` are metadata and skipped, and so are files of unknown format (returned as
    the second value, so the report can list them). A path that does not exist is
    a :class:`BadInputError`.
    """
    found: list[InputFile] = []
    skipped: list[str] = []
    for given in paths:
        p = Path(given)
        if not p.exists():
            raise BadInputError("no such file or directory", path=p)
        if p.is_file():
            fmt = _format_of(p)
            if fmt is None:
                raise BadInputError(f"unknown input format; expected one of {sorted(_all_suffixes())}", path=p)
            found.append(InputFile(p, str(given), fmt))
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
            for fname in sorted(filenames):
                if fname.startswith(("_", ".")):
                    continue
                fp = Path(dirpath) / fname
                rel = str(Path(given) / fp.relative_to(p))
                fmt = _format_of(fp)
                if fmt is None:
                    skipped.append(rel)
                else:
                    found.append(InputFile(fp, rel, fmt))
    if not found:
        raise BadInputError("no input files found", path=paths[0] if len(paths) == 1 else None)
    return found, skipped


def _all_suffixes() -> set[str]:
    return {s for suffixes in FORMAT_SUFFIXES.values() for s in suffixes}


def open_lines(path: Path) -> IO[bytes]:
    """Open a JSONL file, plain, gzip or zstd, as a binary stream of lines."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".zst"):
        import zstandard

        raw = open(path, "rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), 1 << 20)
    return open(path, "rb", buffering=1 << 20)


def file_digest(path: Path) -> str:
    """xxh3-128 of a file's bytes, the identity of an input in the stage manifest: a change
    detector for resuming, several times faster than sha256 on the gigabytes of a firehose."""
    return file_hash(path, xxhash.xxh3_128())


# --- the stage ------------------------------------------------------------------


@dataclass(frozen=True)
class IngestConfig:
    """How to ingest.

    ``chunk_rows`` bounds memory: a Parquet row group per chunk. Plain Jetstream files
    are cut into segments of about ``segment_bytes`` at line boundaries; each segment
    is one part, the unit of resuming and of parallel work. ``workers`` processes
    read segments at once (0: one per CPU); the output does not depend on it.
    """

    chunk_rows: int = 100_000
    segment_bytes: int = 16 << 20
    workers: int = 0

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise BadInputError(f"must be at least 1, got {self.chunk_rows}", field="chunk_rows")
        if self.segment_bytes < 1:
            raise BadInputError(f"must be at least 1, got {self.segment_bytes}", field="segment_bytes")
        if self.workers < 0:
            raise BadInputError(f"must be 0 (one per CPU) or more, got {self.workers}", field="workers")

    def fingerprint(self) -> dict:
        """What decides the parts' bytes: everything but the number of workers."""
        return {"chunk_rows": self.chunk_rows, "segment_bytes": self.segment_bytes, "version": PART_VERSION}


@dataclass(frozen=True)
class Segment:
    """A piece of one input: a byte range of a plain file starting at line ``first_line``, or a whole file."""

    file_index: int
    index: int
    input: InputFile
    sha256: str
    start: int = 0
    end: int | None = None
    first_line: int = 1

    @property
    def stem(self) -> str:
        return f"part-{self.file_index:05d}-{self.index:05d}"


def scan(inp: InputFile, segment_bytes: int) -> tuple[str, list[tuple[int, int | None, int]]]:
    """One pass over a file: its sha256, and its segments as (start, end, first line).

    Plain Jetstream files are cut after the last newline of the block where a segment
    reaches ``segment_bytes``; compressed files and other formats are one segment.
    """
    h = xxhash.xxh3_128()
    plain = inp.format == "jetstream" and _is_plain(inp.path)
    bounds: list[tuple[int, int | None, int]] = []
    seg_start, seg_line = 0, 1
    pos, line = 0, 1  # byte offset and line number at the start of the next block
    block_size = min(1 << 22, segment_bytes) if plain else 1 << 22
    with open(inp.path, "rb") as fh:
        for block in iter(lambda: fh.read(block_size), b""):
            h.update(block)
            if plain:
                if pos + len(block) - seg_start >= segment_bytes:
                    last = block.rfind(b"\n")
                    if last >= 0:
                        bounds.append((seg_start, pos + last + 1, seg_line))
                        seg_start = pos + last + 1
                        seg_line = line + block.count(b"\n", 0, last + 1)
                line += block.count(b"\n")
            pos += len(block)
    if not plain:
        return h.hexdigest(), [(0, None, 1)]
    if seg_start < pos or not bounds:
        bounds.append((seg_start, None, seg_line))
    return h.hexdigest(), bounds


@dataclass
class FileReport:
    """Where every line of one input (or one segment of it) went."""

    name: str
    format: str
    sha256: str
    lines: int = 0
    blank: int = 0
    events: Counter = field(default_factory=Counter)
    no_action: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    error: str | None = None  # the file itself broke off (a truncated archive)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("events", "no_action", "quarantined"):
            d[k] = dict(sorted(getattr(self, k).items()))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FileReport":
        d = dict(d)
        for k in ("events", "no_action", "quarantined"):
            d[k] = Counter(d[k])
        return cls(**d)

    def merge(self, other: "FileReport") -> None:
        self.lines += other.lines
        self.blank += other.blank
        self.events.update(other.events)
        self.no_action.update(other.no_action)
        self.quarantined.update(other.quarantined)
        self.error = self.error or other.error


_ROW_TYPE = pa.struct([pa.field(f.name, pa.binary() if f.name == "text" else f.type) for f in list(EVENT_SCHEMA)[1:]])


def _rows_to_table(rows: list[tuple], src: str) -> pa.Table:
    """Rows of (line, *event row) -> a typed table; the text column arrives as UTF-8 bytes.

    Arrow converts the tuples as a struct array in one pass, faster than transposing
    them into columns in Python first.
    """
    struct = pa.array(rows, type=_ROW_TYPE)
    arrays = [pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(rows), dtype=np.int32)),
                                             pa.array([src], pa.string())).cast(pa.string())]
    for f in _ROW_TYPE:
        col = struct.field(f.name)
        arrays.append(col.cast(pa.string()) if f.name == "text" else col)  # the cast checks the UTF-8
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def ingest_segment(seg: Segment, parts_dir: Path, config: IngestConfig) -> dict:
    """Read one segment into its Parquet part and quarantine lines, both written atomically.

    Returns the segment's report as a dict (it crosses process boundaries).
    """
    report = FileReport(seg.input.name, seg.input.format, seg.sha256)
    # the cyclic GC would scan every buffered row again and again; nothing here makes cycles
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        _ingest_segment(seg, parts_dir, config, report)
    finally:
        if gc_was_on:
            gc.enable()
    return report.to_dict()


def _batches(seg: Segment) -> Iterator[Batch]:
    if seg.input.format == "jetstream":
        return read_jetstream(seg.input.path, seg.start, seg.end, seg.first_line)
    return _batched(_READERS[seg.input.format](seg.input.path))


def _ingest_segment(seg: Segment, parts_dir: Path, config: IngestConfig, report: FileReport) -> None:
    name = seg.input.name
    with atomic_path(parts_dir / f"{seg.stem}.parquet") as tmp_part, \
            atomic_path(parts_dir / f"{seg.stem}.quarantine.jsonl") as tmp_q, open(tmp_q, "wb") as qfh, \
            ThreadPoolExecutor(max_workers=1) as io_thread:
        writer = pq.ParquetWriter(tmp_part, EVENT_SCHEMA, compression="lz4")
        pending = None  # one write in flight: Parquet encoding releases the GIL, decoding goes on
        try:
            rows: list[tuple] = []
            flush = config.chunk_rows

            def write_rows() -> None:
                """Write the first ``chunk_rows`` buffered rows (all of them at the end) as one row group."""
                nonlocal pending
                table = _rows_to_table(rows[:flush], name)
                del rows[:flush]
                for item in pc.value_counts(table["action"]).to_pylist():
                    report.events[item["values"]] += item["counts"]
                if pending is not None:
                    pending.result()
                pending = io_thread.submit(writer.write_table, table)

            lines = 0
            try:
                for batch_rows, others, n in _read_guarded(_batches(seg)):
                    lines += n
                    rows.extend(batch_rows)
                    while len(rows) >= flush:
                        write_rows()
                    for lineno, row, raw in others:
                        if row is None:
                            report.blank += 1
                        elif isinstance(row, BadLine):
                            report.quarantined[row.reason] += 1
                            excerpt = raw[:160].decode("utf-8", "replace").rstrip("\n") \
                                if isinstance(raw, bytes) else raw
                            qfh.write(orjson.dumps({
                                "file": name, "line": lineno, "reason": row.reason, "field": row.field,
                                "detail": row.detail[:200], "excerpt": excerpt,
                            }) + b"\n")
                        else:
                            report.no_action[row] += 1
            except _InputEnded as ended:  # a truncated .gz/.zst: keep what was read
                exc = ended.__cause__
                report.error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: input ends early after line %d (%s)", name, seg.first_line + lines - 1, exc)
            report.lines = lines
            while rows:
                write_rows()
            if pending is not None:
                pending.result()
        finally:
            writer.close()


class _InputEnded(Exception):
    """Reading an input failed part-way (a cut-off archive); the cause is attached."""


def _read_guarded(batches: Iterator[Batch]) -> Iterator[Batch]:
    """The batches, with read errors turned into :class:`_InputEnded`.

    Only errors raised while reading are caught here: a failed write of a part or of the
    quarantine (a full disk) happens in the caller's loop body and stops the run.
    """
    try:
        yield from batches
    except (EOFError, OSError, zstd_error()) as exc:
        raise _InputEnded() from exc


def zstd_error() -> type[Exception]:
    import zstandard

    return zstandard.ZstdError


_READERS = {"car": read_car, "post_thread": read_post_thread}


@dataclass
class IngestReport:
    """The stage's account of every input line, summed over files."""

    files: list[FileReport]
    skipped_files: list[str]

    def totals(self) -> dict:
        events: Counter = Counter()
        no_action: Counter = Counter()
        quarantined: Counter = Counter()
        lines = blank = 0
        for f in self.files:
            lines += f.lines
            blank += f.blank
            events.update(f.events)
            no_action.update(f.no_action)
            quarantined.update(f.quarantined)
        return {
            "lines": lines,
            "blank": blank,
            "events": sum(events.values()),
            "events_by_action": dict(sorted(events.items())),
            "no_action": sum(no_action.values()),
            "no_action_by_reason": dict(sorted(no_action.items())),
            "quarantined": sum(quarantined.values()),
            "quarantined_by_reason": dict(sorted(quarantined.items())),
            "files": len(self.files),
            "files_cut_short": sum(1 for f in self.files if f.error),
            "skipped_files": len(self.skipped_files),
        }

    def to_dict(self) -> dict:
        return {"totals": self.totals(), "files": [f.to_dict() for f in self.files],
                "skipped_files": self.skipped_files}


def plan(paths: Sequence[str | os.PathLike[str]], config: IngestConfig) -> tuple[list[Segment], list[str]]:
    """Every segment to read, in output order, each with its input's sha256."""
    inputs, skipped = discover(paths)
    segments = []
    for i, inp in enumerate(inputs):
        digest, bounds = scan(inp, config.segment_bytes)
        segments.extend(Segment(i, j, inp, digest, a, b, line) for j, (a, b, line) in enumerate(bounds))
    return segments, skipped


def ingest(paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
           config: IngestConfig | None = None, *, progress: bool = False,
           segments: tuple[list[Segment], list[str]] | None = None) -> IngestReport:
    """Ingest every input under ``paths`` into ``out_dir/events/part-FFFFF-SSSSS.parquet``.

    A part whose input has not changed (same sha256, same segment) and is complete on
    disk is kept, so a killed run resumes where it stopped, and the result is the same
    bytes as an uninterrupted run's. ``segments`` is a :func:`plan` made already (it
    hashes every input). ``out_dir/quarantine.jsonl`` gathers the bad lines;
    ``out_dir/report.json`` says where every line went.
    """
    config = config or IngestConfig()
    out_dir = Path(out_dir)
    segs, skipped = segments if segments is not None else plan(paths, config)
    parts_dir = out_dir / "events"
    parts_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = config.fingerprint()
    done: dict[str, dict] = {}
    todo: list[Segment] = []
    for seg in segs:
        meta = parts_dir / f"{seg.stem}.json"
        if meta.is_file() and (parts_dir / f"{seg.stem}.parquet").is_file():
            saved = read_json(meta)
            if saved.get("fingerprint") == fingerprint and saved.get("segment") == _seg_id(seg):
                done[seg.stem] = saved["report"]
                continue
        todo.append(seg)
    if done:
        log.info("ingest: %d of %d parts done already; reading the other %d", len(done), len(segs), len(todo))
    from blueprint.progress import progress_bar

    with progress_bar(total=len(segs), desc="ingest", unit="part", enabled=progress) as bar:
        bar.update(len(done))
        for seg, rep in _run(todo, parts_dir, config):
            # written last: its presence marks the part complete
            write_json(parts_dir / f"{seg.stem}.json", {"fingerprint": fingerprint, "segment": _seg_id(seg),
                                                        "report": rep})
            done[seg.stem] = rep
            bar.update(1)
    # parts of an earlier, different input list would be read by the next stage
    wanted = {seg.stem for seg in segs}
    for stale in parts_dir.glob("part-*"):
        if stale.name.split(".")[0] not in wanted:
            stale.unlink()
    files: list[FileReport] = []
    with atomic_path(out_dir / "quarantine.jsonl") as tmp, open(tmp, "wb") as qfh:
        for seg in segs:
            rep = FileReport.from_dict(done[seg.stem])
            if seg.index == 0:
                files.append(rep)
            else:
                files[-1].merge(rep)
            with open(parts_dir / f"{seg.stem}.quarantine.jsonl", "rb") as src:
                qfh.write(src.read())
    report = IngestReport(files, skipped)
    write_json(out_dir / "report.json", report.to_dict())
    return report


def _seg_id(seg: Segment) -> dict:
    return {"name": seg.input.name, "sha256": seg.sha256, "start": seg.start, "end": seg.end,
            "first_line": seg.first_line}


def _run(todo: list[Segment], parts_dir: Path, config: IngestConfig) -> Iterator[tuple[Segment, dict]]:
    """Ingest segments, in worker processes when asked; yields in completion order."""
    workers = config.workers or os.cpu_count() or 1
    if workers == 1 or len(todo) <= 1:
        for seg in todo:
            yield seg, ingest_segment(seg, parts_dir, config)
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    # spawn, not fork: forking a process that runs Arrow's thread pools can deadlock
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                                mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(ingest_segment, seg, parts_dir, config): seg for seg in todo}
        for fut in cf.as_completed(futures):
            yield futures[fut], fut.result()


def read_events(out_dir: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """Read the event table the stage wrote (all parts, in input order)."""
    parts = sorted((Path(out_dir) / "events").glob("part-*.parquet"))
    if not parts:
        return EVENT_SCHEMA.empty_table() if columns is None else EVENT_SCHEMA.empty_table().select(columns)
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in parts)
