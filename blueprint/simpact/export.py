"""Export: threads + personas -> a dataset directory that ``datasets`` loads with no script.

Layout::

    DATASET_DIR/README.md                                   the dataset card, with configs: and dataset_info: YAML
    DATASET_DIR/data/<config>/<split>-<build fingerprint>-NNNNN-of-NNNNN.parquet
    DATASET_DIR/blueprint_manifest.json                     rows per config and split, the build's settings

Configs: ``{k}_clusters`` for every partition, and ``{k}_clusters_c{i}`` for each
cluster of partitions with at most :data:`MAX_PER_CLUSTER_K` clusters.

The privacy transforms (:mod:`blueprint.simpact.privacy`) run here, a batch at a
time: texts are scrubbed, times become global ranks, and user ids become per-thread
HMAC pseudonyms. Nothing raw reaches the directory: no DID, no absolute time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint._io import atomic_dir, write_json, write_jsonl
from blueprint.actions import ACTIONS
from blueprint.data import MANIFEST, SPLITS, config_name, features, split_of
from blueprint.errors import BadInputError
from blueprint.pii import Scrubber
from blueprint.simpact.config import BuildConfig, ExportConfig
from blueprint.simpact.layout import partition_chunks, write_partition
from blueprint.simpact.privacy import BatchMapper, prepare_rows

if TYPE_CHECKING:
    from blueprint.simpact.engine import Engine

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class ExportReport:
    rows: int = 0
    dropped: Counter = field(default_factory=Counter)
    removed_messages: int = 0
    configs: dict[str, dict[str, int]] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    pii_replaced: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "dropped": dict(sorted(self.dropped.items())),
                "removed_messages": self.removed_messages, "configs": self.configs,
                "actions": self.actions, "pii_replaced": self.pii_replaced}



_SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}


@dataclass
class _Prepared:
    """The prepared rows on disk, and the few per-row values the layout needs, in memory (split code, action,
    whether there is a target text, cluster per partition: 7 bytes a row and 4 more per partition)."""

    path: Path
    rows: int
    ids: Any  # a sha256 over the ids, for the build fingerprint
    splits: np.ndarray  # int8 codes of SPLITS
    actions: np.ndarray  # int8 indices of ACTIONS
    has_text: np.ndarray
    clusters: dict[int, np.ndarray]  # partition k -> int32 cluster per row


def _prepare(threads: Path, prepared: Path, partitions: Mapping[int, Mapping[str, int]], secret: bytes,
             scrubber: Scrubber, report: ExportReport, removed: frozenset[str], cfg: ExportConfig,
             mapper: BatchMapper | None = None) -> _Prepared:
    """Run the privacy transforms into ``prepared`` (Parquet), keeping per row only split, action and clusters."""
    clustered = frozenset(next(iter(partitions.values())).keys())
    keyed = {k: (pa.array(sorted(labels), pa.string()),
                 np.asarray([labels[d] for d in sorted(labels)], dtype=np.int64)) for k, labels in partitions.items()}
    rows, ids = 0, hashlib.sha256()
    splits: list[np.ndarray] = []
    actions: list[np.ndarray] = []
    has_text: list[np.ndarray] = []
    clusters: dict[int, list[np.ndarray]] = {k: [] for k in partitions}
    writer: pq.ParquetWriter | None = None
    try:
        for part in prepare_rows(threads, secret, scrubber, report, removed, keep_times=cfg.time_mode == "cluster",
                                 clustered=clustered, mapper=mapper, temp_dir=prepared.parent):
            if not part.num_rows:
                continue
            rows += part.num_rows
            ids.update("".join(x + "\n" for x in part["id"].to_pylist()).encode())
            splits.append(np.array([_SPLIT_CODE[split_of(k, cfg.fractions)] for k in part["split_key"].to_pylist()],
                                   dtype=np.int8))
            actions.append(part["action"].to_numpy().astype(np.int8))
            has_text.append(part["target_text"].is_valid().to_numpy(zero_copy_only=False))
            for k, (keys, values) in keyed.items():
                idx = pc.index_in(part["did"], value_set=keys).to_numpy(zero_copy_only=False)
                clusters[k].append(values[idx.astype(np.int64)].astype(np.int32))
            body = part.drop_columns(["did", "split_key"])
            if writer is None:
                writer = pq.ParquetWriter(prepared, body.schema)
            writer.write_table(body)
    finally:
        if writer is not None:
            writer.close()
    return _Prepared(prepared, rows, ids, _join(splits, np.int8), _join(actions, np.int8), _join(has_text, bool),
                     {k: _join(v, np.int32) for k, v in clusters.items()})


def _join(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


class _TextsAt:
    """The target texts of chosen rows of the prepared file, read a batch at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, rows: np.ndarray) -> list[str | None]:
        want = np.unique(rows)
        found: dict[int, str | None] = {}
        pos = 0
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=65_536, columns=["target_text"]):
            lo, hi = np.searchsorted(want, [pos, pos + batch.num_rows])
            if hi > lo:
                local = want[lo:hi] - pos
                for r, t in zip(want[lo:hi], batch.column(0).take(pa.array(local)).to_pylist()):
                    found[int(r)] = t
            pos += batch.num_rows
        return [found[int(r)] for r in rows]


