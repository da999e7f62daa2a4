"""Run every benchmark in this folder and print one table of headline figures.

    python -m benchmarks [--quick] [--json PATH] [--only ingest,embed] [--log-dir DIR]

Each ``bench_*.py`` runs in a fresh Python process (so that one benchmark's memory, threads and
caches cannot touch the next one's figures) with ``--report``; its own detailed output goes to
``DIR/<name>.log``. ``--quick`` passes ``--quick`` on: small sizes, a few minutes in all, for CI;
the default is the full sizes (hours on a 2-core machine: the scale benchmark alone builds up to
8 million events). In the full run, ``bench_cluster.py --paper-scale`` runs as well, named
``cluster_paper_scale``.

Every row: the benchmark, our figure, the reference's figure measured in the same run, their
ratio, the target, and whether it was met. A benchmark that crashes gives one failed row with
the last line of its error; the exit code is 1 when one crashed (a missed target is a result,
not an error; ``--strict`` makes it one).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import Row, format_table, write_atomic  # noqa: E402

# extra runs of the full mode: (label, script, arguments)
FULL_ONLY = [("cluster_paper_scale", "bench_cluster.py", ["--paper-scale", "--reference-timeout", "900"])]


def runs(quick: bool, only: set[str] | None) -> list[tuple[str, Path, list[str]]]:
    out = [(p.stem.removeprefix("bench_"), p, ["--quick"] if quick else []) for p in sorted(HERE.glob("bench_*.py"))]
    if not quick:
        out += [(label, HERE / script, args) for label, script, args in FULL_ONLY]
    if only:
        unknown = only - {name for name, _, _ in out}
        if unknown:
            known = sorted(n for n, _, _ in out)
            raise SystemExit(f"benchmarks: unknown benchmark(s) {sorted(unknown)}; known: {known}")
        out = [r for r in out if r[0] in only]
    return out


def run_one(name: str, script: Path, args: list[str], log_dir: Path, timeout: float | None
            ) -> tuple[list[Row], float, bool]:
    """Run one benchmark; its rows, its seconds, and whether it ran to the end."""
    report = log_dir / f"{name}.rows.json"
    log = log_dir / f"{name}.log"
    t = time.perf_counter()
    with open(log, "w") as fh:
        try:
            proc = subprocess.run([sys.executable, str(script), *args, "--report", str(report)], stdout=fh,
                                  stderr=subprocess.STDOUT, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    seconds = time.perf_counter() - t
    if code == 0 and report.is_file():
        return [Row(**r) for r in json.loads(report.read_text())], seconds, True
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:] or ["no output"]
    why = f"timed out after {timeout:.0f} s" if code is None else f"exit {code}: {tail[0][:160]}"
    return [Row(name, None, None, None, "runs to the end", False, note=f"{why} (log: {log})")], seconds, False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (CI); default: the full sizes")
    ap.add_argument("--json", metavar="PATH", help="write the rows here as JSON")
    ap.add_argument("--markdown", metavar="PATH", help="write the table here as Markdown (for the README)")
    ap.add_argument("--only", help="comma-separated benchmark names, e.g. ingest,embed")
    ap.add_argument("--log-dir", type=Path, help="keep each benchmark's output here (default: a temporary folder)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per benchmark (default: none)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed, too")
    args = ap.parse_args(argv)
    only = {x.strip() for x in args.only.split(",")} if args.only else None
    todo = runs(args.quick, only)
    log_dir = (args.log_dir or Path(tempfile.mkdtemp(prefix="blueprint-benchmarks-"))).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    crashed = False
    started = datetime.now(UTC)
    for i, (name, script, extra) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {name} ...", end=" ", file=sys.stderr, flush=True)
        got, seconds, ok = run_one(name, script, extra, log_dir, args.timeout)
        crashed |= not ok
        print(f"{seconds:.0f} s{'' if ok else ' (FAILED: see the table)'}", file=sys.stderr, flush=True)
        rows += got
    machine = f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}"
    print(f"\nBluePrint benchmarks ({'quick' if args.quick else 'full'} sizes), {started:%Y-%m-%d}, {machine}; "
          f"logs in {log_dir}\n")
    print(format_table(rows))
    if args.json:
        write_atomic(args.json, json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
    if args.markdown:
        write_atomic(args.markdown, f"Measured {started:%Y-%m-%d} ({'quick' if args.quick else 'full'} sizes), "
                                    f"{machine}.\n\n{format_table(rows, markdown=True)}\n")
    missed = any(r.passed is False for r in rows)
    return 1 if crashed or (args.strict and missed) else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1



if __name__ == "__main__":
    raise SystemExit(main())
