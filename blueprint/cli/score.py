"""``blueprint score``: every metric of a predictions file, with intervals, into a results file."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import option
from blueprint.cli._common import PREDICTIONS_HELP
from blueprint.errors import BadInputError
from blueprint.metrics.config import ScoreConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score a predictions file into a results JSON (and a per-sample JSONL)",
                       description="Validates a predictions file against a split (as blueprint validate), then "
                                   "scores every metric with bootstrap intervals: action accuracy and macro-F1, "
                                   "rare-action and per-cluster scores, the text metrics (cosine, embedding JS, "
                                   "TF-IDF Jaccard, ROUGE-L, BERTScore), action JS, diagonality and "
                                   "distinguishability. Writes OUT (JSON, the leaderboard's input) and "
                                   "OUT.samples.jsonl (one line per row). Nothing is printed or written for a "
                                   "file that fails validation (exit 2).")
    p.add_argument("predictions", type=Path, nargs="?", help=PREDICTIONS_HELP)
    p.add_argument("--dataset", type=Path, help="the exported dataset directory (a folder with README.md and data/)")
    p.add_argument("--config",
                   help="the config: a partition such as 25_clusters, or one persona such as 25_clusters_c6")
    p.add_argument("--split", default="test", help="train, validation or test (default: %(default)s)")
    p.add_argument("--out", type=Path, help="the results file to write (JSON); OUT.samples.jsonl goes beside it")
    p.add_argument("--meta", type=Path, default=None, help="the submission's meta file (JSON), kept in the results")
    p.add_argument("--schema", action="store_true", help="print the JSON Schema of a results file and exit")
    p.add_argument("--name", default=None, help="model name on the leaderboard (default: the model blueprint "
                                                "predict ran, else the file's stem)")
    p.add_argument("--subset", type=Path, default=None, metavar="IDS_FILE",
                   help="score only these rows (one id per line: the PRED.subset.txt of predict --limit); the "
                        "results are marked partial and ranked apart from full runs (default: every row)")
    p.add_argument("--labels", type=Path, default=None,
                   help="the hidden test labels written by build --hold-out-labels")
    option(p, "--bootstrap", type=int, source=ScoreConfig,
           help="bootstrap resamples for intervals (default {default})")
    option(p, "--seed", type=int, source=ScoreConfig, help="random seed (default: %(default)s)")
    option(p, "--model", source=ScoreConfig, help="embedding model for the text metrics and BERTScore")
    p.add_argument("--no-bertscore", action="store_true", help="skip BERTScore")
    option(p, "--rare", default=None, help="comma-separated rare actions (default: the seven rarest kinds)")
    p.add_argument("--rare-from-train", action="store_true",
                   help="rare actions are those under 5%% of the config's train split")


def run(a: argparse.Namespace) -> None:
    from blueprint.leaderboard.score import (
        default_model_name,
        rare_actions_for,
        results_schema,
        score,
        write_results,
    )
    from blueprint.metrics.config import DEFAULT_RARE

    if a.schema:
        import orjson

        print(orjson.dumps(results_schema(), option=orjson.OPT_INDENT_2).decode())
        return
    missing = [f for f in ("predictions", "dataset", "config", "out") if getattr(a, f) is None]
    if missing:
        needed = ", ".join("--" + m if m != "predictions" else "PREDICTIONS" for m in missing)
        raise BadInputError(f"score needs {needed} (or --schema)")
    rare = DEFAULT_RARE
    if a.rare_from_train:
        rare = rare_actions_for(a.dataset, a.config)
    elif a.rare:
        rare = tuple(x.strip() for x in a.rare.split(",") if x.strip())
    cfg = ScoreConfig(bootstrap=a.bootstrap, seed=a.seed, model=a.model, bertscore=not a.no_bertscore, rare=rare,
                      progress=not a.quiet)
    res = score(a.predictions, a.dataset, a.config, a.split, model_name=a.name, labels=a.labels, score_config=cfg,
                meta=a.meta, subset=a.subset, default_name=lambda: default_model_name(a.predictions, a.meta))
    write_results(res, a.out)
    r = res["results"]
    from blueprint.metrics.registry import shown

    line = ", ".join(f"{label} {shown(m, r.get(m))}" for label, m in (
        ("accuracy", "accuracy"), ("macro-F1", "macro_f1"), ("rare macro-F1", "rare_macro_f1"),
        ("cluster macro-F1", "cluster_macro_f1"), ("action JS", "action_js")))
    n = res["n-samples"]
    partial = res["config"]["partial"]
    rows = f"{n['effective']} of {n['original']} rows, partial" if partial else f"{n['evaluated']} rows"
    print(f"{a.out}: {line} ({rows})")