def export(threads: pa.Table | str | os.PathLike[str], partitions: Mapping[int, Mapping[str, int]],
           out_dir: str | os.PathLike[str],
           *, secret: bytes, config: ExportConfig | None = None, scrubber: Scrubber | None = None,
           card_context: Mapping[str, Any] | None = None,
           user_vectors: tuple[Sequence[str], np.ndarray] | None = None, seed: int = 0,
           remove_dids: Sequence[str] = (), labels_path: str | os.PathLike[str] | None = None,
           batch_mapper: BatchMapper | None = None) -> ExportReport:
    """Write the dataset directory. ``partitions[k][did]`` is the cluster of user ``did`` in partition k.

    Threads whose last author is in ``remove_dids`` are dropped; those users' messages in
    other threads read ``<REMOVED>``. With ``user_vectors`` (DIDs and their embeddings), the cluster report goes to
    ``reports/`` inside the directory and the card links it. With ``labels_path``, the
    ``test`` split is released without its labels (the last message's text and actions,
    ``action`` = -1, ``target_text``), which go to that file, outside the directory, for
    a leaderboard with hidden labels. The directory is built
    in a temporary sibling and renamed into place, so a failed export never leaves a
    half-written dataset.

    Memory is bounded: the transformed rows go to a scratch Parquet file beside the
    directory (removed at the end) and are laid out from there a chunk at a time; in
    memory stay a few values per row (split, action, cluster per partition).
    ``batch_mapper`` runs the transforms of each batch (the Ray engine runs them on its
    workers); the output does not depend on it.
    """
    from blueprint.simpact.card import render_card

    cfg = config or ExportConfig()
    out_dir = Path(out_dir)
    report = ExportReport()
    if labels_path is not None:
        labels_path = Path(labels_path)
        if out_dir.resolve() == labels_path.resolve().parent or out_dir.resolve() in labels_path.resolve().parents:
            raise BadInputError("the labels file must be outside the dataset directory", path=labels_path,
                                field="hold_out_labels")
    if not partitions:
        raise BadInputError("no partitions to export", field="partitions")
    removed = frozenset(remove_dids)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-export-", dir=out_dir.parent))
    try:
        if isinstance(threads, pa.Table):
            pq.write_table(threads, scratch / "threads.parquet")
            threads = scratch / "threads.parquet"
        threads = Path(threads)
        if pq.ParquetFile(threads).metadata.num_rows == 0:
            raise BadInputError("no threads to export", field="threads")
        # ranks and ids come from every thread, before any is dropped, so that dropping some
        # (a removal request, say) changes nothing for the others
        prep = _prepare(threads, scratch / "rows.parquet", partitions, secret, scrubber or Scrubber(), report,
                        removed, cfg, batch_mapper)
        return _lay_out(prep, partitions, out_dir, cfg, report, removed, card_context, user_vectors, seed,
                        labels_path, render_card)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _lay_out(prep: _Prepared, partitions, out_dir: Path, cfg: ExportConfig, report: ExportReport,
             removed: frozenset[str], card_context, user_vectors, seed: int, labels_path: Path | None,
             render_card) -> ExportReport:
    n_removed = report.dropped.get("removal_request", 0)
    report.rows = prep.rows
    if prep.rows == 0:
        raise BadInputError("no threads left to export (no in-scope actor has a persona)", field="threads")
    _check_unique_ids(prep.path, prep.rows)
    splits, thread_clusters = prep.splits, prep.clusters
    schema = features().arrow_schema
    fingerprint = build_fingerprint(prep.ids, thread_clusters, cfg, labels_path is not None)

    with atomic_dir(out_dir) as tmp:
        configs: dict[str, dict[str, int]] = {}
        cluster_sizes: dict[str, dict[int, int]] = {}
        for k in sorted(partitions):
            cid = thread_clusters[k]
            configs.update(write_partition(partition_chunks(prep.path, k, cid, schema, cfg), tmp, k, cid, splits,
                                            schema, cfg, labels_path is not None, fingerprint))
            cluster_sizes[config_name(k)] = {int(c): int(n) for c, n in zip(*np.unique(cid, return_counts=True))}
        report.configs = configs
        report.actions = {a: int(n) for a, n in zip(ACTIONS, np.bincount(prep.actions, minlength=13))}
        reports_written = []
        if user_vectors is not None:
            from blueprint.simpact.report import write_cluster_reports

            write_cluster_reports(tmp / "reports", dids=list(user_vectors[0]), vectors=user_vectors[1],
                                  partitions=partitions, thread_clusters=thread_clusters,
                                  thread_actions=prep.actions, thread_texts=_TextsAt(prep.path),
                                  thread_has_text=prep.has_text, seed=seed)
            reports_written = sorted(partitions)
        manifest = {
            "format_version": FORMAT_VERSION,
            "build_fingerprint": fingerprint,
            "rows": report.rows,
            "partitions": sorted(partitions),
            "fractions": list(cfg.fractions),
            "configs": configs,
            "actions": report.actions,
            "cluster_sizes_in_threads": cluster_sizes,
            "users_per_cluster": {config_name(k): _users_per_cluster(partitions[k]) for k in sorted(partitions)},
            "dropped": dict(report.dropped),
            "removal": {"dids_listed": len(removed), "threads_dropped": n_removed,
                        "messages_replaced": report.removed_messages},
            "time_mode": cfg.time_mode,
            "test_labels_hidden": labels_path is not None,
            "pii_replaced": report.pii_replaced,
            "cluster_reports": [f"reports/clusters_{k}.json" for k in reports_written],
        }
        if labels_path is not None:
            _write_labels(labels_path, prep.path, splits, thread_clusters)
        write_json(tmp / MANIFEST, manifest)
        (tmp / "README.md").write_text(render_card(manifest, card_context or {}), encoding="utf-8")
    return report


