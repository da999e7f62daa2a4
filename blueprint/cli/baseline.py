"""``blueprint baseline``: fit a baseline on the train split and write its predictions for a split."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._common import dataset_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="run a baseline and write its predictions",
                       description="Baselines: majority, cluster_majority, random, persona_prior, retrieval, gbdt. "
                                   "Each fits on the train split and writes a valid submission.")
    p.add_argument("name", help="majority, cluster_majority, random, persona_prior, retrieval or gbdt")
    dataset_options(p)
    p.add_argument("--out", required=True, type=Path, help="the predictions file to write (JSONL)")
    # each baseline keeps its own defaults: only the options given are passed on
    p.add_argument("--seed", type=int, default=None,
                   help="random, persona_prior (sample), retrieval, gbdt (default: each baseline's own, 0)")
    p.add_argument("--mode", choices=("argmax", "sample"), default=None,
                   help="persona_prior: argmax (default) or sampled from the cluster's mix")
    p.add_argument("--engine", choices=("auto", "lightgbm", "sklearn"), default=None,
                   help="gbdt: LightGBM when installed (auto, the default), or scikit-learn's HistGradientBoosting")
    p.add_argument("--model", default=None,
                   help="retrieval, gbdt: the context embedding model (default: the packaged all-MiniLM-L6-v2)")


def run(a: argparse.Namespace) -> None:
    from blueprint.baselines import run_baseline

    options = {k: v for k, v in (("seed", a.seed), ("mode", a.mode), ("engine", a.engine), ("model", a.model))
               if v is not None}
    n = run_baseline(a.name, a.dataset, a.config, a.split, a.out, **options)
    print(f"{a.out}: {n} predictions ({a.name} on {a.config}/{a.split})")
