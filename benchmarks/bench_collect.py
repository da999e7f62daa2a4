"""The collector's throughput against the replay server's own send rate.

    python benchmarks/bench_collect.py [--events 200000] [--repeats 3]

The server (tests/jetstream_replay.py, in its own process, on 127.0.0.1) serves the
real capture in tests/data/bluesky-real repeated with shifted times until it has
``--events`` distinct events, as fast as the connection takes them. Two clients read
the whole stream, alternately: a bare one that receives every frame and does nothing
else (the server's send rate), and the collector (parse, deduplicate, write by hour,
flush and cursor every second, zstd at the end). Both run in one process, on one
core. Prints events per second for each and the ratio; target: the collector keeps up
at 20,000 events/s or more.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import emit, median, parse_args, versus  # noqa: E402

from blueprint.collect import CollectConfig, collect  # noqa: E402

REAL = HERE.parent / "tests" / "data" / "bluesky-real" / "jetstream_corpus_expected_v1.jsonl"

_SERVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from jetstream_replay import ReplayServer
lines = open(sys.argv[2], "rb").read().splitlines()
with ReplayServer(lines) as s:
    print(s.port, flush=True)
    sys.stdin.read()
"""


def corpus(path: Path, n: int) -> int:
    """The real events, repeated with times moved on, until there are ``n`` (all distinct)."""
    base = [orjson.loads(x) for x in REAL.read_bytes().splitlines()]
    t0 = min(e["time_us"] for e in base)
    span = max(e["time_us"] for e in base) - t0 + 1000
    with open(path, "wb") as fh:
        for i in range(n):
            ev = dict(base[i % len(base)])
            ev["time_us"] = ev["time_us"] + (i // len(base)) * span
            fh.write(orjson.dumps(ev) + b"\n")
    return n


async def bare(url: str, n: int) -> None:
    import websockets

    async with websockets.connect(url, max_size=None, compression=None) as ws:  # as the collector
        for _ in range(n):
            await ws.recv()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = parse_args(ap, quick=dict(events=20_000, repeats=1))
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        root = Path(tmp)
        n = corpus(root / "events.jsonl", args.events)
        server = subprocess.Popen([sys.executable, "-c", _SERVER, str(HERE.parent / "tests"),
                                   str(root / "events.jsonl")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            url = f"ws://127.0.0.1:{int(server.stdout.readline())}/subscribe"
            times: dict[str, list[float]] = {"bare receive (the server's rate)": [], "blueprint collect": []}
            for i in range(args.repeats):
                t = time.perf_counter()
                asyncio.run(bare(url, n))
                times["bare receive (the server's rate)"].append(time.perf_counter() - t)
                out = root / f"capture-{i}"
                t = time.perf_counter()
                r = collect(out, CollectConfig(endpoint=url, max_events=n, collections=()))
                times["blueprint collect"].append(time.perf_counter() - t)
                assert r.written == n, r.to_dict()
                shutil.rmtree(out)
        finally:
            server.stdin.close()
            server.wait(10)
        base = median(times["bare receive (the server's rate)"])
        print(f"{n:,} events, medians of {args.repeats} runs\n")
        print(f"{'':34} {'median s':>9} {'events/s':>10} {'ratio':>7}")
        for name, ts in times.items():
            m = median(ts)
            print(f"{name:34} {m:9.2f} {n / m:10,.0f} {base / m:7.2f}")
        rate = n / median(times["blueprint collect"])
        print(f"\ncollector: {rate:,.0f} events/s (target at least 20,000): {'met' if rate >= 20_000 else 'missed'}")
        emit([versus("collect vs a bare receiving client", rate, n / base, "events/s", at_least=20_000, on="ours")],
             args)


if __name__ == "__main__":
    main()
