"""Scoring a predictions file against a dataset split, into a results file.

The results file follows the shape of lm-evaluation-harness results: ``results``,
``higher_is_better``, ``versions``, ``n-samples``, ``config``, ``git_hash`` and ``date``,
plus the per-action and per-cluster tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
from pathlib import Path

from blueprint import __version__
from blueprint.actions import ACTIONS
from blueprint.data import read_split
from blueprint.leaderboard.submission import raise_if_invalid, read_predictions, validate
from blueprint.metrics.action import action_scores

RESULTS_VERSION = 1
HEADLINE = ("accuracy", "macro_f1", "cluster_accuracy", "cluster_macro_f1")
HIGHER_IS_BETTER = {name: True for name in HEADLINE}


def references(dataset_dir: str | os.PathLike[str], config: str, split: str = "test") -> dict:
    """Ids, actions, clusters and target texts of the evaluated split."""
    table = read_split(dataset_dir, config, split, columns=["id", "action", "cluster_id", "target_text"])
    return {
        "ids": table["id"].to_pylist(),
        "actions": [ACTIONS[a] for a in table["action"].to_pylist()],
        "clusters": table["cluster_id"].to_pylist(),
        "texts": table["target_text"].to_pylist(),
    }


def check(pred_path: str | os.PathLike[str], dataset_dir: str | os.PathLike[str], config: str,
          split: str = "test") -> int:
    """Validate a predictions file; raise on the first batch of problems; return the row count."""
    refs = references(dataset_dir, config, split)
    preds = read_predictions(pred_path)
    raise_if_invalid(preds, validate(preds, refs["ids"]))
    return len(preds.rows)


def _git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def score(pred_path: str | os.PathLike[str], dataset_dir: str | os.PathLike[str], config: str,
          split: str = "test", *, model_name: str | None = None) -> dict:
    """Validate, then score; return the results dict."""
    refs = references(dataset_dir, config, split)
    preds = read_predictions(pred_path)
    raise_if_invalid(preds, validate(preds, refs["ids"]))
    by_id = preds.by_id
    predicted = [by_id[i]["action"] for i in refs["ids"]]
    scores = action_scores(refs["actions"], predicted, refs["clusters"])
    ids_digest = hashlib.sha256("\n".join(sorted(refs["ids"])).encode()).hexdigest()[:16]
    return {
        "model_name": model_name or Path(pred_path).stem,
        "results": {k: scores[k] for k in HEADLINE},
        "higher_is_better": HIGHER_IS_BETTER,
        "per_action": scores["per_action"],
        "per_cluster": scores["per_cluster"],
        "confusion_matrix": {"labels": list(ACTIONS), "matrix": scores["confusion_matrix"]},
        "versions": {"blueprint": __version__, "results": RESULTS_VERSION},
        "n-samples": {"evaluated": len(refs["ids"])},
        "config": {"dataset": Path(dataset_dir).name, "dataset_config": config, "split": split,
                   "split_ids_sha256": ids_digest, "predictions": Path(pred_path).name},
        "git_hash": _git_hash(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
