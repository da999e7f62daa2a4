"""Submissions: the predictions file and its optional meta file, validated before any expensive scoring.

A predictions file is JSONL, one object per evaluated row::

    {"id": "<row id>", "action": "<one of the 13 actions>", "text": "<generated text>" | null}

``text`` is required (a non-empty string of at most
:data:`~blueprint.task.answer.MAX_TEXT` characters) for post, reply, quote and
post_update, and null or absent for the other actions (a text there is ignored, with
a warning): the answer schema of :mod:`blueprint.task.answer`. The file covers the
evaluated split exactly: no unknown, missing or repeated id.

The optional meta file (``--meta META.json``) describes the model; its keys are
:data:`META_KEYS`. Validation reports every problem at once, each with its line and
field, up to :data:`MAX_REPORTED`, with the count of the rest.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Union

import msgspec
import orjson

from blueprint.actions import ACTION_INDEX, ACTIONS, TEXT_ACTIONS
from blueprint.errors import BadInputError
from blueprint.task.answer import MAX_TEXT, text_problem

MAX_REPORTED = 50
MAX_BYTES = 200 * 1024 * 1024
KEYS = ("id", "action", "text")
META_KEYS: dict[str, tuple[type, ...]] = {
    "model_name": (str,), "revision": (str,), "parameters": (int,), "trained_on": (str,),
    "saw_train_split": (bool,), "contact": (str,), "link": (str,),
}
"""The keys a meta file may hold, with their JSON types."""


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
    """A read predictions file: its valid rows, and the problems (errors) and warnings of the others."""

    path: Path
    parsed: list  # dicts from the line-by-line path, or msgspec structs from the fast path
    problems: list[Problem] = field(default_factory=list)  # errors
    warnings: list[Problem] = field(default_factory=list)
    fast: bool = False
    claimed: set[str] = field(default_factory=set)  # the ids of lines with a problem: present, though invalid

    @cached_property
    def rows(self) -> list[dict]:
        """The rows as dicts (``id``, ``action``, ``text``, ``_line``); made once, only when asked for."""
        if self.fast:
            return [{"id": r.id, "action": type(r).__struct_config__.tag, "text": r.text, "_line": n}
                    for n, r in enumerate(self.parsed, start=1)]
        return self.parsed

    def id_set(self) -> set[str]:
        return {r.id for r in self.parsed} if self.fast else {r["id"] for r in self.parsed}

    @property
    def by_id(self) -> dict[str, dict]:
        return {r["id"]: r for r in self.rows}


_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]


def _row_types() -> tuple[type, ...]:
    """One struct per action, tagged by the ``action`` field: msgspec then checks in C that a text action has
    its text and that no other action has one (the fast path of :func:`read_predictions`)."""
    types = []
    for action in ACTIONS:
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [("id", Annotated[str, msgspec.Meta(min_length=1)])]
        fields.append(("text", _Text) if action in TEXT_ACTIONS else ("text", None, None))
        types.append(msgspec.defstruct(f"_Row_{action}", fields, tag_field="action", tag=action,
                                       forbid_unknown_fields=True, gc=False))
    return tuple(types)


_ROWS = msgspec.json.Decoder(Union[_row_types()])  # noqa: UP007 - a union of types made at run time


def _fast_rows(data: bytes) -> list | None:
    """The rows of a file with no problem at all (not even a warning), decoded and checked in one call; None
    otherwise: a file with anything to report goes through the line-by-line path, which names lines and fields."""
    if not data or data.startswith(b"\n") or b"\n\n" in data or b"\r" in data:
        return None  # blank lines would shift the line numbers; let the careful path count them
    try:
        parsed = _ROWS.decode_lines(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None
    if any(not r.text.strip() for r in parsed if r.text is not None):
        return None  # a blank text
    return parsed


def _did_you_mean(value: str) -> str:
    close = difflib.get_close_matches(value.lower().strip(), ACTIONS, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_predictions(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> Predictions:
    """Parse a predictions file, collecting every per-line problem instead of stopping at the first."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such predictions file", path=p)
    size = p.stat().st_size
    if size > max_bytes:
        raise BadInputError(f"the file has {size:,} bytes, over the {max_bytes:,}-byte cap (--max-bytes)", path=p)
    data = p.read_bytes()
    fast = _fast_rows(data)
    if fast is not None:
        return Predictions(p, fast, fast=True)
    rows: list[dict] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    claimed: set[str] = set()
    for lineno, raw in enumerate(data.splitlines(keepends=True), start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as uexc:
                problems.append(Problem(lineno, None, f"invalid UTF-8 at byte {uexc.start}"))
            else:
                problems.append(Problem(lineno, None, f"invalid JSON ({exc})"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(lineno, None, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        n_before = len(problems)
        for key in obj.keys() - KEYS:
            problems.append(Problem(lineno, key, f"unknown key; a prediction has only {list(KEYS)}"))
        pid, action = obj.get("id"), obj.get("action")
        if "id" not in obj:
            problems.append(Problem(lineno, "id", "missing"))
        elif not isinstance(pid, str) or not pid:
            problems.append(Problem(lineno, "id", f"must be a non-empty string, got {type(pid).__name__}"))
        if "action" not in obj:
            problems.append(Problem(lineno, "action", "missing"))
        elif not isinstance(action, str):
            problems.append(Problem(lineno, "action", f"must be a string, got {type(action).__name__}"))
        elif action not in ACTION_INDEX:
            problems.append(Problem(lineno, "action", f"{action[:40]!r} is not an action{_did_you_mean(action)}; "
                                                      f"expected one of {list(ACTIONS)}"))
        text = obj.get("text")
        if text is not None and not isinstance(text, str):
            problems.append(Problem(lineno, "text", f"must be a string or null, got {type(text).__name__}"))
        elif action in TEXT_ACTIONS:
            problem = text_problem(action, text)
            if problem is not None:
                problems.append(Problem(lineno, "text", problem))
        elif text is not None and action in ACTION_INDEX:
            warnings.append(Problem(lineno, "text", f"a {action} carries no text; the text is ignored"))
            text = None
        if len(problems) == n_before:
            rows.append({"id": pid, "action": action, "text": text, "_line": lineno})
        elif isinstance(pid, str) and pid:
            claimed.add(pid)
    return Predictions(p, rows, problems, warnings, claimed=claimed)


def validate(preds: Predictions, reference_ids: Sequence[str] | set[str]) -> list[Problem]:
    """Every error of a predictions file against the ids of the evaluated split (a set is used as it is), in line
    order; the rows no line covers come last. An id on an invalid line counts as present: its line's problem is
    reported once, not again as a missing row."""
    expected = reference_ids if isinstance(reference_ids, (set, frozenset)) else set(reference_ids)
    got = preds.id_set()
    if not preds.problems and len(got) == len(preds.parsed) and got == expected:
        return []  # the common case, checked with set operations alone
    problems = list(preds.problems)
    seen: dict[str, int] = {}
    for r in preds.rows:
        if r["id"] in seen:
            problems.append(Problem(r["_line"], "id", f"repeats the id of line {seen[r['id']]}"))
        else:
            seen[r["id"]] = r["_line"]
        if r["id"] not in expected:
            problems.append(Problem(r["_line"], "id", f"{r['id'][:40]!r} is not a row of the evaluated split"))
    problems.sort(key=lambda p: p.line or 0)  # stable: a line's problems keep their order
    missing = expected.difference(seen).difference(preds.claimed)
    if missing:
        covered = len(expected) - len(missing)
        sample = ", ".join(sorted(missing)[:3])
        problems.append(Problem(None, "id", f"{len(missing):,} rows of the evaluated split have no prediction "
                                            f"(coverage {covered:,}/{len(expected):,} = {covered / len(expected):.1%}; "
                                            f"e.g. {sample})"))
    return problems


def made_for(preds: Predictions, dataset_dir: str | os.PathLike[str], config: str, split: str
             ) -> tuple[str, str, int] | None:
    """The other (config, split, rows) of the dataset that a predictions file covers (at least 90% of its ids are
    the file's, and a better match than the asked ``config``/``split``), or None."""
    from blueprint.data import SPLITS, read_split

    got = preds.id_set() | preds.claimed
    data = Path(dataset_dir) / "data"
    if not got or not data.is_dir():
        return None
    scores: dict[tuple[str, str, int], float] = {}
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        for sp in SPLITS:
            if any(folder.glob(f"{sp}-*.parquet")):
                ids = set(read_split(dataset_dir, folder.name, sp, columns=["id"])["id"].to_pylist())
                scores[folder.name, sp, len(ids)] = len(got & ids) / len(got | ids)  # Jaccard
    asked = max((v for (c, sp, _), v in scores.items() if (c, sp) == (config, split)), default=0.0)
    best = max(((v, k) for k, v in scores.items() if k[:2] != (config, split)), default=None)
    return best[1] if best is not None and best[0] >= 0.9 and best[0] > asked else None


def summary(problems: Sequence[Problem]) -> str:
    shown = "\n  ".join(str(p) for p in problems[:MAX_REPORTED])
    more = f"\n  ... and {len(problems) - MAX_REPORTED:,} more" if len(problems) > MAX_REPORTED else ""
    return f"{len(problems):,} problem(s):\n  {shown}{more}"


def raise_if_invalid(preds: Predictions, problems: Sequence[Problem]) -> None:
    if problems:
        first = problems[0]
        raise BadInputError(summary(problems), path=preds.path, line=first.line)


def read_meta(path: str | os.PathLike[str] | None) -> dict:
    """A submission's meta file: an object of :data:`META_KEYS`; unknown keys and wrong types are refused."""
    if path is None:
        return {}
    from blueprint._io import read_json

    meta = read_json(path)
    if not isinstance(meta, dict):
        raise BadInputError("the meta file must hold a JSON object", path=path)
    unknown = sorted(set(meta) - set(META_KEYS))
    if unknown:
        raise BadInputError(f"unknown meta keys {unknown}; known keys: {list(META_KEYS)}", path=path,
                            field=unknown[0])
    for key, value in meta.items():
        types = META_KEYS[key]
        if not isinstance(value, types) or (types == (int,) and isinstance(value, bool)):
            raise BadInputError(f"must be {types[0].__name__}, got {type(value).__name__}", path=path, field=key)
    return meta
