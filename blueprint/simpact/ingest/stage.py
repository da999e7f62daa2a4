"""The ingest stage: segments read (in worker processes) into Parquet parts, every line accounted for."""

from __future__ import annotations

import gc
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint._io import atomic_path, read_json, write_json
from blueprint.simpact.config import IngestConfig
from blueprint.simpact.ingest.car import read_car
from blueprint.simpact.ingest.jetstream import read_jetstream
from blueprint.simpact.ingest.post_thread import read_post_thread
from blueprint.simpact.ingest.records import EVENT_SCHEMA, BadLine, Batch, _batched
from blueprint.simpact.ingest.segments import Segment, discover, scan

log = logging.getLogger(__name__)


# --- the stage ------------------------------------------------------------------


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
    def from_dict(cls, d: dict) -> FileReport:
        d = dict(d)
        for k in ("events", "no_action", "quarantined"):
            d[k] = Counter(d[k])
        return cls(**d)

    def merge(self, other: FileReport) -> None:
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
    segments: list[Segment] = []
    for i, inp in enumerate(inputs):
        digest, bounds = scan(inp, config.segment_bytes)
        segments.extend(Segment(i, j, inp, digest, a, b, line) for j, (a, b, line) in enumerate(bounds))
    return segments, skipped


def ingest(paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
           config: IngestConfig | None = None, *, progress: bool = False,
           segments: tuple[list[Segment], list[str]] | None = None,
           runner: Callable[[list[Segment], Path, IngestConfig], Iterator[tuple[Segment, dict]]] | None = None
           ) -> IngestReport:
    """Ingest every input under ``paths`` into ``out_dir/events/part-FFFFF-SSSSS.parquet``.

    A part whose input has not changed (same sha256, same segment) and is complete on
    disk is kept, so a killed run resumes where it stopped, and the result is the same
    bytes as an uninterrupted run's. ``segments`` is a :func:`plan` made already (it
    hashes every input). ``runner`` reads the segments still to do and yields each with its
    report, in any order (default: local worker processes; the Ray engine passes its
    own). ``out_dir/quarantine.jsonl`` gathers the bad lines;
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
        for seg, rep in (runner or read_segments)(todo, parts_dir, config):
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
            part = FileReport.from_dict(done[seg.stem])
            if seg.index == 0:
                files.append(part)
            else:
                files[-1].merge(part)
            with open(parts_dir / f"{seg.stem}.quarantine.jsonl", "rb") as src:
                qfh.write(src.read())
    report = IngestReport(files, skipped)
    write_json(out_dir / "report.json", report.to_dict())
    return report


def _seg_id(seg: Segment) -> dict:
    return {"name": seg.input.name, "sha256": seg.sha256, "start": seg.start, "end": seg.end,
            "first_line": seg.first_line}


def read_segments(todo: list[Segment], parts_dir: Path, config: IngestConfig, workers: int | None = None
                  ) -> Iterator[tuple[Segment, dict]]:
    """Ingest segments here, in ``workers`` processes (default: the config's); yields in completion order."""
    workers = workers or config.workers or os.cpu_count() or 1
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
