"""``blueprint leaderboard``: every results file in a folder, ranked, as a static site, Markdown and JSON."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="render results files as a leaderboard page")
    p.add_argument("results_dir", type=Path, help="a folder of results files written by blueprint score")
    p.add_argument("--out", required=True, type=Path, help="the folder to write leaderboard.md and index.html to")


def run(a: argparse.Namespace) -> None:
    from blueprint.leaderboard.render import render

    paths = render(a.results_dir, a.out)
    print(f"leaderboard: {paths['markdown']} and {paths['html']}")
