"""The SIMPACT pipeline: raw records -> dataset directory, one stage after another.

Stages (each a pure function of its input plus its config, each in its own module):
ingest -> threads -> embed -> cluster -> privacy + export.

Intermediate results live in a work directory beside the dataset (``<out>-work`` by
default), never inside it: they hold raw DIDs and texts. Each stage writes a
``manifest.json`` with a fingerprint of its inputs and config, and its counts. With
``resume=True`` a stage whose fingerprint matches is skipped, and the ingest stage
continues from the last input file it finished; the result is byte-identical to an
uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from blueprint._io import atomic_path, read_json, write_json
from blueprint.errors import BadInputError
from blueprint.simpact import cluster as cluster_mod
from blueprint.simpact.cluster import ClusterConfig
from blueprint.simpact.embed import DEFAULT_MODEL, EmbeddingCache, Encoder, default_cache_dir, embed_texts
from blueprint.simpact.export import ExportConfig, export
from blueprint.simpact.ingest import IngestConfig, ingest, plan
from blueprint.simpact.pii import Scrubber
from blueprint.simpact.privacy import create_secret, load_secret, process_batches, without_removed
from blueprint.simpact.threads import ThreadConfig, build_threads

if TYPE_CHECKING:
    from blueprint.simpact.ray_engine import RayEngine

log = logging.getLogger(__name__)

STAGES = ("ingest", "threads", "embed", "cluster", "export")
PIPELINE_VERSION = 1


@dataclass(frozen=True)
class EmbedConfig:
    """Which model embeds the users' texts, and how."""

    model: str = DEFAULT_MODEL
    pooling: str = "auto"
    max_length: int = 128
    batch_size: int = 64
    include_quotes: bool = False
    prefix: str = ""
    cache_dir: str | None = "default"  # "default": $BLUEPRINT_CACHE or ~/.cache/blueprint; None: no cache
    backend: str = "torch"  # torch, onnx or onnx-int8 (embed.BACKENDS)


@dataclass(frozen=True)
class BuildConfig:
    """Every setting of a build. Its JSON form goes into the stage fingerprints."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    threads: ThreadConfig = field(default_factory=ThreadConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    pii_region: str = "CA"
    title: str = "BluePrint"
    source: str = "public Bluesky records"  # what the card says the data was built from
    remove_dids: tuple[str, ...] = ()  # removal requests: their threads go, their words elsewhere read <REMOVED>
    hold_out_labels: str | None = None  # a file outside the dataset: the test split is released without labels


@dataclass
class BuildResult:
    dataset_dir: Path
    work_dir: Path
    secret_file: Path
    reports: dict[str, Any]
    seconds: dict[str, float]
    # peak resident memory per stage, this process (Linux; empty elsewhere); "ingest_workers": its worker processes
    peak_rss_mb: dict[str, float] = field(default_factory=dict)


class _Measure:
    """Wall time and peak resident memory of each stage (the peak is reset between stages on Linux)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        _reset_peak_rss()
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - t
            peak = _peak_rss_mb()
            if peak is not None:
                self.peak_rss_mb[name] = peak
            if name == "ingest":
                import resource

                self.peak_rss_mb["ingest_workers"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)).hexdigest()


class _Stage:
    """Runs one stage unless a finished run with the same fingerprint is on disk (and resume is on)."""

    def __init__(self, work: Path, resume: bool) -> None:
        self.work = work
        self.resume = resume

    def run(self, name: str, fingerprint: str, fn: Callable[[Path], dict]) -> tuple[dict, bool]:
        d = self.work / name
        manifest = d / "manifest.json"
        if self.resume and manifest.is_file():
            saved = read_json(manifest)
            if saved.get("fingerprint") == fingerprint:
                log.info("%s: done already (resume), skipping", name)
                return saved["report"], True
        if manifest.is_file():
            manifest.unlink()  # the stage is about to change: its old results no longer count
        if not self.resume and d.exists() and name != "ingest":
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)
        report = fn(d)
        write_json(manifest, {"stage": name, "fingerprint": fingerprint, "version": PIPELINE_VERSION,
                              "report": report})
        return report, False


def _workers(cfg: BuildConfig) -> int:
    """Worker processes for ingest and export (``--workers``; 0: one per CPU)."""
    return cfg.ingest.workers or os.cpu_count() or 1


