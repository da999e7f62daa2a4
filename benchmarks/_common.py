"""Helpers for the benchmarks: interleaved repeats, medians, peak memory of a child process.

These machines are noisy: every figure is the median of interleaved runs, and every
headline is a ratio of two things measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


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


# --- real servers on 127.0.0.1 (a free port), for the benchmarks and the tests ------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(cmd: list[str], health_url: str, log: Path, *, timeout: float = 300.0, env: dict | None = None):
    """Start ``cmd`` in its own process group, wait until ``health_url`` answers 200, stop the group at the end.

    The server's output goes to ``log``, shown in the failure when it never comes up.
    """
    import httpx

    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(health_url, timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[0]} did not answer {health_url} in {timeout:.0f} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- the shared report: every benchmark returns rows, ``python -m benchmarks`` gathers them ---------------

@dataclass
class Row:
    """One headline figure: ours against the reference measured in the same run, and the target it must meet.

    ``ratio`` is what ``target`` is stated on (``ratio >= 2``, ``ratio <= 1.5``); where a figure has no
    reference (a memory ceiling, a recall) ``reference`` and ``ratio`` are None and the target is on ``ours``.
    """

    name: str
    ours: float | None
    reference: float | None
    ratio: float | None
    target: str
    passed: bool | None
    unit: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _check(value: float, at_least: float | None, at_most: float | None) -> bool:
    return (at_least is None or value >= at_least) and (at_most is None or value <= at_most)


def _target(label: str, at_least: float | None, at_most: float | None) -> str:
    parts = ([f"{label} >= {at_least:g}"] if at_least is not None else []) + \
            ([f"{label} <= {at_most:g}"] if at_most is not None else [])
    return " and ".join(parts) or "reported"


def versus(name: str, ours: float, reference: float, unit: str, *, at_least: float | None = None,
           at_most: float | None = None, on: str = "ratio", note: str = "") -> Row:
    """A figure against the reference's; the ratio is always ours / reference, so that the target reads
    on the figures as printed (a rate: ``at_least``; a time or a memory: ``at_most``)."""
    ratio = ours / reference if reference else None
    checked = ratio if on == "ratio" else ours  # on="ours": an absolute target, the reference shown for scale
    passed = None if checked is None or (at_least is None and at_most is None) else _check(checked, at_least, at_most)
    label = "ratio" if on == "ratio" else (unit or "value")
    return Row(name, ours, reference, ratio, _target(label, at_least, at_most), passed, unit, note)


def alone(name: str, ours: float, unit: str, *, at_least: float | None = None, at_most: float | None = None,
          note: str = "") -> Row:
    """A figure with no reference implementation, against an absolute target."""
    passed = None if at_least is None and at_most is None else _check(ours, at_least, at_most)
    return Row(name, ours, None, None, _target(unit or "value", at_least, at_most), passed, unit, note)


def parse_args(ap: argparse.ArgumentParser, quick: dict) -> argparse.Namespace:
    """Add ``--quick`` (the sizes in ``quick`` replace the defaults: seconds, for CI) and ``--report PATH``."""
    ap.add_argument("--quick", action="store_true", help="small sizes, for CI: " +
                    ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in quick.items()))
    ap.add_argument("--report", help="write the headline rows here as JSON (what python -m benchmarks reads)")
    first, _ = ap.parse_known_args()
    if first.quick:
        ap.set_defaults(**quick)
    return ap.parse_args()


def emit(rows: list[Row], args: argparse.Namespace) -> None:
    """Print the headline rows and, with ``--report``, write them as JSON (atomically)."""
    print()
    print(format_table(rows))
    if getattr(args, "report", None):
        write_atomic(args.report, json.dumps([r.to_dict() for r in rows], indent=2) + "\n")


def write_atomic(path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename: a reader never sees half a report."""
    from pathlib import Path

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if value == 0 or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:,.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def format_table(rows: list[Row], markdown: bool = False) -> str:
    """One line per row: benchmark, ours, reference, ratio, target, pass/fail."""
    head = ["benchmark", "ours", "reference", "ratio", "target", "result"]
    body = [[r.name, fmt(r.ours, r.unit), fmt(r.reference, r.unit), "-" if r.ratio is None else f"{r.ratio:.2f}",
             r.target, {True: "pass", False: "FAIL", None: "-"}[r.passed]] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] + ["---:"] * 3 + ["---"] * 2) + " |"]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) if i in (0, 4, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in body]
    return "\n".join(out)
