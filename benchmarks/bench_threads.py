"""The threads stage: its speed against the in-memory replay it replaced, and against another revision of itself.

    python benchmarks/bench_threads.py [--users N] [--repeats R] [--against REV] [--json PATH]

One synthetic corpus is ingested once; then, interleaved, round after round, each
contender rebuilds the threads from the same events in a fresh process (the import
time is not counted; the stage is):

- ``ours``: this tree's ``build_threads`` (DuckDB out of core, the replay over integers);
- ``in-memory replay``: ``tests/thread_replay.py``, the implementation the stage
  replaced and still the tests' reference for its rows; it holds every event in Python;
- ``--against REV`` (for instance the commit before a change to the stage): that
  revision's ``build_threads``, checked out into a temporary git worktree. A
  refactoring of the stage must keep ``ours / REV`` within its noise (target: at
  most 1.05).

Every contender's rows are checked equal to ours before any time is reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import emit, median, parse_args, versus  # noqa: E402

_STAGE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from blueprint.simpact.threads import ThreadConfig, build_threads
t = time.perf_counter()
build_threads(sys.argv[2], sys.argv[3], ThreadConfig())
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

_REFERENCE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from thread_replay import replay
from blueprint.simpact.threads import ThreadConfig
t = time.perf_counter()
rows, texts, quarantine, report = replay(sys.argv[2], ThreadConfig())
print(json.dumps({"seconds": time.perf_counter() - t, "rows": len(rows)}))
"""


def run(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def worktree(rev: str, where: Path) -> Path:
    """A checkout of ``rev`` (its own files only) at ``where``."""
    subprocess.run(["git", "worktree", "add", "--detach", str(where), rev], cwd=HERE.parent, check=True,
                   capture_output=True)
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=6000, help="synthetic users (30 events each)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--against", default=None, metavar="REV", help="also time this git revision's stage")
    ap.add_argument("--json", default=None, help="write the medians here")
    args = parse_args(ap, {"users": 600, "repeats": 3})

    from blueprint.simpact.ingest import IngestConfig, ingest
    from blueprint.simpact.threads import read_threads
    from blueprint.synth import SynthConfig, synthesize

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize(root / "raw", SynthConfig(users=args.users, seed=1, days=5.0))
        report = ingest([root / "raw"], root / "ing", IngestConfig(workers=2)).totals()
        print(f"{report['events']:,} events from {args.users:,} users")
        contenders = {"ours": (_STAGE, str(HERE.parent))}
        if args.against:
            contenders[args.against] = (_STAGE, str(worktree(args.against, root / "rev")))
        times: dict[str, list[float]] = {name: [] for name in [*contenders, "in-memory replay"]}
        try:
            for i in range(args.repeats):
                for name, (code, tree) in contenders.items():
                    out = root / f"threads-{name.replace('/', '_')}-{i}"
                    times[name].append(run(code, tree, str(root / "ing"), str(out))["seconds"])
                    if i == 0 and name != "ours":  # the same rows, or no time is worth reporting
                        assert read_threads(out).equals(read_threads(root / "threads-ours-0")), name
                if i < max(1, args.repeats // 2):  # the reference is slow: fewer rounds of it
                    times["in-memory replay"].append(run(_REFERENCE, str(HERE.parent / "tests"),
                                                         str(root / "ing"))["seconds"])
        finally:
            if args.against:
                subprocess.run(["git", "worktree", "remove", "--force", str(root / "rev")], cwd=HERE.parent,
                               capture_output=True)
        med = {name: median(ts) for name, ts in times.items()}
        print(f"{'':24} {'median s':>9} {'events/s':>12}")
        for name, m in med.items():
            print(f"{name:24} {m:9.2f} {report['events'] / m:12,.0f}")
        if args.json:
            Path(args.json).write_text(json.dumps({"events": report["events"], "medians": med, "times": times},
                                                  indent=2))
        n = report["events"]
        rows = [versus(f"threads stage {n:,} events: vs the in-memory replay", n / med["ours"],
                       n / med["in-memory replay"], "events/s",
                       note="the replay the stage replaced (tests/thread_replay.py), in one process")]
        if args.against:
            rows.append(versus(f"threads stage {n:,} events: time vs {args.against}", med["ours"],
                               med[args.against], "s", at_most=1.05, note="a refactoring keeps the stage's speed"))
        emit(rows, args)


if __name__ == "__main__":
    main()
