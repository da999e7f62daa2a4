"""The collector against a Jetstream replay server on 127.0.0.1 serving the real capture.

After each run, the capture's files, read in hour order, hold exactly the events the
server had for the subscription, once each and in the server's order.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zstandard
from jetstream_replay import ReplayServer

from blueprint.actions import COLLECTIONS
from blueprint.collect import CURSOR, QUARANTINE, CollectConfig, Collector, collect
from blueprint.errors import BadInputError

REAL = Path(__file__).parent / "data" / "bluesky-real" / "jetstream_corpus_expected_v1.jsonl"
WANTED = tuple(sorted(COLLECTIONS))


def real_lines() -> list[bytes]:
    return REAL.read_bytes().splitlines()


def captured(root: Path) -> list[str]:
    """Every line of the capture, hour folders in order, files in name order (plain or zstd)."""
    out = []
    for hour in sorted({p.parent for p in root.glob("*/*/*/jetstream*")}):
        for f in sorted(hour.iterdir()):
            data = f.read_bytes()
            if f.suffix == ".zst":
                data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
            out += data.decode().splitlines()
    return out


def cfg(server: ReplayServer, **kw) -> CollectConfig:
    return CollectConfig(endpoint=server.url, backoff_s=0.05, flush_s=0.0, **kw)


def test_a_full_capture_is_every_event_once_in_order(tmp_path):
    with ReplayServer(real_lines()) as server:
        want = server.select(set(WANTED))
        r = collect(tmp_path, cfg(server, max_events=len(want)))
    # 148 commits of the five collections, and the identity and account events, which come whatever is asked
    assert captured(tmp_path) == want and len(want) == 150
    assert r.written == 150 and r.duplicates == 0 and r.stopped == "max_events"
    q = server.connections[0]
    assert sorted(q["collections"]) == sorted(WANTED) and q["cursor"] is None
    assert list(tmp_path.glob("*/*/*/jetstream.jsonl.zst")) and not list(tmp_path.glob("*/*/*/*.jsonl"))
    assert orjson.loads((tmp_path / CURSOR).read_bytes())["time_us"] == max(orjson.loads(x)["time_us"] for x in want)


def test_collections_and_dids_are_asked_of_the_server(tmp_path):
    like = "app.bsky.feed.like"
    lines = real_lines()
    did = orjson.loads(lines[0])["did"]
    (tmp_path / "dids.txt").write_text(f"# one user\n{did}\n")
    from blueprint.collect import read_dids

    with ReplayServer(lines) as server:
        want = server.select({like}, {did})
        collect(tmp_path / "out", cfg(server, collections=(like,), dids=read_dids(tmp_path / "dids.txt"),
                                      max_events=len(want)))
    assert server.connections[0]["collections"] == [like] and server.connections[0]["dids"] == [did]
    assert captured(tmp_path / "out") == want and len(want) >= 1


def test_a_server_that_drops_the_connection_twice(tmp_path):
    with ReplayServer(real_lines(), drops=(40, 95)) as server:
        want = server.select(set(WANTED))
        r = collect(tmp_path, cfg(server, max_events=len(want)))
    assert captured(tmp_path) == want
    assert r.reconnects == 2 and len(server.connections) == 3
    # each reconnection asked from the cursor minus the window, and the window's events came again, dropped
    times = [orjson.loads(x)["time_us"] for x in want]
    assert server.connections[1]["cursor"] == times[39] - 5_000_000
    assert r.duplicates > 0


def test_a_collector_killed_and_restarted(tmp_path):
    lines = real_lines()
    with ReplayServer(lines, pause_after=60) as server:
        want = server.select(set(WANTED))
        cmd = [sys.executable, "-m", "blueprint.cli", "-q", "collect", "--out", str(tmp_path), "--endpoint", server.url,
               "--flush-s", "0", "--max-events", str(len(want))]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(captured(tmp_path)) < 60 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(captured(tmp_path)) == 60
        # as if the kill fell in the middle of a write
        (open_file,) = tmp_path.glob("*/*/*/jetstream.jsonl")
        with open(open_file, "ab") as fh:
            fh.write(want[60][:50].encode())
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert captured(tmp_path) == want
    assert server.connections[1]["cursor"] == orjson.loads(want[59])["time_us"] - 5_000_000


@pytest.mark.full  # a capture killed and resumed: a minute
def test_sigterm_closes_the_file_cleanly_and_the_capture_goes_on_later(tmp_path):
    with ReplayServer(real_lines(), pause_after=30) as server:
        want = server.select(set(WANTED))
        cmd = [sys.executable, "-m", "blueprint.cli", "-q", "collect", "--out", str(tmp_path), "--endpoint", server.url,
               "--max-events", str(len(want))]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp_path / CURSOR).exists():
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "30 events written" in out and "stopped by signal" in out
        assert captured(tmp_path) == want[:30]  # flushed and closed: every line whole
        assert orjson.loads((tmp_path / CURSOR).read_bytes())["time_us"] == orjson.loads(want[29])["time_us"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert captured(tmp_path) == want


def shifted(lines: list[bytes], boundary_us: int) -> list[bytes]:
    """The real events, one second apart, half before and half after an hour boundary."""
    evs = sorted(lines, key=lambda x: orjson.loads(x)["time_us"])
    out = []
    for i, raw in enumerate(evs):
        old = orjson.loads(raw)["time_us"]
        new = boundary_us + (i - len(evs) // 2) * 1_000_000
        out.append(raw.replace(b'"time_us":%d' % old, b'"time_us":%d' % new, 1))
    return out


def test_hour_rotation_across_a_boundary(tmp_path):
    boundary = 1_783_177_200_000_000  # 2026-07-04T15:00:00Z
    lines = shifted(real_lines(), boundary)
    with ReplayServer(lines) as server:
        want = server.select(set(WANTED))
        collect(tmp_path, cfg(server, max_events=len(want)))
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("*/*/*/*"))
    assert files == ["2026-07/04/14/jetstream.jsonl.zst", "2026-07/04/15/jetstream.jsonl.zst"]
    assert captured(tmp_path) == want
    before = captured(tmp_path)[: len(want) // 2]
    assert all(orjson.loads(x)["time_us"] < boundary for x in before)


def test_an_old_hour_is_compressed_while_the_capture_goes_on(tmp_path):
    lines = shifted(real_lines(), 1_783_177_200_000_000)
    late = orjson.loads(lines[-1])
    late["time_us"] += 3_600_000_000  # an hour on (16:01): the 14:00 file is done, 15:00 may still get stragglers
    lines.append(orjson.dumps(late))
    with ReplayServer(lines) as server:
        want = server.select(set(WANTED))
        collector = Collector(tmp_path, cfg(server, max_events=len(want)))
        # stop by hand after the last event but before the end of the capture compresses the rest
        import asyncio

        real_finish = collector._finish
        collector._finish = lambda why: collector.stop()
        asyncio.run(collector.run())
        collector._finish = real_finish
    assert (tmp_path / "2026-07/04/14/jetstream.jsonl.zst").exists()
    assert (tmp_path / "2026-07/04/15/jetstream.jsonl").exists()  # the previous hour stays open for stragglers
    assert captured(tmp_path) == want


def test_malformed_frames_are_quarantined(tmp_path):
    lines = real_lines()[:20]
    bad = [b'{"did":"did:plc:x","kind":"commit"', b'{"did":"did:plc:x","kind":"commit","time_us":"soon"}']
    with ReplayServer(lines) as server:
        server.events.insert(5, (0, "did:plc:x", None, None, bad[0].decode()))
        server.events.insert(9, (0, "did:plc:x", None, None, bad[1].decode()))
        want = server.select(set(WANTED))
        r = collect(tmp_path, cfg(server, max_events=len(want) - 2))
    assert captured(tmp_path) == [x for x in want if x.encode() not in bad]
    assert dict(r.quarantined) == {"invalid_json": 1, "no_time_us": 1}
    q = [orjson.loads(x) for x in (tmp_path / QUARANTINE).read_bytes().splitlines()]
    assert [x["reason"] for x in q] == ["invalid_json", "no_time_us"] and q[0]["excerpt"].startswith('{"did"')


def test_the_capture_feeds_build(tmp_path, tiny_model):
    from blueprint.simpact.ingest import ingest

    with ReplayServer(real_lines()) as server:
        want = server.select(set(WANTED))
        collect(tmp_path / "raw", cfg(server, max_events=len(want)))
    r = ingest([tmp_path / "raw"], tmp_path / "ing")
    assert r.totals()["lines"] == 150 and r.totals()["quarantined"] == 0 and r.totals()["skipped_files"] == 0


def test_bad_options():
    with pytest.raises(BadInputError, match="ws://"):
        CollectConfig(endpoint="https://example.org/subscribe")
    from blueprint.collect import parse_time

    assert parse_time("2026-07-04T15:00:00Z") == 1_783_177_200_000_000 == parse_time("1783177200000000")
    with pytest.raises(BadInputError, match="ISO 8601"):
        parse_time("tomorrow")
