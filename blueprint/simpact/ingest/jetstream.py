"""Jetstream JSONL (plain, gzip or zstd): lines decoded in batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import msgspec

from blueprint.actions import POST
from blueprint.simpact.ingest.records import (
    _DELETES,
    _EVENT,
    _EVENT_FAST,
    _TAGGED,
    BadLine,
    Batch,
    Outcome,
    _decode_error,
    _needs_did,
    _row,
    _validation_error,
    record_row,
)
from blueprint.simpact.ingest.segments import _is_plain, open_lines

log = logging.getLogger(__name__)


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
        event = _EVENT.decode(raw)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _decode_error(raw, exc) from None
    if event.did[:4] != "did:":
        _needs_did(event.did, "$.did")
    if event.kind != "commit":
        return event.kind if event.kind in ("identity", "account") else "other_kind"
    commit = event.commit
    if commit is None:
        raise BadLine("missing_field", "$.commit", "a commit event without its commit")
    return record_row(event.did, event.time_us, commit.collection, commit.operation, commit.rkey, commit.record,
                      "$.commit.record")


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
        others: list[tuple[int, Outcome | None, object]] = []
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
