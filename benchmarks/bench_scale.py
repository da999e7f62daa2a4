"""A BluePrint-sized build on this machine: time and peak memory per stage, from 1M to 8M events.

    python benchmarks/bench_scale.py [--sizes 1,2,4,8] [--root DIR] [--keep] [--json PATH]
                                     [--cluster-json PATH]   (a `bench_cluster.py --paper-scale --json` result)

The corpus is synthetic and written in bounded memory: tiles of 4,000 users (about
120,000 events each, the generator's own unit, one tile in memory at a time) with
their own seeds over the same five days, so a larger corpus is a larger population
in the same period, as a month of Bluesky is. Size N uses the first N/120,000 tiles.

Each size is built in a fresh process with the build's paper settings (English,
the shipped election keywords, at least 2 posts per user, partitions 2 and 25,
size_min 10, two worker processes for ingest and export). The embedding model is a
tiny random BERT made by the benchmark (one torch thread, batches of 256): at 70 texts
a second, all-MiniLM-L6-v2 on this CPU would spend hours on the texts of the larger
corpora, so its time is extrapolated instead from its measured throughput on 1,000 of
them (torch, and the fastest backend, openvino-bf16).

Prints, per size, one table of stages: seconds, items per second, peak RSS (the build
process, and the ingest workers apart); then the peak-RSS growth from 2M to 8M events
(target: under 4 GB at 8M, at most +25% from 2M), and the time of a build of
BluePrint's size (6.8M threads, 5M texts to embed) extrapolated from the largest run,
with the dominant stage named.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alone, emit, parse_args, versus  # noqa: E402

TILE_USERS = 4000
TILE_EVENTS = 120_000  # 4,000 users x 30 events each
BLUEPRINT_THREADS = 6_800_000
BLUEPRINT_TEXTS = 5_000_000
STAGES = ("ingest", "threads", "embed", "cluster", "export")

_BUILD = """
import json, sys
from pathlib import Path
from blueprint.simpact.cluster import ClusterConfig
from blueprint.simpact.ingest import IngestConfig
from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build
tiles = sorted(Path(sys.argv[1]).glob("tile-*"))[: int(sys.argv[2])]
out = Path(sys.argv[3])
cfg = BuildConfig(ingest=IngestConfig(workers=2), embed=EmbedConfig(model=sys.argv[4], cache_dir=None, batch_size=256),
                  cluster=ClusterConfig(partitions=(2, 25), size_min=10, n_init=1))
r = build(tiles, out / "ds", cfg, work_dir=out / "work", secret_file=out / "s.key")
print(json.dumps({"seconds": r.seconds, "peak_rss_mb": r.peak_rss_mb, "reports": {
    "events": r.reports["ingest"]["events"], "lines": r.reports["ingest"]["lines"],
    "threads": r.reports["threads"]["examples"], "texts": r.reports["embed"]["texts"],
    "users": r.reports["embed"]["users"], "rows": r.reports["export"]["rows"]}}))
