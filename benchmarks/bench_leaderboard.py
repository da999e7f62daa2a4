"""The leaderboard and the validator at scale.

    python benchmarks/bench_leaderboard.py [--results 200] [--rows 100000]

1. ``blueprint leaderboard`` over ``--results`` results files (target: under 5 s). The
   files are copies of one real results file, scored here on a small synthetic build,
   with their model names and headline numbers varied.
2. ``blueprint validate``'s reading of a ``--rows`` submission against reading the same
   file with ``orjson`` line by line (target: at most 1.5x), medians of interleaved runs.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import orjson  # noqa: E402
from _common import alone, emit, interleaved, median, parse_args, versus  # noqa: E402

from blueprint.actions import ACTIONS, TEXT_ACTIONS  # noqa: E402

RENDER_TARGET_S = 5.0
VALIDATE_TARGET = 1.5


def results_files(root: Path, n: int) -> Path:
    """``n`` results files made from one real one (a small build, the majority baseline, scored)."""
    from blueprint.cli import main

    raw, ds = root / "raw", root / "ds"
    assert main(["-q", "synth", "--out", str(raw), "--users", "120", "--days", "2"]) == 0
    assert main(["-q", "build", str(raw), "--out", str(ds), "--partitions", "5", "--size-min", "5",
                 "--secret-file", str(root / "s.key")]) == 0
    preds = root / "p.jsonl"
    assert main(["-q", "baseline", "cluster_majority", "--dataset", str(ds), "--config", "5_clusters",
                 "--out", str(preds)]) == 0
    one = root / "one.json"
    assert main(["-q", "score", str(preds), "--dataset", str(ds), "--config", "5_clusters", "--out", str(one),
                 "--bootstrap", "20"]) == 0
    base = orjson.loads(one.read_bytes())
    out = root / "results"
    out.mkdir()
    rng = random.Random(0)
    for i in range(n):
        r = dict(base, model_name=f"model-{i:03d}")
        r["results"] = {k: (v * rng.uniform(0.8, 1.2) if isinstance(v, float) else v)
                        for k, v in base["results"].items()}
        (out / f"model-{i:03d}.json").write_bytes(orjson.dumps(r))
    return out


def submission(path: Path, n: int) -> Path:
    rng = random.Random(1)
    with open(path, "wb") as fh:
        for i in range(n):
            a = rng.choice(ACTIONS)
            fh.write(orjson.dumps({"id": f"row{i:07d}", "action": a,
                                   "text": "a generated reply of some length" if a in TEXT_ACTIONS else None}) + b"\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=int, default=200)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = parse_args(ap, quick=dict(results=20, rows=10_000, repeats=2))
    from blueprint.leaderboard.render import render
    from blueprint.leaderboard.submission import read_predictions, validate

    with tempfile.TemporaryDirectory(prefix="bench-board-") as tmp:
        root = Path(tmp)
        res = results_files(root, args.results)
        times = []
        for k in range(3):
            t = time.perf_counter()
            render(res, root / f"site{k}")
            times.append(time.perf_counter() - t)
        m = median(times)
        print(f"leaderboard over {args.results} results files: median {m:.2f} s (target < {RENDER_TARGET_S:.0f} s): "
              f"{'PASS' if m < RENDER_TARGET_S else 'FAIL'}")
        sub = submission(root / "sub.jsonl", args.rows)
        ids = {f"row{i:07d}" for i in range(args.rows)}  # the split's ids, loaded once, as check() does

        def plain():
            with open(sub, "rb") as fh:
                for line in fh:
                    orjson.loads(line)

        def ours():
            preds = read_predictions(sub)
            assert not validate(preds, ids)

        t = interleaved({"orjson line by line": plain, "blueprint validate": ours}, args.repeats)
        ratio = median(t["blueprint validate"]) / median(t["orjson line by line"])
        print(f"validate {args.rows:,} rows: {median(t['blueprint validate']):.3f} s against "
              f"{median(t['orjson line by line']):.3f} s for orjson line by line: {ratio:.2f}x "
              f"(target <= {VALIDATE_TARGET}x): {'PASS' if ratio <= VALIDATE_TARGET else 'FAIL'}")
        emit([alone(f"leaderboard over {args.results} results files", m, "s", at_most=RENDER_TARGET_S),
              versus(f"validate {args.rows:,} rows vs orjson line by line", median(t["blueprint validate"]),
                     median(t["orjson line by line"]), "s", at_most=VALIDATE_TARGET)], args)


if __name__ == "__main__":
    main()
