"""The README's code blocks, with the marks that say how the README test treats each one.

A mark is an HTML comment on the line before a block's opening fence (blank lines between are allowed):

- ``<!-- readme-test: demo -->``: the block installs and runs the demo; its ``blueprint demo ...`` command
  makes the fresh demo output that every later block runs against (the install before it is what
  ``.ci/run`` does);
- ``<!-- readme-test: self -->``: the command that runs these tests;
- ``<!-- readme-test: network: why -->`` and ``<!-- readme-test: gpu: why -->``: skipped, with that reason;
- ``<!-- readme-test: slow: why -->``: runs only with ``-m slow`` (hours of work).

Shell blocks (``bash``) run in bash with ``set -euo pipefail``; Python blocks in a fresh interpreter;
JSON blocks must parse (one JSON value per line). Other blocks (plain text, BibTeX) are prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARK = re.compile(r"<!--\s*readme-test:\s*(?P<kind>[a-z]+)\s*(?::\s*(?P<why>.*?))?\s*-->")
KINDS = {"demo", "self", "network", "gpu", "slow"}
SHELL, PYTHON, JSON = {"bash", "sh", "shell"}, {"python", "py"}, {"json", "jsonl"}


@dataclass(frozen=True)
class Block:
    line: int  # the opening fence, 1-based
    lang: str
    code: str
    kind: str | None = None
    why: str = ""

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.lang}"


def read_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i, pending = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = MARK.search(line)
        if m:
            if m["kind"] not in KINDS:
                raise ValueError(f"{path}:{i + 1}: unknown readme-test mark {m['kind']!r} (known: {sorted(KINDS)})")
            pending = (m["kind"], m["why"] or "")
        elif line.startswith("```"):
            lang, start, body = line[3:].strip().lower(), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"{path}:{start}: a code block that is never closed")
            kind, why = pending or (None, "")
            out.append(Block(start, lang, "\n".join(body) + "\n", kind, why))
            pending = None
        elif line.strip():
            pending = None  # a mark applies to the very next block only
        i += 1
    return out


def block_env() -> dict[str, str]:
    """The environment a README command runs in: this one, with the interpreter's ``bin`` (``blueprint``) first."""
    import os
    import sys

    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def demo_command(block: Block) -> str:
    """The ``blueprint demo ...`` command of the block marked ``demo``."""
    parts = [p.strip() for p in re.split(r"&&|\n", block.code) if p.strip()]
    found = [p for p in parts if p.startswith("blueprint demo")]
    if len(found) != 1:
        raise ValueError(f"README line {block.line}: the demo block must hold one 'blueprint demo' command")
    return found[0]