def _call(stage: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def default_work_dir(out_dir: Path) -> Path:
    return out_dir.parent / f"{out_dir.name}-work"


def build(inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
          config: BuildConfig | None = None, *, work_dir: str | os.PathLike[str] | None = None,
          secret_file: str | os.PathLike[str] | None = None, resume: bool = False,
          progress: bool = False, engine: "RayEngine | None" = None) -> BuildResult:
    """Run every stage from raw records to the dataset directory ``out_dir``.

    ``engine``: None runs here (worker processes for ingest); a started
    :class:`~blueprint.simpact.ray_engine.RayEngine` runs the stages' work on Ray. The
    dataset, and the stages' fingerprints (so ``resume``), do not depend on it.
    """
    run = _call if engine is None else engine.call
    cfg = config or BuildConfig()
    out_dir = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else default_work_dir(out_dir)
    if work.resolve() == out_dir.resolve() or out_dir.resolve() in work.resolve().parents:
        raise BadInputError("the work directory must be outside the dataset directory", path=work)
    if not resume and (work / "ingest").exists():
        shutil.rmtree(work / "ingest")
    work.mkdir(parents=True, exist_ok=True)
    secret_path, secret, _ = _secret(secret_file, work)
    secret_note = "" if secret_file is not None else (
        "**The pseudonym secret of this build was generated for it and lives with its intermediate files:** "
        + NOT_KEPT.format(path="it") + ".")
    stage = _Stage(work, resume)
    reports: dict[str, Any] = {}

    measure = _Measure()
    with measure("ingest"):
        segments = plan(inputs, cfg.ingest)  # hashes every input once
        digests = sorted({(s.input.name, s.sha256) for s in segments[0]})
        fp = _fingerprint("ingest", PIPELINE_VERSION, digests, cfg.ingest.fingerprint())
        reports["ingest"], _ = stage.run("ingest", fp, lambda d: ingest(
            inputs, d, cfg.ingest, progress=progress, segments=segments,
            runner=engine.ingest_runner if engine is not None else None).to_dict()["totals"])
    _log_ingest(reports["ingest"])

    fp = _fingerprint("threads", fp, asdict(cfg.threads))
    with measure("threads"):
        reports["threads"], _ = stage.run("threads", fp, lambda d: run(
            "threads", build_threads, work / "ingest", d, cfg.threads, progress=progress).to_dict())
    r = reports["threads"]
    log.info("threads: %d examples from %d events; %d users in scope of %d; %d skipped, %d quarantined",
             r["examples"], r["events"], r["users_in_scope"], r["users_seen"], r["skipped"], r["quarantined"])

    encoder = Encoder(cfg.embed.model, pooling=cfg.embed.pooling, max_length=cfg.embed.max_length,
                      batch_size=cfg.embed.batch_size, prefix=cfg.embed.prefix, backend=cfg.embed.backend)
    removal = sorted(set(cfg.remove_dids))
    fp = _fingerprint("embed", fp, asdict(cfg.embed), encoder.fingerprint, removal)
    with measure("embed"):
        reports["embed"], _ = stage.run("embed", fp, lambda d: _embed_stage(work / "threads", d, encoder, cfg.embed,
                                                                            progress, frozenset(removal), engine))

    fp = _fingerprint("cluster", fp, asdict(cfg.cluster))
    with measure("cluster"):
        reports["cluster"], _ = stage.run("cluster", fp, lambda d: run("cluster", _cluster_stage, work / "embed", d,
                                                                       cfg.cluster))

    fp = _fingerprint("export", fp, asdict(cfg.export), cfg.pii_region, cfg.title, cfg.source, removal,
                      cfg.hold_out_labels, hashlib.sha256(secret).hexdigest(), str(out_dir.resolve()), secret_note)
    with measure("export"):
        reports["export"], _ = stage.run("export", fp if (out_dir / "README.md").is_file() else fp + "-missing",
                                         lambda d: _export_stage(work, out_dir, secret, cfg, secret_note, engine))
    log.info("export: %d rows in %d configs -> %s", reports["export"]["rows"], len(reports["export"]["configs"]),
             out_dir)
    return BuildResult(out_dir, work, secret_path, reports, measure.seconds, measure.peak_rss_mb)


NOT_KEPT = ("ids and pseudonyms will not match any later rebuild unless this secret is kept: keep {path}, "
            "private, and pass it with --secret-file next time (never publish it)")


def _secret(secret_file: str | os.PathLike[str] | None, work: Path) -> tuple[Path, bytes, bool]:
    """(path, secret, whether it was generated by this run). A named file that does not exist is created."""
    path = Path(secret_file) if secret_file is not None else work / "secret.key"
    if path.is_file():
        log.info("privacy: using the pseudonym secret at %s", path)
        return path, load_secret(path), False
    secret = create_secret(path)
    how = "at the --secret-file path" if secret_file is not None else "(no --secret-file given)"
    log.warning("privacy: a NEW pseudonym secret was generated %s and stored with mode 0600 at %s; %s.",
                how, path, NOT_KEPT.format(path=path))
    return path, secret, True


def _log_ingest(r: dict) -> None:
    log.info("ingest: %d lines from %d files -> %d events, %d without an action, %d quarantined%s",
             r["lines"], r["files"], r["events"], r["no_action"], r["quarantined"],
             "" if not r["quarantined"] else f" ({r['quarantined_by_reason']})")


EMBED_CHUNK = 100_000  # texts per step of the embedding stage: bounds its memory


def _embed_stage(threads_dir: Path, d: Path, encoder: Encoder, cfg: EmbedConfig, progress: bool,
                 removed: frozenset[str] = frozenset(), engine: "RayEngine | None" = None) -> dict:
    """Users' mean vectors, a chunk of texts at a time.

    Memory holds a chunk or two, the per-user sums and the cache's keys, never every
    text's vector. Each chunk's distinct texts are looked up in the embedding cache as
    it was when the stage began, and the others encoded; so a chunk's vectors do not
    depend on which chunk ran first, and the Ray engine (chunks encoded on actors,
    results in order) gives the same bytes as this process. The
    sums add the texts in file order, as one pass would.
    """
    path = threads_dir / "user_texts.parquet"
    users = _embedding_users(path, cfg, removed)
    cache_root = None if cfg.cache_dir is None else str(
        default_cache_dir() if cfg.cache_dir == "default" else cfg.cache_dir)
    snapshot = EmbeddingCache(cache_root, encoder.fingerprint).shard_names() if cache_root else None
    encode = (LocalChunks(encoder, cache_root, snapshot, progress) if engine is None
              else engine.chunk_encoder(encoder, cache_root, snapshot, progress))
    dim = encoder.dim
    sums = np.zeros((len(users), dim), dtype=np.float64)
    counts = np.zeros(len(users), dtype=np.int64)
    totals = {"texts": 0, "cached": 0, "encoded": 0}  # cached / encoded: distinct texts of each chunk
    keys = pa.array(users, pa.string())
    chunks = _text_chunks(path, cfg, removed)
    for texts, (vectors, c) in zip(_tee_dids(chunks), encode(t["text"].to_pylist() for t in chunks.copy())):
        for k in totals:
            totals[k] += c[k]
        idx = pa.compute.index_in(texts, value_set=keys).to_numpy(zero_copy_only=False).astype(np.int64)
        np.add.at(sums, idx, vectors)
        np.add.at(counts, idx, 1)
    vectors = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
    table = pa.table({"did": keys,
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
                      if len(users) else pa.array([], pa.list_(pa.float32(), dim))})
    with atomic_path(d / "users.parquet") as tmp:
        pq.write_table(table, tmp)
    log.info("embed: %d texts (%d encoded, %d from the cache) -> %d users (%s, %s pooling, %s)", totals["texts"],
             totals["encoded"], totals["cached"], len(users), encoder.model.name, encoder.pooling, encoder.backend)
    return {**totals, "users": len(users), "model": encoder.model.name,
            "model_fingerprint": encoder.model.fingerprint, "pooling": encoder.pooling, "dim": dim,
            "backend": encoder.backend}


ChunkEncoder = Callable[[Iterator[list[str]]], Iterator[tuple[np.ndarray, dict]]]


class LocalChunks:
    """Encodes chunks of texts in this process, in order: a :data:`ChunkEncoder`."""

    def __init__(self, encoder: Encoder, cache_root: str | None, snapshot: list[str] | None,
                 progress: bool = False) -> None:
        self.encoder, self.progress = encoder, progress
        self.read = None if cache_root is None else EmbeddingCache(cache_root, encoder.fingerprint, only=snapshot)
        self.write = None if cache_root is None else EmbeddingCache(cache_root, encoder.fingerprint, only=())

    def __call__(self, chunks: Iterator[list[str]]) -> Iterator[tuple[np.ndarray, dict]]:
        for texts in chunks:
            yield embed_texts(texts, self.encoder, self.read, write_to=self.write, progress=self.progress)


class _Chunks:
    """The persona texts in chunks, readable twice in step (the DIDs here, the texts by the encoder)."""

    def __init__(self, path: Path, cfg: EmbedConfig, removed: frozenset[str]) -> None:
        self.path, self.cfg, self.removed = path, cfg, removed

    def copy(self) -> "_Chunks":
        return _Chunks(self.path, self.cfg, self.removed)

    def __iter__(self) -> Iterator[pa.Table]:
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=EMBED_CHUNK, columns=["did", "action", "text"]):
            texts = pa.Table.from_batches([batch])
            if not self.cfg.include_quotes:
                texts = texts.filter(pa.compute.not_equal(texts["action"], "quote"))
            texts, _ = without_removed(texts, self.removed)  # users who asked to be removed get no persona
            if texts.num_rows:
                yield texts


