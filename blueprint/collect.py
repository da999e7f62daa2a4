"""Collecting raw data: a Jetstream capture, verbatim, rotated by hour, resumable.

``blueprint collect --out RAW_DIR`` subscribes to a Jetstream instance and writes
every event it receives, byte for byte, as one JSON line, into
``RAW_DIR/YYYY-MM/DD/HH/jetstream.jsonl`` by the hour of the event's ``time_us``
(UTC). An hour's file is compressed with zstd (``jetstream.jsonl.zst``) once events
two hours later arrive (a straggler of the previous hour still finds its file open),
and every file when the capture ends. ``blueprint build RAW_DIR`` reads the result.

Filtering by collection and by DID uses Jetstream's own ``wantedCollections`` and
``wantedDids`` parameters. Keyword filtering is left to the build, so the capture
is never lossy.

Reliability:

- the cursor (the ``time_us`` of the last event written, once the file holding it
  is flushed to disk) is kept in ``RAW_DIR/_cursor.json``, written atomically;
- on a dropped connection, and on restart, the collector reconnects with exponential
  backoff and jitter and asks for events from the cursor minus a safety window
  (``window_s``, default 5 s); the events that the window delivers again are
  recognised (a hash of their bytes, kept for the window) and dropped, so the files
  hold each event once. A restart rebuilds those hashes from the files' tails, and
  cuts a line that a kill left half-written;
- Ctrl-C or SIGTERM flushes and closes the open files and writes the cursor;
- a frame that is not a JSON object with an integer ``time_us`` goes to
  ``RAW_DIR/_quarantine.jsonl`` with the reason and an excerpt, never to the data.

Files and folders whose names start with ``_`` are skipped by the build.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import xxhash

from blueprint._io import write_json
from blueprint.actions import COLLECTIONS
from blueprint.atproto import read_did_file
from blueprint.errors import BadInputError
from blueprint.validation import check_scalar

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = ("wss://jetstream1.us-east.bsky.network/subscribe",
                    "wss://jetstream2.us-east.bsky.network/subscribe",
                    "wss://jetstream1.us-west.bsky.network/subscribe",
                    "wss://jetstream2.us-west.bsky.network/subscribe")
CURSOR = "_cursor.json"
QUARANTINE = "_quarantine.jsonl"
FILE = "jetstream.jsonl"


@dataclass(frozen=True)
class CollectConfig:
    """What to capture and how to stay connected."""

    endpoint: str = PUBLIC_ENDPOINTS[1]
    collections: tuple[str, ...] = tuple(sorted(COLLECTIONS))
    dids: tuple[str, ...] = ()
    until_us: int | None = None  # stop at the first event at or after this time (not written)
    max_events: int | None = None  # stop once the capture holds this many events (over all its runs)
    window_s: float = 5.0  # how far before the cursor a reconnection starts
    flush_s: float = 1.0  # data flushed (and the cursor written) at least this often
    backoff_s: float = 0.5  # first reconnection delay; doubled each failure, with jitter
    backoff_max_s: float = 60.0
    compress_level: int = 10

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise BadInputError(f"not a ws:// or wss:// URL: {self.endpoint!r}", field="endpoint")
        if len(self.dids) > 10_000:
            raise BadInputError(f"Jetstream takes at most 10,000 DIDs, got {len(self.dids)}", field="dids")
        for name in ("window_s", "flush_s", "backoff_s", "backoff_max_s"):
            check_scalar(getattr(self, name), name, min_val=0)
        check_scalar(self.max_events, "max_events", int, min_val=1, allow_none=True)
        check_scalar(self.compress_level, "compress_level", int, min_val=1, max_val=22)

    def url(self, cursor: int | None) -> str:
        """The subscribe URL: the endpoint with wantedCollections, wantedDids and cursor."""
        parts = urlsplit(self.endpoint)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [("wantedCollections", c) for c in self.collections]
        query += [("wantedDids", d) for d in self.dids]
        if cursor is not None:
            query.append(("cursor", str(cursor)))
        return urlunsplit((parts.scheme, parts.netloc, parts.path or "/subscribe", urlencode(query), ""))


def parse_time(value: str) -> int:
    """``--until``: unix microseconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    if value.isdigit():
        return int(value)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"neither unix microseconds nor an ISO 8601 time: {value!r}", field="until_us") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1_000_000)


