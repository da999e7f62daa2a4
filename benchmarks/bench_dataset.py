"""Export of a large dataset, and loading a split through datasets against bare pyarrow.

    python benchmarks/bench_dataset.py [--events 1200000] [--repeats 5]

1. Export: a synthetic corpus goes through ingest and threads (about 1M threads for the
   default 1.2M events); users get clusters for k = 2 and 25 at random (the persona stage
   is measured elsewhere). The export (PII scrubbing, ranks, pseudonyms, ids, splits, 29
   configs of Parquet shards, cluster reports, card) runs in a fresh process: threads per
   second and peak RSS (target: at most 2 GB).
2. Loading the ``25_clusters`` test split: ``datasets.load_dataset`` with a warm cache
   against ``pyarrow.parquet.read_table`` of the same files (target: at most 1.5 times).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alone, emit, interleaved, median, parse_args, versus  # noqa: E402

_EXPORT = """
import json, sys, time
import numpy as np, pyarrow.parquet as pq
from blueprint.simpact.export import export
n_threads = pq.ParquetFile(sys.argv[1]).metadata.num_rows
dids = sorted(set(pq.read_table(sys.argv[1], columns=["did"])["did"].to_pylist()))
rng = np.random.default_rng(0)
partitions = {k: dict(zip(dids, rng.integers(0, k, len(dids)).tolist())) for k in (2, 25)}
vectors = rng.normal(size=(len(dids), 384)).astype(np.float32)
t = time.perf_counter()
# the file, as the pipeline passes it: the export reads it a batch at a time
r = export(sys.argv[1], partitions, sys.argv[2], secret=b"b" * 32, user_vectors=(dids, vectors))
seconds = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"threads": n_threads, "rows": r.rows, "seconds": seconds, "peak_mb": hwm / 1024}))
"""


def threads_table(root: Path, events: int) -> Path:
    from blueprint.simpact.ingest import ingest
    from blueprint.simpact.threads import ThreadConfig, build_threads
    from blueprint.synth import SynthConfig, synthesize

    synthesize(root / "raw", SynthConfig(users=max(100, events // 30), seed=2, days=3.0))
    ingest([root / "raw"], root / "ingest")
    build_threads(root / "ingest", root / "threads", ThreadConfig(min_user_posts=1))
    return root / "threads" / "threads.parquet"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_200_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = parse_args(ap, quick=dict(events=30_000, repeats=2))
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        path = threads_table(root, args.events)
        print(f"corpus: {args.events:,} events -> threads in {time.perf_counter() - t:.0f} s")
        proc = subprocess.run([sys.executable, "-c", _EXPORT, str(path), str(root / "ds")], capture_output=True,
                              text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"export: {r['threads']:,} threads in {r['seconds']:.1f} s = "
              f"{r['threads'] / r['seconds']:,.0f} threads/s; "
              f"peak RSS {r['peak_mb']:,.0f} MB (target at most 2,048 MB)")

        import datasets
        import pyarrow.parquet as pq

        files = sorted(str(p) for p in (root / "ds" / "data" / "25_clusters").glob("test-*.parquet"))
        cache = str(root / "hf-cache")
        datasets.load_dataset(str(root / "ds"), "25_clusters", split="test", cache_dir=cache)  # warm the cache
        times = interleaved({
            "pyarrow.parquet.read_table": lambda: pq.read_table(files),
            "datasets.load_dataset (warm)": lambda: datasets.load_dataset(str(root / "ds"), "25_clusters",
                                                                          split="test", cache_dir=cache),
        }, args.repeats)
        rows = pq.read_table(files).num_rows
        base = median(times["pyarrow.parquet.read_table"])
        print(f"\nloading 25_clusters/test ({rows:,} rows), medians of {args.repeats}")
        for name, ts in times.items():
            print(f"  {name:30} {median(ts):7.3f} s  {median(ts) / base:5.2f}x pyarrow")
        emit([alone(f"export of {r['threads']:,} threads: peak RSS", r["peak_mb"], "MB", at_most=2048),
              alone(f"export of {r['threads']:,} threads: rate", r["threads"] / r["seconds"], "threads/s"),
              versus(f"load 25_clusters/test ({rows:,} rows) vs pyarrow read_table",
                     median(times["datasets.load_dataset (warm)"]), base, "s", at_most=1.5)], args)


if __name__ == "__main__":
    main()