def _tee_dids(chunks: "_Chunks") -> Iterator[pa.ChunkedArray]:
    for t in chunks:
        yield t["did"]


def _text_chunks(path: Path, cfg: EmbedConfig, removed: frozenset[str]) -> _Chunks:
    """The texts that make personas, ``EMBED_CHUNK`` at a time: no quotes unless asked, no removed user."""
    return _Chunks(path, cfg, removed)


def _embedding_users(path: Path, cfg: EmbedConfig, removed: frozenset[str]) -> list[str]:
    """The users with at least one persona text, sorted."""
    seen: set[str] = set()
    for texts in _text_chunks(path, cfg, removed):
        seen.update(pa.compute.unique(texts["did"]).to_pylist())
    return sorted(seen)


def read_user_vectors(embed_dir: Path) -> tuple[list[str], np.ndarray]:
    t = pq.read_table(embed_dir / "users.parquet")
    dids = t["did"].to_pylist()
    if not dids:
        return [], np.zeros((0, 0), dtype=np.float32)
    flat = t["vector"].combine_chunks().flatten().to_numpy()
    return dids, flat.reshape(len(dids), -1)


def _cluster_stage(embed_dir: Path, d: Path, cfg: ClusterConfig) -> dict:
    dids, x = read_user_vectors(embed_dir)
    cols: dict[str, pa.Array] = {"did": pa.array(dids, pa.string())}
    summary = {}
    for k in cfg.partitions:
        part = cluster_mod.cluster(x, k, cfg)
        cols[f"k{k}"] = pa.array(part.labels, pa.int64())
        sizes = part.sizes
        summary[str(k)] = {"method": part.method, "inertia": part.inertia, "size_min": int(sizes.min()),
                           "size_max": int(sizes.max()), "sizes": sizes.tolist()}
    with atomic_path(d / "partitions.parquet") as tmp:
        pq.write_table(pa.table(cols), tmp)
    return {"users": len(dids), "partitions": summary}


