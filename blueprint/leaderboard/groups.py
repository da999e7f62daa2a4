"""Which results may be ranked together: only those scored on the same rows of the same build.

A results file records the dataset build it was scored on (``dataset_fingerprint``), the config, the split, a
digest of the evaluated ids and whether it was a subset run. Two results that differ in any of these were not
measured on the same thing: the leaderboard ranks each group apart and says why a group stands apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from blueprint._io import read_json
from blueprint.errors import BadInputError
from blueprint.leaderboard.score import results_schema


@dataclass(frozen=True)
class GroupKey:
    fingerprint: str | None  # the dataset build's fingerprint (None: a results file that did not record it)
    dataset_config: str
    split: str
    ids: str | None  # sha256 prefix of the evaluated ids
    partial: bool  # a subset run (score --subset)

    @classmethod
    def of(cls, r: dict) -> GroupKey:
        c = r["config"]
        return cls(c.get("dataset_fingerprint"), c["dataset_config"], c["split"], c.get("split_ids_sha256"),
                   bool(c.get("partial", False)))


@dataclass
class Group:
    key: GroupKey
    rows: list[dict] = field(default_factory=list)  # ranked: macro-F1, then accuracy, then name
    why_apart: str = ""  # empty for the main group (the one with the most results)

    @property
    def n(self) -> int:
        return self.rows[0]["n-samples"]["evaluated"]

    @property
    def original(self) -> int | None:
        """The rows of the whole split, for a subset run."""
        return self.rows[0]["n-samples"].get("original")

    @property
    def label(self) -> str:
        k = self.key
        rows = f"{self.n} of {self.original} rows (a subset)" if k.partial else f"{self.n} rows"
        return f"{k.dataset_config} · {k.split} · {rows} · dataset {short(k.fingerprint)}"


def short(fingerprint: str | None) -> str:
    return fingerprint[:12] if fingerprint else "unrecorded"


def collect(results_dir: str | os.PathLike[str]) -> list[dict]:
    """Read every ``*.json`` results file, checked against the results schema; rank by macro-F1, accuracy, name."""
    import jsonschema

    d = Path(results_dir)
    if not d.is_dir():
        raise BadInputError("no such results directory", path=d)
    validator = jsonschema.Draft202012Validator(results_schema())
    rows = []
    for f in sorted(d.glob("*.json")):
        res = read_json(f)
        error = next(iter(sorted(validator.iter_errors(res), key=lambda e: list(e.path))), None)
        if error is not None:
            where = "/".join(str(p) for p in error.path) or None
            raise BadInputError(f"not a BluePrint results file: {error.message}", path=f, field=where)
        res["_file"] = f.name
        rows.append(res)
    if not rows:
        raise BadInputError("no results files (*.json) found", path=d)
    rows.sort(key=lambda r: (-_num(r["results"]["macro_f1"]), -_num(r["results"]["accuracy"]), r["model_name"]))
    return rows


def _num(v) -> float:
    return v if isinstance(v, (int, float)) and v == v else float("-inf")


def group(rows: list[dict]) -> list[Group]:
    """The ranked rows split into groups that may be ranked together; the largest first (ties: full runs before
    subsets, then by config and split), each later group with the reason it stands apart from the first."""
    by_key: dict[GroupKey, Group] = {}
    for r in rows:  # rows are ranked, so each group's rows are too
        by_key.setdefault(GroupKey.of(r), Group(GroupKey.of(r))).rows.append(r)
    groups = sorted(by_key.values(), key=lambda g: (-len(g.rows), g.key.partial, g.key.dataset_config, g.key.split,
                                                    g.key.fingerprint or "", g.key.ids or ""))
    for g in groups[1:]:
        g.why_apart = why_apart(g, groups[0])
    return groups


def why_apart(g: Group, main: Group) -> str:
    """Why ``g``'s results cannot be ranked with ``main``'s, in a sentence."""
    a, b = g.key, main.key
    reasons = []
    if a.dataset_config != b.dataset_config:
        reasons.append(f"another config ({a.dataset_config}, not {b.dataset_config})")
    if a.split != b.split:
        reasons.append(f"another split ({a.split}, not {b.split})")
    if a.fingerprint != b.fingerprint:
        if a.fingerprint is None or b.fingerprint is None:
            reasons.append("a dataset build that is not recorded in one of the results files")
        else:
            reasons.append(f"another build of the dataset (fingerprint {short(a.fingerprint)}, not "
                           f"{short(b.fingerprint)}): other users, settings or splits")
    if a.partial and not b.partial:
        reasons.append(f"a subset run ({g.n} of {g.original} rows, score --subset), never ranked with full runs")
    elif b.partial and not a.partial:
        reasons.append("a full run, never ranked with the subset runs above")
    elif a.ids != b.ids and not reasons:
        reasons.append("other rows of the same split (another subset)" if a.partial else "other rows of the split")
    return "Ranked apart: scored on " + "; ".join(reasons) + "."


def raise_if_mixed(groups: list[Group], results_dir: str | os.PathLike[str]) -> None:
    """``leaderboard --strict``: a folder whose results cannot all be ranked together is refused."""
    if len(groups) > 1:
        listing = "; ".join(f"{g.label}: {', '.join(r['_file'] for r in g.rows)}" for g in groups)
        raise BadInputError(f"the results were scored on {len(groups)} different things and cannot be ranked "
                            f"together ({listing}); move them to one folder per group, or drop --strict to "
                            "rank each group apart", path=results_dir)
