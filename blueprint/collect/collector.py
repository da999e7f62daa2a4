"""The collector: a Jetstream subscription written verbatim, each event once, resumable from its cursor."""

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
from urllib.parse import urlsplit

import orjson
import xxhash

from blueprint._io import write_json
from blueprint.collect.config import CURSOR, FILE, QUARANTINE, CollectConfig
from blueprint.collect.files import HourFiles, cut_partial_line
from blueprint.errors import BadInputError

log = logging.getLogger(__name__)


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
        self.files = HourFiles(self.out, self.cfg.compress_level)
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
            cut_partial_line(path)
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
                        raise BadInputError(f"not a usable Jetstream URL: {exc}", field="endpoint") from None
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