def read_dids(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """DIDs to follow, one per line (blank lines and ``#`` comments skipped), first occurrence kept."""
    return tuple(dict.fromkeys(read_did_file(path, field="dids")))


def hour_dir(time_us: int) -> str:
    t = datetime.fromtimestamp(time_us / 1e6, tz=UTC)
    return f"{t:%Y-%m}/{t:%d}/{t:%H}"


class _HourFiles:
    """The open data files, one per hour of event time; older hours compressed as time moves on."""

    def __init__(self, root: Path, level: int) -> None:
        self.root, self.level = root, level
        self.open: dict[int, tuple[Path, BinaryIO]] = {}  # hour number -> (path, file)

    def write(self, hour: int, time_us: int, line: bytes) -> None:
        entry = self.open.get(hour)
        if entry is None:
            entry = self._open(hour, time_us)
            for old in [h for h in self.open if h < hour - 1]:
                self._close(old, compress=True)
        entry[1].write(line)

    def _open(self, hour: int, time_us: int) -> tuple[Path, BinaryIO]:
        folder = self.root / hour_dir(time_us)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILE
        if (folder / (FILE + ".zst")).exists() and not path.exists():
            # the hour was closed already (a straggler, or a restart): a further file beside it
            n = 1
            while (folder / f"jetstream.{n}.jsonl").exists() or (folder / f"jetstream.{n}.jsonl.zst").exists():
                n += 1
            path = folder / f"jetstream.{n}.jsonl"
        fh = open(path, "ab", buffering=1 << 20)
        self.open[hour] = (path, fh)
        return self.open[hour]

    def flush(self) -> None:
        for _, fh in self.open.values():
            fh.flush()
            os.fsync(fh.fileno())

    def _close(self, hour: int, *, compress: bool) -> None:
        path, fh = self.open.pop(hour)
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        if compress:
            compress_file(path, self.level)

    def close(self, *, compress: bool) -> None:
        for hour in sorted(self.open):
            self._close(hour, compress=compress)


def compress_file(path: Path, level: int = 10) -> Path:
    """``path`` -> ``path.zst`` (written to a temporary name, then renamed), and ``path`` removed."""
    import zstandard

    out = path.with_name(path.name + ".zst")
    tmp = path.with_name(f".{path.name}.zst.tmp")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        zstandard.ZstdCompressor(level=level).copy_stream(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, out)
    path.unlink()
    return out


def _cut_partial_line(path: Path) -> None:
    """A kill can leave a last line half-written: cut the file back to its last newline."""
    size = path.stat().st_size
    if not size:
        return
    with open(path, "rb+") as fh:
        step = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - step)
            fh.seek(start)
            block = fh.read(end - start)
            i = block.rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            end = start
        else:
            keep = 0
        if keep != size:
            log.warning("collect: %s ended in a half-written line (a killed run): cut it", path.name)
            fh.truncate(keep)


@dataclass
class CollectReport:
    """What a run of the collector did."""

    written: int = 0
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)
    by_collection: Counter = field(default_factory=Counter)
    connections: int = 0
    reconnects: int = 0
    cursor: int | None = None
    stopped: str = ""

    def to_dict(self) -> dict:
        return {"written": self.written, "duplicates": self.duplicates, "quarantined": dict(self.quarantined),
                "by_collection": dict(sorted(self.by_collection.items())), "connections": self.connections,
                "reconnects": self.reconnects, "cursor": self.cursor, "stopped": self.stopped}


