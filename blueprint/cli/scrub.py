"""``blueprint scrub``: PII-scrub text lines from stdin to stdout, or list the spans found."""

from __future__ import annotations

import argparse
import sys

from blueprint.cli._args import option
from blueprint.pii import Scrubber


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scrub", help="PII-scrub text lines from stdin to stdout")
    p.add_argument("--json", action="store_true", help="write the spans found, one JSON object per line")
    option(p, "--region", source=Scrubber,
           help="default region for phone numbers without a country code (default: %(default)s)")


def run(a: argparse.Namespace) -> None:
    import orjson

    from blueprint.pii import replace_spans

    scrubber = Scrubber(region=a.region)
    out = sys.stdout
    for line in sys.stdin:
        text = line.rstrip("\n")
        spans = scrubber.spans(text)
        if a.json:
            out.write(orjson.dumps({"text": text, "spans": [s.to_dict(text) for s in spans]}).decode() + "\n")
        else:
            out.write(replace_spans(text, spans) + "\n")
