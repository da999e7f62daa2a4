"""Constrained k-means: the fast path (k-means + repair) against KMeansConstrained 0.9.1.

    python benchmarks/bench_cluster.py [--sizes 20000,50000] [--ks 25,100] [--repeats 1]

Synthetic users: 384-dimensional unit vectors drawn around 60 latent personas of very
unequal sizes (so that some clusters are small and the constraint binds), size_min=10,
n_init=1 and the same seed for both. Prints time, inertia and the smallest cluster for
both, the speed-up, and the inertia ratio (fast / reference).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median  # noqa: E402

from blueprint.simpact.cluster import ClusterConfig, cluster  # noqa: E402


def users(n: int, dim: int = 384, personas: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.2, personas) + 0.05
    sizes = rng.multinomial(n, weights / weights.sum())
    centers = rng.normal(size=(personas, dim))
    x = np.concatenate([c + rng.normal(scale=rng.uniform(0.6, 1.4), size=(s, dim)) for c, s in zip(centers, sizes)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[rng.permutation(n)].astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,50000")
    ap.add_argument("--ks", default="25,100")
    ap.add_argument("--size-min", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1, help="runs of the fast path (the reference runs once)")
    args = ap.parse_args()
    print(f"{'n':>7} {'k':>4} | {'reference s':>11} {'inertia':>10} {'min':>4} | {'fast s':>7} {'inertia':>10} "
          f"{'min':>4} | {'speed-up':>8} {'inertia ratio':>13}")
    for n in map(int, args.sizes.split(",")):
        x = users(n)
        for k in map(int, args.ks.split(",")):
            base = dict(partitions=(k,), size_min=args.size_min, seed=0, n_init=1)
            t = time.perf_counter()
            ref = cluster(x, k, ClusterConfig(method="exact", **base))
            t_ref = time.perf_counter() - t
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                fast = cluster(x, k, ClusterConfig(method="fast", **base))
                times.append(time.perf_counter() - t)
            t_fast = median(times)
            assert fast.sizes.min() >= args.size_min, "the fast path broke the constraint"
            print(f"{n:7d} {k:4d} | {t_ref:11.2f} {ref.inertia:10.2f} {ref.sizes.min():4d} | {t_fast:7.2f} "
                  f"{fast.inertia:10.2f} {fast.sizes.min():4d} | {t_ref / t_fast:7.1f}x {fast.inertia / ref.inertia:13.4f}")


if __name__ == "__main__":
    main()
