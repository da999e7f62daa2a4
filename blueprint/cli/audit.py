"""``blueprint audit``: the privacy audit of a built dataset; exit code 3 when a hard check fails."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import option


def _audit():
    from blueprint.simpact.audit import audit

    return audit


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="privacy audit of a built dataset; exit code 3 when a hard check fails")
    p.add_argument("dataset", type=Path, help="the exported dataset directory")
    p.add_argument("--raw", nargs="+", type=Path, default=(), help="the raw input, to find leaked DIDs and handles")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <dataset>-audit)")
    option(p, "--min-cluster", type=int, source=_audit(), help="smallest persona size allowed (default {default})")


def run(a: argparse.Namespace) -> int:
    from blueprint.simpact.audit import audit, write_audit

    report = audit(a.dataset, raw=a.raw, min_cluster=a.min_cluster)
    out = a.out or a.dataset.parent / f"{a.dataset.name}-audit"
    paths = write_audit(report, out)
    for c in report["checks"]:
        print(f"  {c['status']:>7}  {c['name']:<16} {c['value']}")
    print(f"audit {'passed' if report['ok'] else 'FAILED'}: {paths['markdown']} and {paths['json']}")
    return 0 if report["ok"] else 3
