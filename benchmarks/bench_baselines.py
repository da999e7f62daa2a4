"""Baselines at scale: the prior baselines on 100,000 test rows, and rows per second of retrieval and gbdt.

    python benchmarks/bench_baselines.py [--rows 100000] [--neighbour-rows 10000]

A dataset folder is written on the spot from synthetic texts: threads of 1 to 5
messages, 25 clusters, actions drawn from a skewed mix, as many train as test rows.
``majority``, ``persona_prior`` and ``random`` must each write a submission for
``--rows`` test rows in under 5 s (median of interleaved runs, reading and writing
included). ``retrieval`` and ``gbdt`` are timed on ``--neighbour-rows`` test rows with
as many train rows, once with a cold embedding cache and once warm.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alone, emit, interleaved, median, parse_args, synthetic_texts  # noqa: E402

TARGET_S = 5.0
MIX = {"like": 30, "reply": 18, "post": 16, "repost": 12, "quote": 7, "follow": 6, "block": 2, "unlike": 2,
       "post_delete": 2, "unfollow": 1.5, "unrepost": 1.5, "post_update": 1, "unblock": 1}


def write_dataset(root: Path, texts: list[str], rows: int, seed: int = 0,
                  splits: tuple[str, ...] = ("train", "test")) -> Path:
    """A dataset folder (README.md plus Parquet shards of config 25_clusters) with ``rows`` train and test rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from blueprint.actions import ACTIONS, TEXT_ACTIONS
    from blueprint.data import features

    rng = random.Random(seed)
    names, weights = list(MIX), list(MIX.values())
    schema = features().arrow_schema
    (root / "data" / "25_clusters").mkdir(parents=True)
    (root / "README.md").write_text("---\nconfigs: []\n---\nbenchmark data\n")
    for split in splits:
        out = []
        for i in range(rows):
            action = rng.choices(names, weights)[0]
            length = 1 if action == "post" else rng.choice([2, 2, 3, 4, 5])
            thread = [{"user_id": f"u{rng.randrange(6)}", "text": rng.choice(texts), "relative_integer_time": t,
                       "actions": None} for t in range(length)]
            thread[-1]["actions"] = {a: a == action for a in ACTIONS}
            text = thread[-1]["text"] if action in TEXT_ACTIONS else None
            thread[-1]["text"] = text
            out.append({"id": f"{split}{i}", "thread": thread, "cluster_id": rng.randrange(25),
                        "action": ACTIONS.index(action), "target_text": text})
        pq.write_table(pa.Table.from_pylist(out, schema=schema), root / "data" / "25_clusters" /
                       f"{split}-00000-of-00001.parquet")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--neighbour-rows", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--texts", type=int, default=20_000, help="synthetic texts the rows draw from")
    args = parse_args(ap, quick=dict(rows=5_000, neighbour_rows=300, repeats=1, texts=2_000))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-baselines-") as tmp:
        os.environ["BLUEPRINT_CACHE"] = str(Path(tmp) / "cache")
        from blueprint.baselines import run_baseline

        texts = synthetic_texts(Path(tmp), args.texts, users=max(60, args.texts // 33), seed=5, days=3.0)
        big = write_dataset(Path(tmp) / "big", texts, args.rows)
        out = Path(tmp) / "pred.jsonl"
        fast = {name: (lambda name=name: run_baseline(name, big, "25_clusters", "test", out))
                for name in ("majority", "persona_prior", "random")}
        times = interleaved(fast, args.repeats)
        print(f"prior baselines, {args.rows:,} train and {args.rows:,} test rows (read, fit, predict, write)")
        print(f"{'':16} {'median s':>9} {'rows/s':>12}  target < {TARGET_S:.0f} s")
        for name, ts in times.items():
            m = median(ts)
            print(f"{name:16} {m:9.2f} {args.rows / m:12,.0f}  {'PASS' if m < TARGET_S else 'FAIL'}")
            rows.append(alone(f"baseline {name}, {args.rows:,} rows", m, "s", at_most=TARGET_S))
        small = write_dataset(Path(tmp) / "small", texts, args.neighbour_rows, seed=1)
        print(f"\nneighbour baselines, {args.neighbour_rows:,} train and {args.neighbour_rows:,} test rows, "
              "all-MiniLM-L6-v2 context embeddings")
        print(f"{'':16} {'cache':>6} {'seconds':>9} {'test rows/s':>12}")
        for name in ("retrieval", "gbdt"):
            for cache in ("cold", "warm"):
                if cache == "cold":
                    import shutil

                    shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)
                t = time.perf_counter()
                run_baseline(name, small, "25_clusters", "test", out)
                s = time.perf_counter() - t
                print(f"{name:16} {cache:>6} {s:9.2f} {args.neighbour_rows / s:12,.0f}")
                rows.append(alone(f"baseline {name}, {cache} cache", args.neighbour_rows / s, "rows/s"))
    emit(rows, args)


if __name__ == "__main__":
    main()
