"""``blueprint import-release``: the public BluePrint release as a BluePrint dataset directory.

The release (https://huggingface.co/datasets/ComplexDataLab/BluePrint) holds one folder per
partition, ``processed_{k}_clusters/cluster_{i}.jsonl``, each line one thread::

    {"thread": [{"user_id": str, "text": str | null, "relative_integer_time": int,
                 "actions": {13 booleans} | null}, ...], "cluster_id": int}

with ``actions`` on the last message only. Every field of every line is checked, and a bad
one is named by its file, line and field. The import then lays the rows out as ``blueprint
build`` does (:mod:`blueprint.simpact.layout`): one config per partition and, for partitions of
up to 100 clusters, per persona, with the benchmark's splits applied by a hash of each
thread's content id (:func:`blueprint.data.split_of`), a card that credits the release, a
manifest, and a persona report per partition (top terms and action mix: the release carries
no embeddings, so there is no map). Every command then takes the folder.

Two passes over the files keep memory to a few values per row: the first checks every line
and counts, the second writes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from blueprint._io import atomic_dir, file_hash, write_json
from blueprint.actions import ACTIONS
from blueprint.data import DEFAULT_FRACTIONS, MANIFEST, SPLITS, config_name, features, split_of
from blueprint.errors import BadInputError
from blueprint.progress import progress_bar
from blueprint.release_format import release_row

log = logging.getLogger(__name__)

RELEASE_URL = "https://huggingface.co/datasets/ComplexDataLab/BluePrint"
RELEASE_FORMAT_VERSION = 1
_FOLDER = re.compile(r"^processed_(\d+)_clusters$")
_FILE = re.compile(r"^cluster_(\d+)\.jsonl$")


@dataclass
class ImportReport:
    partitions: list[int] = field(default_factory=list)
    rows: dict[int, int] = field(default_factory=dict)  # per partition
    configs: dict[str, dict[str, int]] = field(default_factory=dict)
    ignored_keys: dict[str, int] = field(default_factory=dict)  # keys the row format does not know, counted
    fingerprint: str = ""


def partition_files(release_dir: Path) -> dict[int, list[Path]]:
    """``{k: [cluster_0.jsonl, ..., cluster_{k-1}.jsonl]}`` of every ``processed_{k}_clusters`` folder; every
    cluster's file must be there."""
    if not release_dir.is_dir():
        raise BadInputError("no such folder", path=release_dir)
    found: dict[int, list[Path]] = {}
    for folder in sorted(release_dir.iterdir()):
        m = _FOLDER.match(folder.name)
        if not (m and folder.is_dir()):
            continue
        k = int(m[1])
        files = {int(f.group(1)): folder / f.group(0) for p in folder.iterdir() if (f := _FILE.match(p.name))}
        missing = sorted(set(range(k)) - set(files))
        extra = sorted(set(files) - set(range(k)))
        if missing or extra:
            what = f"no file for clusters {missing[:10]}" if missing else f"clusters {extra[:10]} outside 0..{k - 1}"
            raise BadInputError(f"{what}: a partition of {k} clusters needs cluster_0.jsonl to "
                                f"cluster_{k - 1}.jsonl", path=folder)
        found[k] = [files[c] for c in range(k)]
    if not found:
        raise BadInputError("not a copy of the BluePrint release: no processed_{k}_clusters/ folder (download it "
                            f"from {RELEASE_URL})", path=release_dir)
    return found


def _rows(files: list[Path], k: int, ignored: Counter) -> Iterator[tuple[int, Path, int, int, dict]]:
    """``(cluster, file, line, bytes, row)`` of every non-blank line, checked."""
    for cluster, path in enumerate(files):
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise BadInputError(f"invalid JSON ({exc})", path=path, line=lineno) from None
                yield cluster, path, lineno, len(raw), release_row(obj, cluster, k, path, lineno, ignored)


@dataclass
class _Partition:
    """What the first pass keeps of a partition: each row's id, split and cluster, and the texts for the report."""

    k: int
    files: list[Path]
    ids: list[str] = field(default_factory=list)
    splits: list[int] = field(default_factory=list)
    clusters: list[int] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    texts: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))


