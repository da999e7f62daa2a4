"""The ``blueprint`` command: one module per command, each with ``add_parser(sub)`` and ``run(args)``.

Exit codes: 0 ok; 2 bad input, with a one-line message naming the file, line and
field (a setting is named by the flag that sets it); 1 internal error; 3 ``audit``
found a privacy problem.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import import_module
from types import ModuleType

from blueprint import __version__
from blueprint.cli._args import Parser, flag_for
from blueprint.errors import BadInputError

log = logging.getLogger("blueprint")

COMMANDS = ("demo", "synth", "collect", "build", "baseline", "predict", "finetune", "experiment", "validate",
            "score", "leaderboard", "audit", "stats", "scrub", "import-release")
"""Every command, in the order ``blueprint --help`` lists them; ``blueprint/cli/<command>.py`` each (a dash in
the command is an underscore in its module's name)."""


def command(name: str) -> ModuleType:
    """The module of one command."""
    return import_module(f"blueprint.cli.{name.replace('-', '_')}")


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: global options, then each command's own."""
    p = Parser(prog="blueprint", description="BluePrint: persona datasets from Bluesky, and a next-action "
                                             "benchmark for LLM social-media agents.")
    p.add_argument("--version", action="version", version=f"blueprint {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, no progress bars")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        command(name).add_parser(sub)
    return p


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BadInputError as exc:
        print(f"blueprint: error: {exc}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="blueprint: %(message)s", stream=sys.stderr)
    logging.getLogger("blueprint").setLevel(level)
    try:
        rc = command(args.command).run(args)
    except BadInputError as exc:
        exc.field = flag_for(_subparser(parser, args.command), exc.field) or exc.field
        print(f"blueprint: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("blueprint: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a write that failed (a full disk, a read-only folder): nothing was left half-written
        print(f"blueprint: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return rc or 0