class Collector:
    """One capture into ``out``; :meth:`run` connects, writes, reconnects, and stops as configured."""

    def __init__(self, out: str | os.PathLike[str], config: CollectConfig | None = None, *,
                 progress: bool = False) -> None:
        self.out = Path(out)
        self.cfg = config or CollectConfig()
        self.progress = progress
        self.report = CollectReport()
        self.files = _HourFiles(self.out, self.cfg.compress_level)
        self.window_us = int(self.cfg.window_s * 1_000_000)
        self.recent: dict[int, int] = {}  # hash of an event's bytes -> its time_us, for the safety window
        self.recent_order: deque = deque()
        self.last_us: int | None = None  # newest time_us written
        self.total = 0  # events in the capture, over all its runs
        self.flushed_total = 0
        self.flushed_us: int | None = None  # the cursor: newest time_us on disk
        self._stop = asyncio.Event()
        self._done = False
        self._last_flush = time.monotonic()
        self._bar = None

    # -- state on disk --

    def _load(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        cur = self.out / CURSOR
        if cur.is_file():
            try:
                saved = orjson.loads(cur.read_bytes())
                self.flushed_us = self.last_us = int(saved["time_us"])
                self.total = self.flushed_total = int(saved.get("events", 0))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise BadInputError("the cursor file is damaged; move it away to start a new capture",
                                    path=cur, field="time_us") from None
        # open hours left by an earlier run: cut a half-written line, remember the window's events
        floor = None if self.last_us is None else self.last_us - 2 * self.window_us
        for path in sorted(self.out.glob(f"*/*/*/{FILE}")) + sorted(self.out.glob("*/*/*/jetstream.*.jsonl")):
            _cut_partial_line(path)
            if floor is None:
                continue
            for line in path.read_bytes().splitlines():
                try:
                    t = orjson.loads(line)["time_us"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
                if isinstance(t, int) and t >= floor:
                    self._remember(xxhash.xxh3_64_intdigest(line), t)
                    if self.flushed_us is not None and t > self.flushed_us:  # on disk, written after the cursor
                        self.total += 1
                    if self.last_us is None or t > self.last_us:
                        self.last_us = t
        if self.last_us is not None:
            log.info("collect: resuming from the cursor (%d events of the safety window remembered)",
                     len(self.recent))

    def _write_cursor(self) -> None:
        if self.flushed_us is None:
            return
        write_json(self.out / CURSOR, {"time_us": self.flushed_us, "events": self.flushed_total,
                                       "endpoint": self.cfg.endpoint, "collections": list(self.cfg.collections)})
        self.report.cursor = self.flushed_us

    def _flush(self) -> None:
        self.files.flush()
        self.flushed_us, self.flushed_total = self.last_us, self.total
        self._write_cursor()
        self._last_flush = time.monotonic()

    def _remember(self, key: int, t: int) -> None:
        self.recent[key] = t
        self.recent_order.append((t, key))

    def _forget_old(self) -> None:
        floor = (self.last_us or 0) - 2 * self.window_us
        while self.recent_order and self.recent_order[0][0] < floor:
            _, key = self.recent_order.popleft()
            if self.recent.get(key, floor) < floor:
                del self.recent[key]

    # -- one frame --

    def _quarantine(self, frame: bytes, reason: str) -> None:
        self.report.quarantined[reason] += 1
        entry = {"received_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "reason": reason,
                 "excerpt": frame[:160].decode("utf-8", "replace")}
        with open(self.out / QUARANTINE, "ab") as fh:
            fh.write(orjson.dumps(entry) + b"\n")

    def handle(self, frame: bytes | str) -> None:
        """Write one received frame (or drop it as a duplicate, or quarantine it)."""
        raw = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else bytes(frame)
        if b"\n" in raw:  # one event per line: a raw newline can only be outside JSON strings
            raw = raw.replace(b"\r\n", b" ").replace(b"\n", b" ")
        try:
            ev = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._quarantine(raw, "invalid_json")
            return
        t = ev.get("time_us") if isinstance(ev, dict) else None
        if not isinstance(t, int) or isinstance(t, bool) or t < 0:
            self._quarantine(raw, "no_time_us" if isinstance(ev, dict) else "not_an_object")
            return
        if self.cfg.until_us is not None and t >= self.cfg.until_us:
            self._finish("until")
            return
        key = xxhash.xxh3_64_intdigest(raw)
        if key in self.recent:
            self.report.duplicates += 1
            return
        if self.last_us is not None and t < self.last_us - 2 * self.window_us:
            # older than anything a reconnection asks for: a re-delivery we no longer remember
            self.report.duplicates += 1
            return
        self.files.write(t // 3_600_000_000, t, raw + b"\n")
        self._remember(key, t)
        if self.last_us is None or t > self.last_us:
            self.last_us = t
        self.report.written += 1
        self.total += 1
        commit = ev.get("commit")
        coll = commit.get("collection") if isinstance(commit, dict) else None
        self.report.by_collection[coll or ev.get("kind") or "?"] += 1
        if self._bar is not None:
            self._bar.update(1)
            if self.report.written % 2000 == 0:
                self._bar.set_postfix({k.rsplit(".", 1)[-1]: v for k, v in self.report.by_collection.most_common(6)},
                                      refresh=False)
        if self.report.written % 4096 == 0:
            self._forget_old()
        if self.cfg.max_events is not None and self.total >= self.cfg.max_events:
            self._finish("max_events")
        elif time.monotonic() - self._last_flush >= self.cfg.flush_s:
            self._flush()

    def _finish(self, why: str) -> None:
        self._done = True
        self.report.stopped = why
        self._stop.set()

    def stop(self) -> None:
        """Ask the run to end: the open files are flushed and closed, the cursor written."""
        if not self.report.stopped:
            self.report.stopped = "signal"
        self._stop.set()

    # -- the connection loop --

    async def run(self) -> CollectReport:
        import websockets
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        from blueprint.progress import progress_bar

        self._load()
        if self.cfg.max_events is not None and self.total >= self.cfg.max_events:
            self._finish("max_events")  # the capture is complete already
        loop = asyncio.get_running_loop()
        handlers = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop)
                handlers.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or not POSIX
                pass
        failures = 0
        try:
            with progress_bar(total=self.cfg.max_events, desc="collect", unit="event", enabled=self.progress) as bar:
                self._bar = bar if self.progress else None
                bar.update(self.total)
                while not self._stop.is_set():
                    cursor = None if self.last_us is None else max(0, self.last_us - self.window_us)
                    url = self.cfg.url(cursor)
                    try:
                        # no permessage-deflate: it costs the collector more CPU than the rest of its work
                        # (Jetstream offers its own zstd compression instead)
                        async with websockets.connect(url, max_size=None, open_timeout=15, ping_interval=20,
                                                      ping_timeout=30, close_timeout=5, compression=None) as ws:
                            self.report.connections += 1
                            failures = 0
                            log.info("collect: connected to %s%s", urlsplit(url).netloc,
                                     "" if cursor is None else " (from the cursor minus the window)")
                            await self._receive(ws)
                    except InvalidURI as exc:
                        raise BadInputError(f"not a usable Jetstream URL: {exc}", field="--endpoint") from None
                    except (TimeoutError, ConnectionClosed, InvalidHandshake, OSError) as exc:
                        if self._stop.is_set():
                            break
                        failures += 1
                        self.report.reconnects += 1
                        delay = min(self.cfg.backoff_max_s, self.cfg.backoff_s * 2 ** (failures - 1))
                        delay *= random.uniform(0.5, 1.5)  # jitter: many collectors never retry in step
                        log.warning("collect: connection lost (%s: %s); reconnecting in %.1f s",
                                    type(exc).__name__, str(exc)[:120], delay)
                        self._flush()
                        try:
                            await asyncio.wait_for(self._stop.wait(), timeout=delay)
                        except TimeoutError:
                            pass
                    else:
                        if not self._stop.is_set():  # the server ended the stream: come back for more
                            failures += 1
                            self.report.reconnects += 1
                            self._flush()
                            await asyncio.sleep(min(self.cfg.backoff_max_s, self.cfg.backoff_s) *
                                                random.uniform(0.5, 1.5))
        finally:
            for sig in handlers:
                loop.remove_signal_handler(sig)
            self.files.flush()
            self.flushed_us, self.flushed_total = self.last_us, self.total
            self.files.close(compress=self._done)
            self._write_cursor()
            self._bar = None
        log.info("collect: %d events written, %d duplicates dropped, %d frames quarantined (%s)",
                 self.report.written, self.report.duplicates, sum(self.report.quarantined.values()),
                 self.report.stopped or "stopped")
        return self.report

    async def _receive(self, ws) -> None:
        async def close_on_stop() -> None:
            await self._stop.wait()
            await ws.close()

        watcher = asyncio.ensure_future(close_on_stop())
        try:
            async for frame in ws:
                if self._stop.is_set():
                    break
                self.handle(frame)
        finally:
            watcher.cancel()


def collect(out: str | os.PathLike[str], config: CollectConfig | None = None, *,
            progress: bool = False) -> CollectReport:
    """Run a capture to its end (``until_us``, ``max_events``, or a signal) and return its report."""
    return asyncio.run(Collector(out, config, progress=progress).run())

