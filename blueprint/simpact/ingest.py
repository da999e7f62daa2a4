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

import gzip
import hashlib
import io
import logging
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Iterator, Sequence

import msgspec
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from blueprint._io import atomic_path, read_json, write_json
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
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {"jetstream": JETSTREAM_SUFFIXES}


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


_EVENT = msgspec.json.Decoder(_Event)
_RECORDS = {
    POST: msgspec.json.Decoder(_PostRecord),
    LIKE: msgspec.json.Decoder(_SubjectRecord),
    REPOST: msgspec.json.Decoder(_SubjectRecord),
    FOLLOW: msgspec.json.Decoder(_GraphRecord),
    BLOCK: msgspec.json.Decoder(_GraphRecord),
}
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
        ev = _EVENT.decode(raw)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _decode_error(raw, exc) from None
    _needs_did(ev.did, "$.did")
    if ev.kind != "commit":
        return ev.kind if ev.kind in ("identity", "account") else "other_kind"
    c = ev.commit
    if c is None:
        raise BadLine("missing_field", "$.commit", "a commit event without its commit")
    if c.collection not in COLLECTIONS:
        return "other_collection"
    if c.operation == "delete":
        action = classify(c.collection, "delete")
        if action is None:
            return "unmapped_operation"
        return (ev.did, ev.time_us, c.collection, "delete", c.rkey, action,
                None, None, None, None, None, None)
    if c.operation not in ("create", "update"):
        return "unmapped_operation"
    if c.collection != POST and c.operation == "update":
        return "unmapped_operation"
    if not c.record:
        raise BadLine("missing_field", "$.commit.record", f"a {c.operation} without its record")
    try:
        rec = _RECORDS[c.collection].decode(c.record)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, "$.commit.record") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # pragma: no cover - the envelope parsed
        raise _decode_error(raw, exc) from None
    if c.collection == POST:
        reply = rec.reply
        embed = rec.embed
        quoted = None
        if embed is not None and embed.record is not None:
            inner = embed.record
            quoted = inner.uri if inner.uri is not None else (inner.record.uri if inner.record else None)
        action = "post_update" if c.operation == "update" else classify(
            POST, "create", is_reply=reply is not None, quotes=quoted is not None)
        return (ev.did, ev.time_us, POST, c.operation, c.rkey, action, rec.text, rec.langs,
                reply.parent.uri if reply else None,
                (reply.root.uri if reply.root else None) if reply else None,
                quoted, None)
    if c.collection in (LIKE, REPOST):
        return (ev.did, ev.time_us, c.collection, "create", c.rkey, classify(c.collection, "create"),
                None, None, None, None, rec.subject.uri, None)
    _needs_did(rec.subject, "$.commit.record.subject")
    return (ev.did, ev.time_us, c.collection, "create", c.rkey, classify(c.collection, "create"),
            None, None, None, None, None, rec.subject)


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
    """sha256 of a file's bytes, the identity of an input in the stage manifest."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


# --- the stage ------------------------------------------------------------------


@dataclass(frozen=True)
class IngestConfig:
    """How to ingest. ``chunk_rows`` bounds memory: a Parquet row group per chunk."""

    chunk_rows: int = 100_000

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise BadInputError(f"must be at least 1, got {self.chunk_rows}", field="chunk_rows")


@dataclass
class FileReport:
    """Where every line of one input went."""

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


def _rows_to_table(cols: list[list], src: str) -> pa.Table:
    arrays = [pa.array([src] * len(cols[0]), pa.string())]
    for col, fld in zip(cols, list(EVENT_SCHEMA)[1:]):
        arrays.append(pa.array(col, fld.type))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def ingest_file(inp: InputFile, part_path: Path, quarantine_path: Path, config: IngestConfig,
                digest: str) -> FileReport:
    """Read one input file into one Parquet part and its quarantine lines; both written atomically."""
    report = FileReport(inp.name, inp.format, digest)
    with atomic_path(part_path) as tmp_part, atomic_path(quarantine_path) as tmp_q, \
            open(tmp_q, "wb") as qfh:
        writer = pq.ParquetWriter(tmp_part, EVENT_SCHEMA, compression="zstd")
        try:
            cols: list[list] = [[] for _ in range(len(EVENT_SCHEMA) - 1)]
            line_col = cols[0]
            rest = cols[1:]
            try:
                with open_lines(inp.path) as fh:
                    for lineno, raw in enumerate(fh, start=1):
                        report.lines += 1
                        if not raw.strip():
                            report.blank += 1
                            continue
                        try:
                            row = decode_jetstream(raw)
                        except BadLine as bad:
                            report.quarantined[bad.reason] += 1
                            qfh.write(orjson.dumps({
                                "file": inp.name, "line": lineno, "reason": bad.reason, "field": bad.field,
                                "detail": bad.detail[:200],
                                "excerpt": raw[:160].decode("utf-8", "replace").rstrip("\n"),
                            }) + b"\n")
                            continue
                        if isinstance(row, str):
                            report.no_action[row] += 1
                            continue
                        report.events[row[5]] += 1
                        line_col.append(lineno)
                        for col, value in zip(rest, row):
                            col.append(value)
                        if len(line_col) >= config.chunk_rows:
                            writer.write_table(_rows_to_table(cols, inp.name))
                            for col in cols:
                                col.clear()
            except (EOFError, OSError) as exc:  # a truncated .gz/.zst: keep what was read, say so
                report.error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: input ends early after line %d (%s)", inp.name, report.lines, exc)
            if line_col:
                writer.write_table(_rows_to_table(cols, inp.name))
        finally:
            writer.close()
    return report


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


def ingest(paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
           config: IngestConfig | None = None, *, progress: bool = False,
           digests: dict[str, str] | None = None) -> IngestReport:
    """Ingest every input under ``paths`` into ``out_dir/events/part-NNNNN.parquet``.

    A part whose input has not changed (same sha256) and is complete on disk is
    kept, so a killed run resumes where it stopped. ``digests`` (input name -> sha256)
    saves hashing inputs a caller has hashed already. ``out_dir/quarantine.jsonl``
    gathers the bad lines; ``out_dir/report.json`` says where every line went.
    """
    config = config or IngestConfig()
    out_dir = Path(out_dir)
    inputs, skipped = discover(paths)
    parts_dir = out_dir / "events"
    parts_dir.mkdir(parents=True, exist_ok=True)
    reports: list[FileReport] = []
    from blueprint.progress import progress_bar

    with progress_bar(total=len(inputs), desc="ingest", unit="file", enabled=progress) as bar:
        for i, inp in enumerate(inputs):
            part = parts_dir / f"part-{i:05d}.parquet"
            qpart = parts_dir / f"part-{i:05d}.quarantine.jsonl"
            meta = parts_dir / f"part-{i:05d}.json"
            digest = digests[inp.name] if digests and inp.name in digests else file_digest(inp.path)
            fingerprint = {"config": asdict(config), "version": PART_VERSION}
            if part.is_file() and qpart.is_file() and meta.is_file():
                saved = read_json(meta)
                done = FileReport.from_dict(saved["report"])
                if saved.get("fingerprint") == fingerprint and done.sha256 == digest and done.name == inp.name:
                    reports.append(done)
                    bar.update(1)
                    continue
            rep = ingest_file(inp, part, qpart, config, digest)
            # written last: its presence marks the part complete
            write_json(meta, {"fingerprint": fingerprint, "report": rep.to_dict()})
            reports.append(rep)
            bar.update(1)
    # parts left over from a previous, longer input list would be read by the next stage
    for stale in sorted(parts_dir.glob("part-*")):
        idx = int(stale.name[5:10])
        if idx >= len(inputs):
            stale.unlink()
    with atomic_path(out_dir / "quarantine.jsonl") as tmp, open(tmp, "wb") as qfh:
        for i in range(len(inputs)):
            with open(parts_dir / f"part-{i:05d}.quarantine.jsonl", "rb") as src:
                qfh.write(src.read())
    report = IngestReport(reports, skipped)
    write_json(out_dir / "report.json", report.to_dict())
    return report


def read_events(out_dir: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """Read the event table the stage wrote (all parts, in input order)."""
    parts = sorted((Path(out_dir) / "events").glob("part-*.parquet"))
    if not parts:
        return EVENT_SCHEMA.empty_table() if columns is None else EVENT_SCHEMA.empty_table().select(columns)
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in parts)


def iter_event_batches(out_dir: str | os.PathLike[str], columns: Sequence[str] | None = None,
                       batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
    """Stream the event table in record batches, in input order, with bounded memory."""
    for p in sorted((Path(out_dir) / "events").glob("part-*.parquet")):
        yield from pq.ParquetFile(p).iter_batches(batch_size=batch_size, columns=columns)
