"""``blueprint leaderboard``: every results file in a folder, ranked, as a static site, Markdown and JSON."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="render results files as a leaderboard page")
    p.add_argument("results_dir", type=Path, help="a folder of results files written by blueprint score")
    p.add_argument("--out", required=True, type=Path, help="the folder to write leaderboard.md and index.html to")
    p.add_argument("--strict", action="store_true",
                   help="refuse a folder whose results cannot all be ranked together (another dataset build, "
                        "config, split or subset); without it, each such group is ranked apart")


def run(a: argparse.Namespace) -> None:
    from blueprint.leaderboard.render import render

    paths = render(a.results_dir, a.out, strict=a.strict)
    groups = f" ({paths['groups']} groups ranked apart: see the page)" if paths["groups"] > 1 else ""
    print(f"leaderboard: {paths['markdown']} and {paths['html']}{groups}")
