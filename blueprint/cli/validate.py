"""``blueprint validate``: check a predictions file (and its meta file) before any expensive scoring."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blueprint.cli._args import option
from blueprint.cli._common import PREDICTIONS_HELP, dataset_options
from blueprint.leaderboard import submission

DESCRIPTION = f"""A predictions file is JSONL, one line per evaluated row:

  {{"id": "<row id>", "action": "<one of the 13 actions>", "text": "<text>" or null}}

text is required (non-empty, at most {submission.MAX_TEXT:,} characters) for post, reply, quote and
post_update, and null or absent for every other action (a text there is ignored,
with a warning). Every row of the split has exactly one line; no other key is allowed.

The optional meta file (--meta META.json) is an object with some of: model_name,
revision, parameters (int), trained_on, saw_train_split (bool), contact, link.

Every problem is reported at once, with its line and field. Exit 2 on any error,
0 when the file is valid (warnings are printed). Nothing is written."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a predictions file before scoring",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION)
    p.add_argument("predictions", type=Path, help=PREDICTIONS_HELP)
    dataset_options(p)
    p.add_argument("--meta", type=Path, default=None, help="the submission's meta file (JSON)")
    p.add_argument("--subset", type=Path, default=None, metavar="IDS_FILE",
                   help="the file must cover only these rows (one id per line: the PRED.subset.txt of "
                        "predict --limit) (default: every row of the split)")
    option(p, "--max-bytes", type=int, source=submission.read_predictions,
           help="refuse a predictions file larger than this, before reading it (default: 200 MB)")


def run(a: argparse.Namespace) -> None:
    from blueprint.leaderboard.score import check

    n, warnings = check(a.predictions, a.dataset, a.config, a.split, max_bytes=a.max_bytes, meta=a.meta,
                        subset=a.subset)
    for w in warnings[:50]:
        print(f"{a.predictions}: warning: {w}", file=sys.stderr)
    if len(warnings) > 50:
        print(f"{a.predictions}: ... and {len(warnings) - 50:,} more warnings", file=sys.stderr)
    what = f"the {n} rows of {a.subset}" if a.subset else f"{a.config}/{a.split}"
    print(f"{a.predictions}: OK, {n} predictions cover {what}"
          + (f" ({len(warnings):,} warnings)" if warnings else ""))