def _check_unique_ids(path: Path, rows: int) -> None:
    from blueprint.simpact import duck

    # bounded: at 6.4M threads an unbounded hash of the ids took about 0.7 GB
    con = duck.connect(temp_directory=path.parent / ".ids", memory_limit="256MB")
    try:
        distinct = con.execute("SELECT count(DISTINCT id) FROM read_parquet(?)", [str(path)]).fetchone()[0]
    finally:
        con.close()
    if distinct != rows:  # pragma: no cover - ids hash each thread's identity
        raise RuntimeError("example ids are not unique")


def build_fingerprint(ids: Any, thread_clusters: Mapping[int, np.ndarray], cfg: ExportConfig,
                      hold_out: bool) -> str:
    """12 hex characters that change with anything the released rows hold: ids, personas, time mode, labels.

    ``ids`` is a sha256 over the ids, each followed by a newline.
    """
    h = ids.copy()
    for k in sorted(thread_clusters):
        h.update(f"|k={k}|".encode() + np.ascontiguousarray(thread_clusters[k], dtype=np.int64).tobytes())
    h.update(f"|{cfg.time_mode}|{list(cfg.fractions)}|{hold_out}|{FORMAT_VERSION}".encode())
    return h.hexdigest()[:12]


def _write_labels(path: Path, prepared: Path, splits: np.ndarray, thread_clusters: Mapping[int, np.ndarray]) -> None:
    """The hidden test labels: id, action, target text, and the cluster in every partition."""
    def rows() -> Iterator[dict]:
        pos = 0
        cols = ["id", "action", "target_text"]
        for batch in pq.ParquetFile(prepared).iter_batches(batch_size=65_536, columns=cols):
            test = np.flatnonzero(splits[pos : pos + batch.num_rows] == _SPLIT_CODE["test"])
            if len(test):
                ids = batch.column(0).take(pa.array(test)).to_pylist()
                actions = batch.column(1).take(pa.array(test)).to_numpy()
                texts = batch.column(2).take(pa.array(test)).to_pylist()
                for j, i in enumerate(test):
                    yield {"id": ids[j], "action": ACTIONS[actions[j]], "text": texts[j],
                           "clusters": {config_name(k): int(c[pos + i]) for k, c in sorted(thread_clusters.items())}}
            pos += batch.num_rows

    write_jsonl(path, rows())


def _users_per_cluster(labels: Mapping[str, int]) -> dict[int, int]:
    c = Counter(labels.values())
    return {int(k): int(v) for k, v in sorted(c.items())}



# --- the stage -------------------------------------------------------------------------------------------


def _carried_over(work: Path) -> dict[int, dict]:
    """The cluster stage's report of personas carried over from a previous build, per partition (empty if none)."""
    from blueprint._io import read_json

    stage = read_json(work / "cluster" / "manifest.json")["report"]["partitions"]
    return {int(k): v["carried_over"] for k, v in stage.items() if "carried_over" in v}


def export_stage(work: Path, out_dir: Path, secret: bytes, cfg: BuildConfig, engine: Engine,
                 secret_note: str = "") -> dict:
    """The build's last stage: the threads and the cluster stage's personas -> ``out_dir``; returns the report."""
    from blueprint.simpact.card import build_description
    from blueprint.simpact.embed import read_user_vectors
    from blueprint.simpact.personas import read_partitions

    context = {
        "title": cfg.title,
        "source": cfg.source,
        "secret_note": secret_note,
        "max_depth": cfg.threads.max_depth,
        "langs": list(cfg.threads.langs) if cfg.threads.langs else "any",
        "per_cluster_max_k": cfg.export.per_cluster_max_k,
        "build_description": build_description(cfg, _carried_over(work)),
    }
    report = export(work / "threads" / "threads.parquet", read_partitions(work / "cluster"), out_dir, secret=secret,
                    config=cfg.export, scrubber=Scrubber(region=cfg.pii_region), card_context=context,
                    user_vectors=read_user_vectors(work / "embed"), seed=cfg.cluster.seed,
                    remove_dids=cfg.remove_dids, labels_path=cfg.hold_out_labels, batch_mapper=engine.batch_mapper)
    return report.to_dict()