def _first_pass(k: int, files: list[Path], fractions, ignored: Counter, progress: bool) -> _Partition:
    part = _Partition(k, files)
    seen: dict[str, tuple[Path, int]] = {}
    code = {s: i for i, s in enumerate(SPLITS)}
    total = sum(f.stat().st_size for f in files)
    with progress_bar(total=total, desc=f"check {k}_clusters", unit="B", enabled=progress) as bar:
        for cluster, path, lineno, size, row in _rows(files, k, ignored):
            bar.update(size)
            if row["id"] in seen:
                first = seen[row["id"]]
                raise BadInputError(f"the same thread as {first[0].name} line {first[1]}", path=path, line=lineno,
                                    field="thread")
            seen[row["id"]] = (path, lineno)
            part.ids.append(row["id"])
            part.splits.append(code[split_of(row["id"], fractions)])
            part.clusters.append(cluster)
            part.actions.append(row["action"])
            if row["target_text"] and len(part.texts[cluster]) < 20_000:
                part.texts[cluster].append(row["target_text"])
    if not part.ids:
        raise BadInputError("the partition holds no thread", path=files[0].parent)
    return part


def release_fingerprint(parts: list[_Partition], fractions) -> str:
    """12 hex characters over every partition's ids and clusters (in id order) and the split fractions."""
    h = hashlib.sha256(f"blueprint-release-v{RELEASE_FORMAT_VERSION}|{list(fractions)}".encode())
    for p in parts:
        order = np.argsort(np.array(p.ids))
        h.update(f"|k={p.k}|".encode())
        h.update("\n".join(p.ids[i] for i in order).encode())
        h.update(np.asarray(p.clusters, dtype=np.int64)[order].tobytes())
    return h.hexdigest()[:12]


def import_release(release_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                   partitions: tuple[int, ...] | None = None, fractions=DEFAULT_FRACTIONS,
                   per_cluster_max_k: int = 100, shard_rows: int = 200_000, progress: bool = True) -> ImportReport:
    """Turn a copy of the public release into a BluePrint dataset directory at ``out_dir`` (whole or not at all)."""
    from blueprint.simpact.card import render_card
    from blueprint.simpact.report import top_terms

    release_dir = Path(release_dir)
    found = partition_files(release_dir)
    if partitions:
        absent = sorted(set(partitions) - set(found))
        if absent:
            raise BadInputError(f"the release copy has no processed_{absent[0]}_clusters/ (it has "
                                f"{sorted(found)})", path=release_dir, field="partitions")
        found = {k: v for k, v in found.items() if k in partitions}
    ignored: Counter = Counter()
    parts = [_first_pass(k, files, fractions, ignored, progress) for k, files in sorted(found.items())]
    report = ImportReport(partitions=[p.k for p in parts], rows={p.k: len(p.ids) for p in parts},
                          ignored_keys=dict(ignored), fingerprint=release_fingerprint(parts, fractions))
    for key, n in sorted(ignored.items()):
        log.warning("import-release: %d lines carry %r, which the release's row format does not have: ignored",
                    n, key)
    with atomic_dir(Path(out_dir)) as tmp:
        for p in parts:
            report.configs.update(_write_partition(p, tmp, per_cluster_max_k, shard_rows, report.fingerprint,
                                                   progress))
            _write_persona_report(tmp / "reports", p, top_terms)
        manifest = _manifest(parts, report, fractions, release_dir)
        write_json(tmp / MANIFEST, manifest)
        (tmp / "README.md").write_text(render_card(manifest, _card_context(per_cluster_max_k)), encoding="utf-8")
    log.info("import-release: %s -> %s (%s)", release_dir, out_dir,
             ", ".join(f"{p.k}_clusters {len(p.ids)} threads" for p in parts))
    return report


