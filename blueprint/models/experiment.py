"""``blueprint experiment``: the paper's base-against-fine-tuned comparison on one persona config, end to end.

Three predictions of the same test rows, each validated and scored with intervals:

1. ``base``: the model as it is, without the persona description;
2. ``base_persona``: the model as it is, with the persona description (``--persona``);
3. ``finetuned``: the model after LoRA fine-tuning on the config's train split (with the
   persona description, so that it differs from 2 by the training alone).

Everything goes under one folder: ``predictions/`` (each with its raw answers and report),
``adapter/``, ``results/`` (results files the leaderboard reads), ``experiment.json`` (the
settings and the table's figures) and ``experiment.md`` (the table). A stage whose output is
there is not run again, so an interrupted run resumes; a run with other settings is refused.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from blueprint._io import atomic_open, write_json
from blueprint.errors import BadInputError
from blueprint.models.engine import GenerationConfig
from blueprint.models.finetune import SUMMARY, FinetuneConfig
from blueprint.validation import check_scalar

log = logging.getLogger(__name__)

RUNS = ("base", "base_persona", "finetuned")
LABELS = {"base": "base, no persona", "base_persona": "base, with persona", "finetuned": "LoRA fine-tuned"}
# the figures of the table, with their results-file names; each is shown with its interval
METRICS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("action_js", "action JS"),
           ("bertscore_f1", "BERTScore F1"), ("cluster_avg_cosine", "cluster avg cosine"),
           ("distinguishability", "distinguishability"))


def cpu_finetune() -> FinetuneConfig:
    """The fine-tuning a 2-core CPU does in about half an hour with a 135M model (see the README's table)."""
    return FinetuneConfig(persona=True, max_steps=40, batch_size=4, grad_accum=1, learning_rate=1e-3,
                          warmup_steps=4, eval_limit=16, save_steps=10, logging_steps=4)


@dataclass(frozen=True)
class ExperimentConfig:
    """Every setting of an experiment; recorded in ``experiment.json`` and compared on resume."""

    max_new_tokens: int = 64
    batch_size: int = 16
    limit: int | None = None  # test rows (a sample stratified by cluster); None: every row
    seed: int = 0
    finetune: FinetuneConfig = field(default_factory=cpu_finetune)

    def __post_init__(self) -> None:
        check_scalar(self.limit, "limit", int, min_val=1, allow_none=True)
        GenerationConfig(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)  # checks both


def run_experiment(model: str, dataset_dir: str | os.PathLike[str], config: str, out: str | os.PathLike[str],
                   cfg: ExperimentConfig | None = None, *, progress: bool = True) -> dict:
    """Run the three predictions, the fine-tuning and the scoring into ``out``; return ``experiment.json``'s dict."""
    from blueprint.models.finetune import finetune

    cfg = cfg or ExperimentConfig()
    out = Path(out)
    settings = {"model": str(model), "dataset": str(dataset_dir), "config": config, **asdict(cfg)}
    _claim(out, settings)
    runs: dict[str, dict] = {}
    base = _engine(model, cfg)  # loads once, on its first prediction, for both runs of the base model
    for name in RUNS[:2]:
        runs[name] = _predict_and_score(name, base, dataset_dir, config, out, cfg, persona=name == "base_persona",
                                        progress=progress)
    del base
    adapter = out / "adapter"
    if not (adapter / SUMMARY).is_file():
        finetune(model, dataset_dir, config, adapter, cfg.finetune, progress=progress)
    training = orjson.loads((adapter / SUMMARY).read_bytes())
    runs["finetuned"] = _predict_and_score("finetuned", _engine(str(adapter), cfg), dataset_dir, config, out, cfg,
                                           persona=True, progress=progress)
    runs["finetuned"]["training"] = {k: training.get(k) for k in (
        "steps", "train_rows", "seconds_per_step", "train_seconds", "precision", "final_eval_loss", "train_loss")}
    report = {"settings": orjson.loads(orjson.dumps(settings)), "runs": runs}
    write_json(out / "experiment.json", report)
    with atomic_open(out / "experiment.md", "w") as fh:
        fh.write(table(report))
    return report


def _claim(out: Path, settings: dict) -> None:
    """Write the settings, or check them against those of the run already there."""
    path = out / "settings.json"
    wanted = orjson.loads(orjson.dumps(settings))
    if path.is_file() and orjson.loads(path.read_bytes()) != wanted:
        raise BadInputError("an experiment with other settings is there; use another --out", path=out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, wanted)


def _engine(model: str, cfg: ExperimentConfig):
    from blueprint.models.transformers_engine import TransformersEngine

    return TransformersEngine(model, generation=GenerationConfig(max_new_tokens=cfg.max_new_tokens,
                                                                 batch_size=cfg.batch_size, seed=cfg.seed))


def _predict_and_score(name: str, engine, dataset_dir, config: str, out: Path, cfg: ExperimentConfig, *,
                       persona: bool, progress: bool) -> dict:
    """Predict with ``engine`` (unless done), score (unless done), and return the run's row of the table."""
    from blueprint.leaderboard.score import score
    from blueprint.models.predict import predict, report_path_for
    from blueprint.subset import subset_path_for

    model = engine.model_name

    pred = out / "predictions" / f"{name}.jsonl"
    results_path = out / "results" / f"{name}.json"
    if not report_path_for(pred).is_file():
        t = time.perf_counter()
        predict(engine, dataset_dir, config, pred, persona=persona, resume=True, progress=progress, limit=cfg.limit,
                seed=cfg.seed)
        log.info("experiment: %s predicted in %.0f s", name, time.perf_counter() - t)
    report = orjson.loads(report_path_for(pred).read_bytes())
    if not results_path.is_file():
        results = score(pred, dataset_dir, config, model_name=f"{model} ({LABELS[name]})",
                        subset=subset_path_for(pred) if cfg.limit is not None else None)
        results.pop("samples", None)
        write_json(results_path, results)
    results = orjson.loads(results_path.read_bytes())
    return {
        "model": model, "persona": persona, "rows": report["rows"], "in_schema": report.get("in_schema"),
        "repairs": report["repairs"], "fallbacks": report["fallbacks"], "errors": report["errors"],
        "predicted_actions": {k: v for k, v in report["predicted_actions"].items() if v},
        "predict_seconds": report.get("seconds"),
        "rows_per_second": round(report["rows"] / report["seconds"], 4) if report.get("seconds") else None,
        "scores": {k: results["results"].get(k) for k, _ in METRICS},
        "intervals": {k: results.get("ci", {}).get(k) for k, _ in METRICS},
        "results": str(results_path),
    }


def _with_interval(value, interval) -> str:
    if value is None:
        return "-"
    if isinstance(interval, (list, tuple)) and len(interval) == 2 and None not in interval:
        return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
    return f"{value:.3f}"


def table(report: dict) -> str:
    """The experiment as a Markdown table: one column per prediction."""
    runs = report["runs"]
    head = "| | " + " | ".join(LABELS[n] for n in RUNS if n in runs) + " |"
    lines = [head, "|---" * (1 + len(runs)) + "|"]

    def row(label: str, cell) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(runs[n]) for n in RUNS if n in runs) + " |")

    row("rows", lambda r: str(r["rows"]))
    row("answers in the schema", lambda r: f"{r['in_schema']} ({r['in_schema'] / r['rows']:.0%})")
    row("repairs", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r["repairs"].items())) or "none")
    row("fallbacks", lambda r: f"{r['fallbacks']} ({r['fallbacks'] / r['rows']:.0%})")
    row("predicted actions", lambda r: ", ".join(f"{k} {v}" for k, v in r["predicted_actions"].items()))
    for key, label in METRICS:
        row(label, lambda r, key=key: _with_interval(r["scores"].get(key), r["intervals"].get(key)))
    row("predict rows/s (a model's first run includes its load)", lambda r: "-" if r["rows_per_second"] is None else
        f"{r['rows_per_second']:.2f}")
    row("training s/step", lambda r: f"{r['training']['seconds_per_step']:.1f} ({r['training']['steps']} steps, "
        f"{r['training']['precision'].split(' (')[0]})" if "training" in r else "-")
    s = report["settings"]
    return (f"Model `{s['model']}` on `{s['config']}` of `{s['dataset']}`; greedy, at most {s['max_new_tokens']} new "
            f"tokens; 95% bootstrap intervals.\n\n" + "\n".join(lines) + "\n")
