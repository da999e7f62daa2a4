"""``blueprint demo``: the main job on the embedded default, from a synthetic corpus to a leaderboard."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import ints, option
from blueprint.demo import run_demo
from blueprint.metrics.registry import shown


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on the embedded default: synthetic corpus -> dataset -> "
                                    "baseline -> score -> leaderboard")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    option(p, "--users", type=int, source=run_demo, help="synthetic users (default {default})")
    option(p, "--seed", type=int, source=run_demo, help="random seed (default: %(default)s)")
    option(p, "--partitions", type=ints, source=run_demo, help="cluster counts, e.g. 2,25 (default)")
    option(p, "--model", source=run_demo, help="embedding model: 'default', a local folder or a Hub id")
    p.add_argument("--resume", action="store_true", help="reuse finished stages of an earlier run")


def run(a: argparse.Namespace) -> None:
    r = run_demo(a.out, users=a.users, seed=a.seed, partitions=a.partitions, model=a.model, resume=a.resume,
                 progress=not a.quiet)
    m = r.manifest
    print(f"\nBluePrint demo finished in {r.seconds:.0f} s.")
    print(f"  dataset      {r.dataset_dir}  ({m['rows']} threads)")
    for k in m["partitions"]:
        name = f"{k}_clusters"
        counts = m["configs"][name]
        print(f"    {name}: " + ", ".join(f"{s} {counts[s]}" for s in ("train", "validation", "test")))
    print(f"  results      {r.results}/")
    for name, sc in r.scores.items():
        print(f"    {name}: " + ", ".join(f"{label} {shown(m, sc[m])}" for label, m in (
            ("accuracy", "accuracy"), ("macro-F1", "macro_f1"), ("action JS", "action_js"))))
    print(f"  leaderboard  {r.leaderboard['markdown']}  and  {r.leaderboard['html']}")
