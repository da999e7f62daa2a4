"""Predictions files: reading and validation, before any expensive scoring.

A predictions file is JSONL, one object per evaluated row::

    {"id": "<row id>", "action": "<one of the 13 actions>", "text": "<generated text or null>"}

Validation reports every problem it finds, each with its line and field, and checks
that the file covers the evaluated split exactly: no unknown, missing or repeated id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import orjson

from blueprint.actions import ACTION_INDEX, ACTIONS
from blueprint.errors import BadInputError

MAX_REPORTED = 20


@dataclass
class Problem:
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        fld = f"field '{self.field}': " if self.field else ""
        return f"{where}{fld}{self.message}"


@dataclass
class Predictions:
    path: Path
    rows: list[dict]
    problems: list[Problem] = field(default_factory=list)

    @property
    def by_id(self) -> dict[str, dict]:
        return {r["id"]: r for r in self.rows}


def read_predictions(path: str | os.PathLike[str]) -> Predictions:
    """Parse a predictions file, collecting per-line problems instead of stopping at the first."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such predictions file", path=p)
    rows: list[dict] = []
    problems: list[Problem] = []
    with open(p, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                problems.append(Problem(lineno, None, f"invalid JSON ({exc})"))
                continue
            if not isinstance(obj, dict):
                problems.append(Problem(lineno, None, f"expected a JSON object, got {type(obj).__name__}"))
                continue
            bad = False
            if not isinstance(obj.get("id"), str):
                problems.append(Problem(lineno, "id", "missing or not a string"))
                bad = True
            action = obj.get("action")
            if action not in ACTION_INDEX:
                problems.append(Problem(lineno, "action", f"{action!r} is not one of {list(ACTIONS)}"))
                bad = True
            text = obj.get("text")
            if text is not None and not isinstance(text, str):
                problems.append(Problem(lineno, "text", f"must be a string or null, got {type(text).__name__}"))
                bad = True
            if not bad:
                rows.append({"id": obj["id"], "action": action, "text": text, "_line": lineno})
    return Predictions(p, rows, problems)


def validate(preds: Predictions, reference_ids: Sequence[str]) -> list[Problem]:
    """Every problem with a predictions file against the ids of the evaluated split."""
    problems = list(preds.problems)
    expected = set(reference_ids)
    seen: dict[str, int] = {}
    for r in preds.rows:
        if r["id"] in seen:
            problems.append(Problem(r["_line"], "id", f"repeats the id of line {seen[r['id']]}"))
        else:
            seen[r["id"]] = r["_line"]
        if r["id"] not in expected:
            problems.append(Problem(r["_line"], "id", f"{r['id']!r} is not a row of the evaluated split"))
    missing = expected.difference(seen)
    if missing:
        sample = ", ".join(sorted(missing)[:3])
        problems.append(Problem(None, "id", f"{len(missing)} rows of the evaluated split have no prediction "
                                            f"(e.g. {sample})"))
    return problems


def raise_if_invalid(preds: Predictions, problems: Sequence[Problem]) -> None:
    if problems:
        shown = "; ".join(str(p) for p in problems[:MAX_REPORTED])
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        first = problems[0]
        raise BadInputError(f"{len(problems)} problem(s): {shown}{more}", path=preds.path, line=first.line)