"""


def _tile(args: tuple[Path, int]) -> int:
    from blueprint.synth import SynthConfig, synthesize

    root, i = args
    out = root / f"tile-{i:04d}"
    if (out / "_meta").is_dir():
        return 0
    tmp = root / f".tile-{i:04d}"
    shutil.rmtree(tmp, ignore_errors=True)
    r = synthesize(tmp, SynthConfig(users=TILE_USERS, seed=1000 + i, days=5.0))
    tmp.rename(out)
    return r.counts["lines"]


def corpus(root: Path, events: int) -> int:
    """Write (or reuse) enough tiles for ``events``; return how many tiles that is."""
    n = max(1, round(events / TILE_EVENTS))
    root.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_tile, [(root, i) for i in range(n)]))
    return n


def real_model_rates(root: Path, n: int = 1000) -> dict[str, float]:
    """Texts per second of the default model on ``n`` synthetic posts: torch, and openvino-bf16."""
    import orjson

    from blueprint.embedding import Encoder

    texts: list[str] = []
    for f in sorted((root / "tile-0000").rglob("jetstream*.jsonl")):
        for line in f.read_bytes().splitlines():
            rec = orjson.loads(line).get("commit", {}).get("record") or {}
            if isinstance(rec.get("text"), str) and rec["text"]:
                texts.append(rec["text"])
        if len(texts) >= n:
            break
    texts = texts[:n]
    rates = {}
    for backend in ("torch", "openvino-bf16"):
        enc = Encoder("default", backend=backend)
        enc.encode(texts[:16])
        t = time.perf_counter()
        enc.encode(texts)
        rates[backend] = len(texts) / (time.perf_counter() - t)
    return rates


def run_size(root: Path, tiles: int, model: Path, keep: bool) -> dict:
    out = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    (out / "s.key").write_text("k" * 48)
    try:
        # one torch thread: the tiny model's small matrices gain nothing from two, and lose much when the
        # export's workers or another process hold the cores
        proc = subprocess.run([sys.executable, "-c", _BUILD, str(root), str(tiles), str(out), str(model)],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if proc.returncode:
            raise RuntimeError(f"the build of {tiles} tiles failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


def print_table(label: str, r: dict) -> None:
    rep, sec, rss = r["reports"], r["seconds"], r["peak_rss_mb"]
    units = {"ingest": (rep["lines"], "events"), "threads": (rep["events"], "events"),
             "embed": (rep["texts"], "texts"), "cluster": (rep["users"], "users"),
             "export": (rep["threads"], "threads")}
    print(f"\n{label}: {rep['lines']:,} events -> {rep['threads']:,} threads, {rep['texts']:,} texts, "
          f"{rep['users']:,} users, {rep['rows']:,} rows released")
    print(f"  {'stage':8} {'seconds':>9} {'per second':>22} {'peak RSS MB':>12}")
    for s in STAGES:
        n, unit = units[s]
        print(f"  {s:8} {sec[s]:9.1f} {n / sec[s]:>14,.0f} {unit:7} {rss.get(s, float('nan')):12,.0f}")
    print(f"  {'total':8} {sum(sec.values()):9.1f} {'':22} {max(rss[s] for s in STAGES):12,.0f}"
          f"   (ingest workers: {rss.get('ingest_workers', float('nan')):,.0f} MB each at most)")


def extrapolate(r: dict, rates: dict[str, float], cluster_json: str | None) -> dict:
    """Seconds per stage for 6.8M threads and 5M texts, from the largest run."""
    rep, sec = r["reports"], r["seconds"]
    scale = BLUEPRINT_THREADS / rep["threads"]
    out = {"ingest": sec["ingest"] * scale, "threads": sec["threads"] * scale, "export": sec["export"] * scale,
           "embed (torch)": BLUEPRINT_TEXTS / rates["torch"],
           "embed (openvino-bf16)": BLUEPRINT_TEXTS / rates["openvino-bf16"]}
    if cluster_json and Path(cluster_json).is_file():
        c = json.loads(Path(cluster_json).read_text())
        out["cluster (k=1000, measured)"] = c["seconds"]
    else:
        out["cluster (k=2,25, scaled)"] = sec["cluster"] * 236_331 / max(rep["users"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,2,4,8", help="millions of events (default 1,2,4,8)")
    ap.add_argument("--root", type=Path, default=None, help="where the corpus and builds go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the corpus and the builds")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--cluster-json", help="bench_cluster.py --paper-scale --json output, for the extrapolation")
    ap.add_argument("--rate-texts", type=int, default=1000, help="texts that time the real model")
    args = parse_args(ap, quick=dict(sizes="0.12", rate_texts=64))
    sizes = [float(x) for x in args.sizes.split(",")]
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        from blueprint.models.tiny import make_tiny_bert

        model = make_tiny_bert(root / "tiny-bert")
        t = time.perf_counter()
        tiles = corpus(root / "corpus", int(max(sizes) * 1e6))
        print(f"corpus: {tiles} tiles of {TILE_USERS} users written in {time.perf_counter() - t:,.0f} s "
              f"(2 processes, one tile in memory each)")
        results = {}
        for m in sizes:
            n = max(1, round(m * 1e6 / TILE_EVENTS))
            results[m] = run_size(root / "corpus", n, model, args.keep)
            print_table(f"{m:g}M events ({n} tiles)", results[m])
        rates = real_model_rates(root / "corpus", args.rate_texts)
        print(f"\nall-MiniLM-L6-v2 on this CPU: {rates['torch']:,.0f} texts/s (torch), "
              f"{rates['openvino-bf16']:,.0f} texts/s (openvino-bf16)")
        peaks = {m: max(r["peak_rss_mb"][s] for s in STAGES) for m, r in results.items()}
        if 2.0 in peaks and 8.0 in peaks:
            growth = peaks[8.0] / peaks[2.0] - 1
            print(f"peak RSS of the build process: {peaks[2.0]:,.0f} MB at 2M events, {peaks[8.0]:,.0f} MB at 8M "
                  f"({growth:+.0%}; targets: under 4,096 MB, at most +25%)")
        big = results[max(sizes)]
        est = extrapolate(big, rates, args.cluster_json)
        print(f"\na BluePrint-sized build ({BLUEPRINT_THREADS:,} threads, {BLUEPRINT_TEXTS:,} texts), extrapolated "
              f"from the {max(sizes):g}M run:")
        for stage, s in est.items():
            print(f"  {stage:28} {s / 3600:7.1f} h")
        fast = {k: v for k, v in est.items() if k != "embed (torch)"}
        slow = {k: v for k, v in est.items() if k != "embed (openvino-bf16)"}
        print(f"  total with torch embedding: {sum(slow.values()) / 3600:.1f} h; with openvino-bf16: "
              f"{sum(fast.values()) / 3600:.1f} h; dominant stage: {max(slow, key=slow.get)}")
        lo, hi = min(sizes), max(sizes)
        rows = [alone(f"build of {hi:g}M events: peak RSS", peaks[hi], "MB", at_most=4096)]
        if hi > lo:
            rows.append(versus(f"build: peak RSS at {hi:g}M vs {lo:g}M events", peaks[hi], peaks[lo], "MB",
                               at_most=1.25))
        rows.append(alone("BluePrint-sized build, extrapolated (openvino-bf16 embedding)", sum(fast.values()) / 3600,
                          "h"))
        emit(rows, args)
        if args.json:
            Path(args.json).write_text(json.dumps({"results": {str(k): v for k, v in results.items()},
                                                   "real_model_texts_per_s": rates, "extrapolated_s": est,
                                                   "peak_rss_mb": {str(k): v for k, v in peaks.items()}},
                                                  indent=2) + "\n")
    finally:
        if not args.keep and args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
