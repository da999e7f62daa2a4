"""The Ray engine's overhead on one machine: the demo corpus built by both engines.

    python benchmarks/bench_ray.py [--users 600] [--repeats 1] [--model default]

The corpus and settings are the demo's (600 synthetic users, partitions 2 and 25),
with the embedding cache off so that every run encodes every text. Runs alternate
between the engines; each Ray run starts its own local Ray instance, as
``blueprint build --engine ray`` does, and that start is part of its time. Prints the
median seconds of each, the ratio (Ray / local; target at most 1.3) and whether the
two datasets are the same bytes.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alone, emit, median, parse_args, versus  # noqa: E402

from blueprint.simpact.cluster import ClusterConfig  # noqa: E402
from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build  # noqa: E402
from blueprint.synth import SynthConfig, synthesize  # noqa: E402


def differing(a: Path, b: Path) -> list[str]:
    out = []

    def walk(cmp: filecmp.dircmp) -> None:
        out.extend(cmp.left_only + cmp.right_only)
        out.extend(filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)[1])
        for sub in cmp.subdirs.values():
            walk(sub)

    walk(filecmp.dircmp(a, b))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--model", default="default", help="embedding model; 'tiny' makes a random 2-layer BERT here")
    args = parse_args(ap, quick=dict(users=300, model="tiny"))
    from blueprint.simpact.ray_engine import RayEngine

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        root = Path(tmp)
        synthesize(root / "raw", SynthConfig(users=args.users, seed=0))
        (root / "s.key").write_text("b" * 48)
        if args.model == "tiny":
            from blueprint.models.tiny import make_tiny_bert

            args.model = str(make_tiny_bert(root / "tiny-bert"))
        cfg = BuildConfig(embed=EmbedConfig(model=args.model, cache_dir=None),
                          cluster=ClusterConfig(partitions=(2, 25)))
        times: dict[str, list[float]] = {"local": [], "ray": []}
        for i in range(args.repeats):
            for name in ("local", "ray"):
                out = root / f"{name}-{i}"
                t = time.perf_counter()
                if name == "ray":
                    with RayEngine() as engine:
                        build([root / "raw"], out, cfg, secret_file=root / "s.key", engine=engine)
                else:
                    build([root / "raw"], out, cfg, secret_file=root / "s.key")
                times[name].append(time.perf_counter() - t)
                print(f"run {i + 1}, {name}: {times[name][-1]:.1f} s", flush=True)
        diff = differing(root / "local-0", root / "ray-0")
        loc, ray = median(times["local"]), median(times["ray"])
        print(f"\nlocal engine {loc:.1f} s, Ray engine {ray:.1f} s (medians of {args.repeats}); "
              f"ratio {ray / loc:.2f} (target at most 1.3); same bytes: {not diff}"
              + (f" (differ: {diff[:5]})" if diff else ""))
        shutil.rmtree(root, ignore_errors=True)
    emit([versus(f"build {args.users} users: Ray engine vs local engine", ray, loc, "s", at_most=1.3),
          alone("build: Ray dataset bytes that differ from the local engine's", len(diff), "files", at_most=0)], args)


if __name__ == "__main__":
    main()
