"""Options several commands share, worded once: the dataset, its config and split, a predictions file."""

from __future__ import annotations

import argparse
from pathlib import Path


def dataset_options(p: argparse.ArgumentParser, *, split: bool = True,
                    dataset_help: str = "the exported dataset directory (a folder with README.md and data/)") -> None:
    """``--dataset``, ``--config`` and (unless ``split=False``) ``--split``, all but the split required."""
    p.add_argument("--dataset", required=True, type=Path, help=dataset_help)
    p.add_argument("--config", required=True,
                   help="the config: a partition such as 25_clusters, or one persona such as 25_clusters_c6")
    if split:
        p.add_argument("--split", default="test", help="train, validation or test (default: %(default)s)")


PREDICTIONS_HELP = "the predictions file (JSONL: id, action, text)"