def read_partitions(cluster_dir: Path) -> dict[int, dict[str, int]]:
    t = pq.read_table(cluster_dir / "partitions.parquet")
    dids = t["did"].to_pylist()
    return {int(name[1:]): dict(zip(dids, t[name].to_pylist())) for name in t.column_names if name != "did"}


def _export_stage(work: Path, out_dir: Path, secret: bytes, cfg: BuildConfig, secret_note: str = "",
                  engine: "RayEngine | None" = None) -> dict:
    partitions = read_partitions(work / "cluster")
    context = {
        "title": cfg.title,
        "source": cfg.source,
        "secret_note": secret_note,
        "max_depth": cfg.threads.max_depth,
        "langs": list(cfg.threads.langs) if cfg.threads.langs else "any",
        "per_cluster_max_k": cfg.export.per_cluster_max_k,
        "build_description": _describe(cfg),
    }
    report = export(work / "threads" / "threads.parquet", partitions, out_dir, secret=secret, config=cfg.export,
                    scrubber=Scrubber(region=cfg.pii_region), card_context=context,
                    user_vectors=read_user_vectors(work / "embed"), seed=cfg.cluster.seed,
                    remove_dids=cfg.remove_dids, labels_path=cfg.hold_out_labels,
                    batch_mapper=engine.batch_mapper if engine is not None else process_batches(_workers(cfg)))
    return report.to_dict()


def _describe(cfg: BuildConfig) -> str:
    c = cfg.cluster
    return (
        "1. **Ingest.** Jetstream commits were decoded and mapped to the 13 actions; malformed lines were "
        "quarantined and counted.\n"
        f"2. **Threads.** Reply chains were rebuilt through `reply.parent` (at most {cfg.threads.max_depth} "
        "messages); reactions pair the target post with the actor's message; follows and blocks take the "
        "target's latest post as context; updates and deletes carry the original post. Only users with at least "
        f"{cfg.threads.min_user_posts} posts and replies in {list(cfg.threads.langs or ['any language'])} are in scope.\n"
        f"3. **Personas.** Each user is the mean embedding of their posts and replies (model "
        f"`{cfg.embed.model}`, {cfg.embed.pooling} pooling, max length {cfg.embed.max_length}); users were "
        f"clustered by constrained k-means (k = {', '.join(map(str, c.partitions))}; at least {c.size_min} users "
        "per cluster).\n"
        "4. **Privacy.** Texts were PII-scrubbed, times replaced by ranks"
        f" ({'over the whole dataset' if cfg.export.time_mode == 'global' else 'inside each cluster'}), user ids by "
        "per-thread keyed pseudonyms, and removal requests honoured (see below)."
    )
