"""``blueprint stats``: threads, users, and counts per action and per cluster of a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="threads, users, and counts per action and per cluster")
    p.add_argument("dataset", type=Path, help="the exported dataset directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(a: argparse.Namespace) -> None:
    import orjson

    from blueprint.stats import dataset_stats, format_stats

    s = dataset_stats(a.dataset)
    if a.json:
        print(orjson.dumps(s, option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_stats(s), end="")