def _write_partition(p: _Partition, out: Path, per_cluster_max_k: int, shard_rows: int, fingerprint: str,
                     progress: bool) -> dict[str, dict[str, int]]:
    from blueprint.simpact.layout import _ShardWriter

    schema = features().arrow_schema
    splits, clusters = np.asarray(p.splits), np.asarray(p.clusters)
    names = [config_name(p.k)] + ([config_name(p.k, c) for c in range(p.k)] if p.k <= per_cluster_max_k else [])
    counts = {name: {s: 0 for s in SPLITS} for name in names}
    for code, s in enumerate(SPLITS):
        counts[config_name(p.k)][s] = int((splits == code).sum())
        if p.k <= per_cluster_max_k:
            for c in range(p.k):
                counts[config_name(p.k, c)][s] = int(((splits == code) & (clusters == c)).sum())
    writers = {(n, s): _ShardWriter(out / "data" / n, s, counts[n][s], shard_rows, schema, fingerprint)
               for n in names for s in SPLITS}
    batch: dict[tuple[int, str], list[dict]] = defaultdict(list)

    def flush(key: tuple[int, str]) -> None:
        table = pa.Table.from_pylist(batch.pop(key), schema=schema)
        writers[config_name(p.k), key[1]].write(table)
        if p.k <= per_cluster_max_k:
            writers[config_name(p.k, key[0]), key[1]].write(table)

    with progress_bar(total=len(p.ids), desc=f"write {p.k}_clusters", unit="row", enabled=progress) as bar:
        for i, (cluster, *_, row) in enumerate(_rows(p.files, p.k, Counter())):  # in the first pass's order
            key = (cluster, SPLITS[p.splits[i]])
            batch[key].append(row)
            bar.update(1)
            if len(batch[key]) >= 5_000:
                flush(key)
        for key in list(batch):
            flush(key)
    for w in writers.values():
        w.close()
    return counts


def _write_persona_report(out: Path, p: _Partition, top_terms) -> None:
    """``reports/clusters_{k}.json`` as a build writes it (``predict --persona`` reads it), without the map."""
    counts = np.zeros((p.k, len(ACTIONS)), dtype=np.int64)
    np.add.at(counts, (np.asarray(p.clusters), np.asarray(p.actions)), 1)
    terms = top_terms(p.texts, 10)
    clusters = [{"cluster": c, "users": None, "threads": int(counts[c].sum()),
                 "actions": {a: int(counts[c, j]) for j, a in enumerate(ACTIONS)},
                 "action_share": {a: float(counts[c, j]) / max(1, int(counts[c].sum())) for j, a in enumerate(ACTIONS)},
                 "top_terms": terms.get(c, [])} for c in range(p.k)]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"clusters_{p.k}.json", {"k": p.k, "users": None, "threads": len(p.ids), "map": None,
                                               "clusters": clusters})


def _manifest(parts: list[_Partition], report: ImportReport, fractions, release_dir: Path) -> dict:
    from blueprint.simpact.export import FORMAT_VERSION

    largest = max(parts, key=lambda p: len(p.ids))
    return {
        "format_version": FORMAT_VERSION,
        "build_fingerprint": report.fingerprint,
        "rows": len(largest.ids),
        "partitions": [p.k for p in parts],
        "fractions": list(fractions),
        "configs": report.configs,
        "actions": {a: int(n) for a, n in zip(ACTIONS, np.bincount(largest.actions, minlength=len(ACTIONS)))},
        "cluster_sizes_in_threads": {config_name(p.k): {int(c): int(n) for c, n in
                                                        zip(*np.unique(p.clusters, return_counts=True))}
                                     for p in parts},
        "users_per_cluster": {config_name(p.k): None for p in parts},  # the release's user ids are pseudonyms
        "dropped": {},
        "removal": {"dids_listed": 0, "threads_dropped": 0, "messages_replaced": 0},
        "time_mode": "global",
        "test_labels_hidden": False,
        "pii_replaced": {},
        "cluster_reports": [f"reports/clusters_{p.k}.json" for p in parts],
        "source": {"kind": "release", "url": RELEASE_URL, "folder": release_dir.name,
                   "files": {f"{f.parent.name}/{f.name}": file_hash(f, hashlib.sha256())
                             for p in parts for f in p.files},
                   "ignored_keys": report.ignored_keys},
    }


def _card_context(per_cluster_max_k: int) -> dict:
    return {
        "title": "BluePrint (public release, imported)",
        "source": f"the public BluePrint release ({RELEASE_URL})",
        "imported": True,
        "per_cluster_max_k": per_cluster_max_k,
        "build_description": (
            "This folder holds the public BluePrint release by the paper's authors (Bück-Kaeffer et al., 2025, "
            f"arXiv:2510.02343; {RELEASE_URL}), laid out by `blueprint import-release`: every line of its "
            "`processed_{k}_clusters/cluster_{i}.jsonl` files was checked field by field and kept as it was, "
            "texts, user ids, times and clusters included. Credit for the data, its collection, its personas "
            "and its privacy treatment goes to the release's authors; cite their paper (below) when you use it. "
            "The import adds `id`, `action` and `target_text` and the benchmark's splits."),
        "max_depth": 5,
        "langs": "['en'] (as the release was built)",
    }
