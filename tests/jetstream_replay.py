"""A Jetstream replay server on 127.0.0.1, for the collector's tests and benchmark.

It serves recorded Jetstream lines over the subscribe protocol (a WebSocket at
``/subscribe``, one event per text frame), in ``time_us`` order as Jetstream does,
and honours ``wantedCollections``, ``wantedDids`` and ``cursor`` (events at or after
the cursor). As Jetstream, it sends identity and account events whatever the
collections asked. Faults on demand: drop the connection abruptly after a number of
events (``drops``, one entry per connection), or stop sending after a number of
events and wait (``pause_after``, first connection only).
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import parse_qs, urlsplit

import orjson


class ReplayServer:
    def __init__(self, lines: list[bytes], *, drops: tuple[int, ...] = (), pause_after: int | None = None) -> None:
        events = []
        for raw in lines:
            ev = orjson.loads(raw)
            commit = ev.get("commit") or {}
            events.append((ev["time_us"], ev["did"], ev.get("kind"), commit.get("collection"), raw.decode()))
        self.events = sorted(events, key=lambda e: e[0])  # stable: ties keep the recorded order
        self.drops = list(drops)
        self.pause_after = pause_after
        self.connections: list[dict] = []  # per connection: the query it asked, how many events it got
        self.sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.port = 0

    def select(self, collections=None, dids=None, cursor=None) -> list[str]:
        """The lines a subscriber with these parameters receives, in order."""
        out = []
        for t, did, kind, coll, raw in self.events:
            if cursor is not None and t < cursor:
                continue
            if dids and did not in dids:
                continue
            if collections and kind == "commit" and coll not in collections:
                continue
            out.append(raw)
        return out

    async def _handler(self, ws) -> None:
        q = parse_qs(urlsplit(ws.request.path).query)
        cursor = int(q["cursor"][0]) if "cursor" in q else None
        index = len(self.connections)
        conn = {"cursor": cursor, "collections": q.get("wantedCollections", []), "dids": q.get("wantedDids", []),
                "sent": 0}
        self.connections.append(conn)
        drop = self.drops[index] if index < len(self.drops) else None
        for raw in self.select(set(conn["collections"]), set(conn["dids"]), cursor):
            if drop is not None and conn["sent"] >= drop:
                ws.transport.abort()  # as a network failure: no close frame
                return
            if index == 0 and self.pause_after is not None and conn["sent"] >= self.pause_after:
                await self._stop.wait()
                return
            await ws.send(raw)
            conn["sent"] += 1
            self.sent += 1
        await self._stop.wait()  # a live stream: nothing more for now, but the connection stays

    def _run(self) -> None:
        from websockets.asyncio.server import serve

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(self._handler, "127.0.0.1", 0, max_size=None) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stop.wait()

        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(main())
        self._loop.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    def __enter__(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the replay server did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
