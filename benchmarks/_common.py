"""Helpers for the benchmarks: interleaved repeats, medians, peak memory of a child process.

These machines are noisy: every figure is the median of interleaved runs, and every
headline is a ratio of two things measured in the same run.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Run each function once per round, round after round; return every wall time."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def print_rates(times: dict[str, list[float]], n: int, unit: str, base: float, ratio_label: str,
                width: int = 30) -> None:
    """One row per contender: median seconds, ``unit`` per second over ``n`` items, and ``base / median``."""
    print(f"{'':{width}} {'median s':>9} {unit + '/s':>12} {ratio_label:>14}")
    for name, ts in times.items():
        m = median(ts)
        print(f"{name:{width}} {m:9.2f} {n / m:12,.0f} {base / m:14.2f}")


def peak_rss_mb(code: str) -> tuple[float, dict]:
    """Run ``code`` in a fresh Python; return the peak RSS (MB) over it and its children, and its JSON output."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    return out.get("peak_rss_mb", usage.ru_maxrss / 1024), out


def self_peak_rss_mb() -> float:
    """Peak RSS of this process and of its finished children, in MB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def synthetic_texts(root, n: int, *, users: int, seed: int, days: float, pii_rate: float = 0.1) -> list[str]:
    """Up to ``n`` post texts from a synthetic corpus written under ``root`` (in file order)."""
    from pathlib import Path

    import orjson

    from blueprint.synth import SynthConfig, synthesize

    raw = Path(root) / "raw"
    synthesize(raw, SynthConfig(users=users, seed=seed, days=days, pii_rate=pii_rate))
    out: list[str] = []
    for f in sorted(raw.rglob("jetstream*.jsonl")):
        for line in f.read_bytes().splitlines():
            rec = orjson.loads(line).get("commit", {}).get("record") or {}
            if isinstance(rec.get("text"), str) and rec["text"]:
                out.append(rec["text"])
                if len(out) == n:
                    return out
    return out
