"""Subset runs: a deterministic sample of a split's rows, stratified by persona cluster, and its id file.

``predict --limit N --seed S`` answers only such a sample (lm-evaluation-harness's ``--limit``, made
reproducible and fair to small personas) and writes its ids beside the predictions (``PRED.subset.txt``,
one id per line); ``score --subset`` and ``validate --subset`` take that file. A subset's results are
marked partial and never ranked with full runs.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from blueprint.errors import BadInputError
from blueprint.validation import check_scalar


def stratified_sample(ids: Sequence[str], clusters: Sequence[int], n: int, seed: int = 0) -> list[str]:
    """``n`` of ``ids``, each cluster's share in proportion to its size (largest remainders, ties to the larger
    cluster, then the smaller id), and inside a cluster the ids first by a seeded hash. The result is in the
    split's order, and depends on the ids, the clusters, ``n`` and ``seed`` only (not on the rows' order)."""
    check_scalar(n, "limit", int, min_val=1)
    if n >= len(ids):
        return list(ids)
    members: dict[int, list[str]] = defaultdict(list)
    for i, c in zip(ids, clusters, strict=True):
        members[c].append(i)
    total = len(ids)
    quota = {c: n * len(m) // total for c, m in members.items()}
    rest = n - sum(quota.values())
    by_remainder = sorted(members, key=lambda c: (-(n * len(members[c]) % total), -len(members[c]), c))
    for c in by_remainder[:rest]:
        quota[c] += 1
    key = f"{seed}:".encode()
    chosen: set[str] = set()
    for c, m in members.items():
        chosen.update(sorted(m, key=lambda i: (hashlib.sha256(key + i.encode()).digest(), i))[:quota[c]])
    return [i for i in ids if i in chosen]


def subset_path_for(predictions: str | os.PathLike[str]) -> Path:
    """``PRED.jsonl`` -> ``PRED.subset.txt``."""
    p = Path(predictions)
    return p.with_name(p.name.removesuffix(".jsonl") + ".subset.txt")


def write_ids(path: str | os.PathLike[str], ids: Sequence[str]) -> Path:
    from blueprint._io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return Path(path)


def read_ids(path: str | os.PathLike[str], split_ids: Sequence[str]) -> list[str]:
    """A subset file's ids (one per line; blank lines and ``#`` comments skipped), checked against the split's:
    an unknown or repeated id is an error naming its line. Returned in the split's order."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such subset file", path=p, field="subset")
    known = set(split_ids)
    seen: dict[str, int] = {}
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        i = line.strip()
        if not i or i.startswith("#"):
            continue
        if i not in known:
            raise BadInputError(f"{i[:40]!r} is not a row of the evaluated split (a subset file of another config "
                                "or split?)", path=p, line=lineno, field="subset")
        if i in seen:
            raise BadInputError(f"repeats the id of line {seen[i]}", path=p, line=lineno, field="subset")
        seen[i] = lineno
    if not seen:
        raise BadInputError("the subset file lists no id", path=p, field="subset")
    return [i for i in split_ids if i in seen]
