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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from blueprint._io import read_json, write_json
from blueprint.errors import BadInputError
from blueprint.gitignore import warn_if_unignored
from blueprint.simpact.carry import personas_hash, previous_work_dir
from blueprint.simpact.config import (
    BuildConfig,
    ClusterConfig,
    EmbedConfig,
    ExportConfig,
    IngestConfig,
    ThreadConfig,
)
from blueprint.simpact.embed import embed_users
from blueprint.simpact.engine import Engine, LocalEngine
from blueprint.simpact.export import export_stage
from blueprint.simpact.ingest import ingest, plan
from blueprint.simpact.personas import cluster_users
from blueprint.simpact.privacy import create_secret, load_secret
from blueprint.simpact.threads import build_threads

__all__ = ["BuildConfig", "BuildResult", "ClusterConfig", "EmbedConfig", "ExportConfig", "IngestConfig",
           "ThreadConfig", "build", "default_work_dir"]

log = logging.getLogger(__name__)

STAGES = ("ingest", "threads", "embed", "cluster", "export")
PIPELINE_VERSION = 1


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


def default_work_dir(out_dir: Path) -> Path:
    return out_dir.parent / f"{out_dir.name}-work"


def build(inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
          config: BuildConfig | None = None, *, work_dir: str | os.PathLike[str] | None = None,
          secret_file: str | os.PathLike[str] | None = None, resume: bool = False,
          progress: bool = False, engine: Engine | None = None) -> BuildResult:
    """Run every stage from raw records to the dataset directory ``out_dir``.

    ``engine`` runs the stages' work: a :class:`~blueprint.simpact.engine.LocalEngine`
    by default (worker processes for ingest and export), or a started
    :class:`~blueprint.simpact.ray_engine.RayEngine`. The dataset, and the stages'
    fingerprints (so ``resume``), do not depend on it.
    """
    cfg = config or BuildConfig()
    engine = engine or LocalEngine(cfg.ingest.workers)
    out_dir = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else default_work_dir(out_dir)
    if work.resolve() == out_dir.resolve() or out_dir.resolve() in work.resolve().parents:
        raise BadInputError("the work directory must be outside the dataset directory", path=work, field="work_dir")
    if not resume and (work / "ingest").exists():
        shutil.rmtree(work / "ingest")
    work.mkdir(parents=True, exist_ok=True)
    secret_path, secret, _ = _secret(secret_file, work)
    _warn_unignored(work, secret_path, cfg.hold_out_labels)
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
            runner=engine.ingest_runner).to_dict()["totals"])
    _log_ingest(reports["ingest"])

    fp = _fingerprint("threads", fp, asdict(cfg.threads))
    with measure("threads"):
        reports["threads"], _ = stage.run("threads", fp, lambda d: engine.call(
            "threads", build_threads, work / "ingest", d, cfg.threads, progress=progress).to_dict())
    r = reports["threads"]
    log.info("threads: %d examples from %d events; %d users in scope of %d; %d skipped, %d quarantined",
             r["examples"], r["events"], r["users_in_scope"], r["users_seen"], r["skipped"], r["quarantined"])

    encoder = cfg.embed.encoder()
    removal = sorted(set(cfg.remove_dids))
    fp = _fingerprint("embed", fp, asdict(cfg.embed), encoder.fingerprint, removal)
    with measure("embed"):
        reports["embed"], _ = stage.run("embed", fp, lambda d: embed_users(
            work / "threads", d, cfg.embed, engine, encoder=encoder, removed=frozenset(removal), progress=progress))

    carried = None
    if cfg.cluster.personas_from is not None:
        if previous_work_dir(cfg.cluster.personas_from).resolve() == work.resolve():
            raise BadInputError("--personas-from names this build's own work folder, which the build replaces; "
                                "name the previous build's (build into another --out)", field="personas_from")
        carried = personas_hash(cfg.cluster.personas_from)
    fp = _fingerprint("cluster", fp, asdict(cfg.cluster), carried)
    with measure("cluster"):
        reports["cluster"], _ = stage.run("cluster", fp, lambda d: engine.call(
            "cluster", cluster_users, work / "embed", d, cfg.cluster))

    fp = _fingerprint("export", fp, asdict(cfg.export), cfg.pii_region, cfg.title, cfg.source, removal,
                      cfg.hold_out_labels, hashlib.sha256(secret).hexdigest(), str(out_dir.resolve()), secret_note)
    with measure("export"):
        reports["export"], _ = stage.run("export", fp if (out_dir / "README.md").is_file() else fp + "-missing",
                                         lambda d: export_stage(work, out_dir, secret, cfg, engine, secret_note))
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


def _warn_unignored(work: Path, secret: Path, labels: str | None) -> None:
    """The private files of a build, inside a git work tree that does not ignore them, are one commit from public."""
    work_warned = warn_if_unignored(work, "the build's work folder (raw records and reports)")
    if not (work_warned and work.resolve() in secret.resolve().parents):
        warn_if_unignored(secret, "the pseudonym secret")
    if labels is not None:
        warn_if_unignored(labels, "the held-out test labels")


def _log_ingest(r: dict) -> None:
    log.info("ingest: %d lines from %d files -> %d events, %d without an action, %d quarantined%s",
             r["lines"], r["files"], r["events"], r["no_action"], r["quarantined"],
             "" if not r["quarantined"] else f" ({r['quarantined_by_reason']})")
