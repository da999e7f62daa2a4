"""``blueprint demo``: the whole product on a synthetic corpus, from raw records to a leaderboard row.

synth -> build (ingest, threads, embed, cluster, privacy, export) -> majority baseline
-> validate and score -> results JSON -> leaderboard.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from blueprint._io import write_json
from blueprint.baselines import run_baseline
from blueprint.data import config_name
from blueprint.leaderboard.render import render
from blueprint.leaderboard.score import score
from blueprint.simpact.cluster import ClusterConfig
from blueprint.simpact.export import read_manifest
from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build
from blueprint.synth import SynthConfig, synthesize

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    out_dir: Path
    dataset_dir: Path
    results: Path
    leaderboard: dict[str, Path]
    manifest: dict
    scores: dict
    seconds: float


def run_demo(out_dir: str | os.PathLike[str], *, users: int = 600, seed: int = 0,
             partitions: tuple[int, ...] = (2, 25), model: str = "default", resume: bool = False,
             progress: bool = True) -> DemoResult:
    """Run the demo into ``out_dir``: raw/, dataset/, work/, predictions/, results/, leaderboard/."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    raw, dataset, work = out / "raw", out / "dataset", out / "work"
    log.info("[1/6] synth: %d users, seed %d -> %s", users, seed, raw)
    synthesize(raw, SynthConfig(users=users, seed=seed), force=True)
    log.info("[2/6] build: ingest, threads, embed, cluster (k = %s), privacy, export -> %s",
             ", ".join(map(str, partitions)), dataset)
    cfg = BuildConfig(embed=replace(EmbedConfig(), model=model),
                      cluster=ClusterConfig(partitions=tuple(partitions), seed=seed),
                      title="BluePrint demo (synthetic)")
    build([raw], dataset, cfg, work_dir=work, resume=resume, progress=progress)
    config = config_name(max(partitions))
    preds = out / "predictions" / "majority.jsonl"
    log.info("[3/6] baseline: majority on %s/test -> %s", config, preds)
    run_baseline("majority", dataset, config, "test", preds)
    log.info("[4/6] score: accuracy and macro-F1, per cluster too")
    result = score(preds, dataset, config, "test", model_name="majority")
    results = out / "results" / "majority.json"
    log.info("[5/6] results -> %s", results)
    write_json(results, result)
    log.info("[6/6] leaderboard -> %s", out / "leaderboard")
    board = render(out / "results", out / "leaderboard")
    return DemoResult(out, dataset, results, board, read_manifest(dataset), result["results"],
                      time.perf_counter() - t0)
