"""Constrained k-means: the fast path (k-means + repair) against KMeansConstrained 0.9.1.

    python benchmarks/bench_cluster.py [--sizes 20000,50000] [--ks 25,100] [--repeats 1]
    python benchmarks/bench_cluster.py --paper-scale [--reference-timeout 3600]

Synthetic users: 384-dimensional unit vectors drawn around 60 latent personas of very
unequal sizes (so that some clusters are small and the constraint binds), size_min=10,
n_init=1 and the same seed for both. Prints time, inertia and the smallest cluster for
both, the speed-up, and the inertia ratio (fast / reference). Headline rows: the time ratio (target: the
fast path takes less time than the exact solver) and the inertia ratio (reported, no target: the exact
solver's optimum is the reference; the fast path trades some of it for time).

``--paper-scale`` runs the paper's largest partition: n = 236,331 users, k = 1000,
size_min = 10, with the build's default settings (n_init = 3; ``--n-init`` to change). It prints the fast
path's time and peak memory, checks the constraint, and runs KMeansConstrained in a
child process under the same settings for at most ``--reference-timeout`` seconds
(and 16 GB of address space): its inertia where it finishes, or how it ended.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alone, emit, median, parse_args, self_peak_rss_mb, versus  # noqa: E402

from blueprint.simpact.cluster import ClusterConfig, cluster  # noqa: E402


def users(n: int, dim: int = 384, personas: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.2, personas) + 0.05
    sizes = rng.multinomial(n, weights / weights.sum())
    centers = rng.normal(size=(personas, dim))
    x = np.concatenate([c + rng.normal(scale=rng.uniform(0.6, 1.4), size=(s, dim)) for c, s in zip(centers, sizes)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[rng.permutation(n)].astype(np.float32)


PAPER_N, PAPER_K = 236_331, 1000

_REFERENCE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from bench_cluster import users, PAPER_N, PAPER_K
from blueprint.simpact.cluster import ClusterConfig, cluster
x = users(PAPER_N)
t = time.perf_counter()
p = cluster(x, PAPER_K, ClusterConfig(partitions=(PAPER_K,), size_min=10, method="exact", seed=0,
                                      n_init=int(sys.argv[2])))
print(json.dumps({"seconds": time.perf_counter() - t, "inertia": p.inertia, "min": int(p.sizes.min())}))
"""


def paper_scale(timeout: float, n_init: int = 3) -> dict:
    x = users(PAPER_N)
    before = self_peak_rss_mb()
    t = time.perf_counter()
    part = cluster(x, PAPER_K, ClusterConfig(partitions=(PAPER_K,), size_min=10, seed=0, n_init=n_init))
    seconds = time.perf_counter() - t
    sizes = part.sizes
    row = {"n": PAPER_N, "k": PAPER_K, "size_min": 10, "n_init": n_init, "seconds": seconds,
           "peak_rss_mb": self_peak_rss_mb(),
           "rss_before_mb": before, "inertia": part.inertia, "smallest": int(sizes.min()),
           "largest": int(sizes.max()), "constraint_held": bool(sizes.min() >= 10)}
    print(f"fast path: n={PAPER_N:,} k={PAPER_K} size_min=10 n_init={n_init}: {seconds:,.0f} s, peak RSS "
          f"{row['peak_rss_mb']:,.0f} MB, inertia {part.inertia:,.2f}, sizes {sizes.min()}..{sizes.max()}, "
          f"constraint held: {row['constraint_held']}", flush=True)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", _REFERENCE, str(Path(__file__).resolve().parent), str(n_init)],
                              capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
        if proc.returncode == 0:
            ref = json.loads(proc.stdout.strip().splitlines()[-1])
            row["reference"] = {**ref, "inertia_ratio": part.inertia / ref["inertia"]}
            print(f"KMeansConstrained: {ref['seconds']:,.0f} s, inertia {ref['inertia']:,.2f}; "
                  f"inertia ratio (fast / reference) {part.inertia / ref['inertia']:.4f}")
        else:
            why = (proc.stderr.strip().splitlines() or ["killed"])[-1][:200]
            row["reference"] = {"finished": False, "seconds": time.perf_counter() - t, "why": why}
            print(f"KMeansConstrained did not finish (exit {proc.returncode} after "
                  f"{time.perf_counter() - t:,.0f} s): {why}")
    except subprocess.TimeoutExpired:
        row["reference"] = {"finished": False, "seconds": timeout, "why": f"still running after {timeout:.0f} s"}
        print(f"KMeansConstrained did not finish within {timeout:,.0f} s")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,50000")
    ap.add_argument("--ks", default="25,100")
    ap.add_argument("--size-min", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1, help="runs of the fast path (the reference runs once)")
    ap.add_argument("--paper-scale", action="store_true", help="n=236,331, k=1000, size_min=10 (see above)")
    ap.add_argument("--reference-timeout", type=float, default=3600.0)
    ap.add_argument("--n-init", type=int, default=3, help="k-means starts, both paths (default 3, as the build)")
    ap.add_argument("--json", help="write the --paper-scale row here")
    args = parse_args(ap, quick=dict(sizes="3000", ks="25"))
    rows = []
    if args.paper_scale:
        row = paper_scale(args.reference_timeout, args.n_init)
        if args.json:
            Path(args.json).write_text(json.dumps(row, indent=2) + "\n")
        label = f"cluster n={PAPER_N:,} k={PAPER_K}"
        ref = row["reference"]
        if ref.get("finished", True):
            rows.append(versus(f"{label}: time vs KMeansConstrained", row["seconds"], ref["seconds"], "s", at_most=1.0))
            rows.append(versus(f"{label}: inertia vs KMeansConstrained", row["inertia"], ref["inertia"], ""))
        else:
            rows.append(alone(f"{label}: time", row["seconds"], "s",
                              note=f"KMeansConstrained did not finish: {ref['why']}"))
        rows.append(alone(f"{label}: peak RSS", row["peak_rss_mb"], "MB", at_most=8192))
        rows.append(alone(f"{label}: smallest cluster", row["smallest"], "users", at_least=10))
        emit(rows, args)
        return
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
                  f"{fast.inertia:10.2f} {fast.sizes.min():4d} | {t_ref / t_fast:7.1f}x "
                  f"{fast.inertia / ref.inertia:13.4f}")
            rows.append(versus(f"cluster n={n:,} k={k}: time vs KMeansConstrained", t_fast, t_ref, "s", at_most=1.0))
            rows.append(versus(f"cluster n={n:,} k={k}: inertia vs KMeansConstrained", fast.inertia, ref.inertia, ""))
    emit(rows, args)


if __name__ == "__main__":
    main()
