"""The event row every reader produces, and the typed decoding of the records behind it.

:data:`EVENT_SCHEMA` is the normalised row; :func:`record_row` maps one record
operation (from Jetstream, a CAR export or a getPostThread response) to a row, or to
the reason it carries none; :class:`BadLine` carries why a line is quarantined, with
the field it names. Decoding is typed (msgspec structs that skip unused fields).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
import orjson
import pyarrow as pa

from blueprint.actions import BLOCK, COLLECTIONS, FOLLOW, LIKE, POST, REPOST, classify
from blueprint.atproto import tid_time_us

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
_RECORDS: dict[str, msgspec.json.Decoder] = {c: msgspec.json.Decoder(t) for c, t in _RECORD_TYPES.items()}
_OBJECT_TYPES = {**_RECORD_TYPES, POST: _PostRecordObj}
_STR = msgspec.json.Decoder(str)
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


def _created_us(record: object, rkey: str) -> int | None:
    """When a record says it was made: ``createdAt``, else the TID in its key."""
    if isinstance(record, dict):
        created = record.get("createdAt")
        if isinstance(created, str):
            try:
                stamp = datetime.fromisoformat(created.replace("Z", "+00:00"))
                if stamp.tzinfo is None:
                    stamp = stamp.replace(tzinfo=UTC)
                return int(stamp.timestamp() * 1_000_000)
            except ValueError:
                pass
    return tid_time_us(rkey)


Outcome = tuple | str | BadLine


Batch = tuple[list[tuple], list[tuple[int, Outcome | None, object]], int]
"""(event rows with their line numbers first, other outcomes with their lines, lines read)."""


def _batched(outcomes: Iterator[tuple[int, Outcome, object]], size: int = 16384) -> Iterator[Batch]:
    """Group a per-record reader's outcomes into the batch shape of :func:`read_jetstream`."""
    rows: list[tuple] = []
    others: list[tuple[int, Outcome | None, object]] = []
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
