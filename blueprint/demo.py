"""``blueprint demo``: the whole product on a synthetic corpus, from raw records to a leaderboard row.

synth -> build (ingest, threads, embed, cluster, privacy, export) -> every baseline
(majority, cluster_majority, random, persona_prior, retrieval, gbdt) -> validate and
score -> results JSON -> leaderboard.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from blueprint._io import file_hash

log = logging.getLogger(__name__)

BASELINES = ("majority", "cluster_majority", "random", "persona_prior", "retrieval", "gbdt")


@dataclass
class DemoResult:
    out_dir: Path
    dataset_dir: Path
    results: Path  # the folder of results files
    leaderboard: dict[str, Path]
    manifest: dict
    scores: dict[str, dict]  # baseline -> its headline numbers
    seconds: float


def run_demo(out_dir: str | os.PathLike[str], *, users: int = 600, seed: int = 0,
             partitions: tuple[int, ...] = (2, 25), model: str = "default", resume: bool = False,
             progress: bool = True) -> DemoResult:
    """Run the demo into ``out_dir``: raw/, dataset/, work/, predictions/, results/, leaderboard/."""
    from blueprint.baselines import run_baseline
    from blueprint.data import config_name, read_manifest
    from blueprint.leaderboard.render import render
    from blueprint.leaderboard.score import score, write_results
    from blueprint.metrics.config import ScoreConfig
    from blueprint.simpact.config import BuildConfig, ClusterConfig, EmbedConfig
    from blueprint.simpact.pipeline import build
    from blueprint.synth import SynthConfig, synthesize

    t0 = time.perf_counter()
    out = Path(out_dir)
    raw, dataset, work = out / "raw", out / "dataset", out / "work"
    log.info("[1/5] synth: %d users, seed %d -> %s", users, seed, raw)
    synthesize(raw, SynthConfig(users=users, seed=seed), force=True)
    log.info("[2/5] build: ingest, threads, embed, cluster (k = %s), privacy, export -> %s",
             ", ".join(map(str, partitions)), dataset)
    cfg = BuildConfig(embed=replace(EmbedConfig(), model=model),
                      cluster=ClusterConfig(partitions=tuple(partitions), seed=seed),
                      title="BluePrint demo (synthetic)",
                      source="a synthetic corpus made by `blueprint synth` (invented users; no real person's data)")
    build([raw], dataset, cfg, work_dir=work, resume=resume, progress=progress)
    config = config_name(max(partitions))
    scores = {}
    fingerprint = read_manifest(dataset).get("build_fingerprint")
    for i, name in enumerate(BASELINES, start=1):
        preds = out / "predictions" / f"{name}.jsonl"
        results = out / "results" / f"{name}.json"
        done = _finished(results, preds, fingerprint) if resume else None
        if done is not None:  # scored on this very build by an earlier run: nothing to redo
            log.info("[3-4/5] %s: predictions and results of this build exist (--resume): kept", name)
            scores[name] = done
            continue
        log.info("[3/5] baseline %d of %d: %s on %s/test -> %s", i, len(BASELINES), name, config, preds)
        options: dict[str, str | int] = {"model": model} if name in ("retrieval", "gbdt") else {}
        if name in ("random", "persona_prior", "retrieval", "gbdt"):
            options["seed"] = seed
        if name == "gbdt":  # the same numbers whether LightGBM (an extra) is installed or not
            options["engine"] = "sklearn"
        run_baseline(name, dataset, config, "test", preds, **options)
        log.info("[4/5] score %s (%d of %d): actions, texts and distributions, per cluster, with bootstrap "
                 "intervals", name, i, len(BASELINES))
        result = score(preds, dataset, config, "test", model_name=name,
                       score_config=ScoreConfig(model=model, seed=seed))
        write_results(result, results)
        scores[name] = result["results"]
    log.info("[5/5] leaderboard of %d results -> %s", len(BASELINES), out / "leaderboard")
    board = render(out / "results", out / "leaderboard")
    return DemoResult(out, dataset, out / "results", board, read_manifest(dataset), scores,
                      time.perf_counter() - t0)


def _finished(results: Path, preds: Path, fingerprint: str | None) -> dict | None:
    """The scores in ``results`` when it and ``preds`` exist and were made on the build ``fingerprint`` names."""
    if fingerprint is None or not (results.is_file() and preds.is_file()):
        return None
    try:
        done = orjson.loads(results.read_bytes())
    except orjson.JSONDecodeError:
        return None
    same = done.get("config", {}).get("dataset_fingerprint") == fingerprint
    scored = done.get("submission", {}).get("sha256") == file_hash(preds, hashlib.sha256())
    return done.get("results") if same and scored else None
