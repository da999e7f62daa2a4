"""The command line is a stable contract: every command and flag of the parser before the CLI became a package.

``tests/data/cli_contract.json`` was dumped from that parser (``blueprint/cli.py`` at
commit e7431a8): for each command, each argument's flags, destination, default,
choices, ``nargs``, ``required`` and kind, in order. The parser of today must list
the same, apart from the defaults named below, which now show the value the library
applies instead of None, and the flags and commands added since (:data:`ADDED`, :data:`NEW_COMMANDS`): a flag
may be added, never changed or removed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from blueprint.cli import build_parser

CONTRACT = json.loads((Path(__file__).parent / "data" / "cli_contract.json").read_text())

# (command, flag) -> the default shown now; before, None stood for the same value
NOW_EXPLICIT = {
    ("synth", "--personas"): 8,
    ("collect", "--collections"): ["app.bsky.feed.like", "app.bsky.feed.post", "app.bsky.feed.repost",
                                   "app.bsky.graph.block", "app.bsky.graph.follow"],
}

# flags added since the contract was dumped
ADDED = {("predict", "--limit"), ("score", "--subset"), ("validate", "--subset"), ("leaderboard", "--strict"),
         ("build", "--personas-from"), ("finetune", "--precision"),
         ("finetune", "--sampling")}
NEW_COMMANDS = {"import-release", "experiment"}


def describe(parser: argparse.ArgumentParser) -> list[dict]:
    """The same description of a parser's arguments that the contract holds."""
    out = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            continue
        default = a.default
        if isinstance(default, tuple):
            default = list(default)
        if hasattr(default, "__fspath__"):
            default = str(default)
        out.append({"flags": list(a.option_strings) or [a.dest], "dest": a.dest,
                    "default": default if default is not argparse.SUPPRESS else "==SUPPRESS==",
                    "choices": list(a.choices) if a.choices else None, "required": a.required, "nargs": a.nargs,
                    "kind": type(a).__name__})
    return out


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_the_same_commands_in_the_same_order(parser):
    assert [c for c in _commands(parser) if c not in NEW_COMMANDS] == list(CONTRACT["commands"])
    assert describe(parser) == CONTRACT["blueprint"]


@pytest.mark.parametrize("command", sorted(CONTRACT["commands"]))
def test_every_flag_of_every_command_is_still_there_unchanged(parser, command):
    now = [a for a in describe(_commands(parser)[command]) if (command, a["flags"][0]) not in ADDED]
    before = CONTRACT["commands"][command]
    assert [a["flags"] for a in now] == [a["flags"] for a in before]
    for old, new in zip(before, now):
        expected = dict(old)
        if (command, old["flags"][0]) in NOW_EXPLICIT:
            assert old["default"] is None
            expected["default"] = NOW_EXPLICIT[(command, old["flags"][0])]
        assert new == expected, (command, old["flags"])


def test_the_explicit_defaults_are_what_the_library_applies():
    from blueprint.actions import COLLECTIONS
    from blueprint.synth.personas import PERSONAS

    assert NOW_EXPLICIT[("synth", "--personas")] == len(PERSONAS)
    assert NOW_EXPLICIT[("collect", "--collections")] == sorted(COLLECTIONS)


def test_defaults_come_from_the_library(parser):
    """A changed default in a config dataclass reaches the command line: there is one source."""
    from dataclasses import fields

    from blueprint.metrics.config import ScoreConfig
    from blueprint.models.finetune import FinetuneConfig
    from blueprint.simpact.config import ClusterConfig, EmbedConfig, ThreadConfig

    cmds = _commands(parser)
    defaults = {c: {a.dest: a.default for a in p._actions} for c, p in cmds.items()}
    assert defaults["build"]["size_min"] == ClusterConfig().size_min
    assert defaults["build"]["max_depth"] == ThreadConfig.__dataclass_fields__["max_depth"].default
    assert defaults["build"]["embed_backend"] == EmbedConfig().backend
    assert defaults["score"]["bootstrap"] == ScoreConfig().bootstrap
    for f in fields(FinetuneConfig):
        if f.name in defaults["finetune"]:
            assert defaults["finetune"][f.name] == f.default, f.name


def test_every_option_with_a_default_shows_it_in_the_help(parser, capsys):
    """``blueprint CMD --help`` gives the default of every option that has one (a value, not a switch; an option
    whose absence means "not given", such as --endpoint or --labels, has none)."""
    import re

    for name, sub in _commands(parser).items():
        capsys.readouterr()
        with pytest.raises(SystemExit):
            parser.parse_args([name, "--help"])
        entries: dict[str, str] = {}  # each option's paragraph of the help: it starts "  -x, --flag ..."
        for line in capsys.readouterr().out.split("options:", 1)[1].splitlines():
            if re.match(r"^  -", line):
                flags = re.findall(r"(--?[\w-]+)", line.split("  ")[1] if line.startswith("  ") else line)
                current = " ".join(line.split())
                for f in flags:
                    entries[f] = current
                key = flags
            elif line.strip() and entries:
                for f in key:
                    entries[f] += " " + " ".join(line.split())
        for a in sub._actions:
            switch = isinstance(a, (argparse._StoreTrueAction, argparse._HelpAction))
            if not a.option_strings or switch or a.required or a.default is None:
                continue
            flag = a.option_strings[-1]
            assert "default" in entries[flag], f"blueprint {name} {flag}: the help gives no default: {entries[flag]}"
    with pytest.raises(SystemExit):
        parser.parse_args(["score", "--help"])
    assert "Validates a predictions file" in capsys.readouterr().out  # score --help has a description
