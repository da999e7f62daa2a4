"""Scoring a predictions file against a dataset split, into a results file.

The results file follows the shape of lm-evaluation-harness results: ``results``,
``higher_is_better``, ``versions``, ``n-samples``, ``config``, ``git_hash`` and ``date``,
plus the per-action and per-cluster tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson

from blueprint import __version__
from blueprint._io import file_hash, iter_jsonl
from blueprint.actions import ACTIONS
from blueprint.data import read_split
from blueprint.errors import BadInputError
from blueprint.leaderboard.submission import (
    MAX_BYTES,
    Problem,
    made_for,
    raise_if_invalid,
    read_meta,
    read_predictions,
    validate,
)
from blueprint.metrics.config import MIN_ROWS
from blueprint.metrics.suite import ScoreConfig, score_all
from blueprint.subset import read_ids

log = logging.getLogger(__name__)

RESULTS_VERSION = 3
# The columns of the leaderboard, in order. The text metrics the paper reports per cluster and averaged over
# clusters show their cluster_ level, the paper's number. A results file may lack some (no BERTScore, no text
# rows): the leaderboard shows a dash.
LEADERBOARD = ("macro_f1", "accuracy", "rare_macro_f1", "cluster_macro_f1", "cluster_avg_cosine",
               "cluster_max_cosine", "cluster_embedding_js", "cluster_tfidf_jaccard", "bertscore_f1", "rougeL",
               "action_js", "diagonality", "distinguishability")
PAPER_PER_CLUSTER = ("avg_cosine", "max_cosine", "embedding_js", "tfidf_jaccard")
"""The text metrics whose paper number is the mean over clusters: report ``cluster_<name>`` as the paper's."""


def references(dataset_dir: str | os.PathLike[str], config: str, split: str = "test",
               labels: str | os.PathLike[str] | None = None) -> dict:
    """Ids, actions, clusters and target texts of the evaluated split.

    A dataset built with hidden test labels has ``action`` -1 in its test split; the
    labels then come from the labels file written at build time.
    """
    table = read_split(dataset_dir, config, split, columns=["id", "action", "cluster_id", "target_text"])
    ids = table["id"].to_pylist()
    if labels is None:
        actions = table["action"].to_pylist()
        if any(a < 0 for a in actions):
            raise BadInputError(f"the {split} split's labels are hidden; pass the labels file (--labels)",
                                path=dataset_dir, field="labels")
        return {"ids": ids, "actions": [ACTIONS[a] for a in actions], "clusters": table["cluster_id"].to_pylist(),
                "texts": table["target_text"].to_pylist()}
    by_id = {}
    for lineno, row in iter_jsonl(labels):
        if not isinstance(row, dict) or not {"id", "action", "text", "clusters"} <= set(row):
            raise BadInputError("expected an object with id, action, text and clusters", path=labels, line=lineno)
        if row["action"] not in ACTIONS:
            raise BadInputError(f"{row['action']!r} is not an action", path=labels, line=lineno, field="action")
        by_id[row["id"]] = row
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise BadInputError(f"{len(missing)} rows of {config}/{split} have no label (e.g. {missing[0]}): is this the "
                            "labels file of this dataset?", path=labels)
    rows = [by_id[i] for i in ids]
    if any(config not in r["clusters"] for r in rows):
        raise BadInputError(f"the labels file has no clusters for config {config!r}", path=labels, field="clusters")
    return {"ids": ids, "actions": [r["action"] for r in rows], "clusters": [r["clusters"][config] for r in rows],
            "texts": [r["text"] for r in rows]}


def rare_actions_for(dataset_dir: str | os.PathLike[str], config: str) -> tuple[str, ...]:
    """The rare actions of a config: those under 5% of its train split
    (:func:`~blueprint.metrics.suite.rare_actions_from`)."""
    from blueprint.metrics.suite import rare_actions_from

    return rare_actions_from(read_split(dataset_dir, config, "train", columns=["action"])["action"].to_pylist())


def default_model_name(predictions: str | os.PathLike[str], meta: str | os.PathLike[str] | None = None) -> str | None:
    """The leaderboard's name for a submission given no name: None when a meta file is given (``score`` then
    takes its ``model_name``, else the file's stem), else the model ``blueprint predict`` ran, else the stem."""
    from blueprint.models.predict import report_path_for

    predictions = Path(predictions)
    if meta is not None:
        return None
    report = report_path_for(predictions)
    if report.is_file():
        try:
            model = orjson.loads(report.read_bytes()).get("engine", {}).get("model")
        except (orjson.JSONDecodeError, AttributeError):
            model = None
        if model:
            return Path(str(model).rstrip("/")).name if Path(str(model)).exists() else str(model)
    log.warning("score: no --name given; the leaderboard will call this submission %r (the file's name)",
                predictions.stem)
    return predictions.stem


def check(pred_path: str | os.PathLike[str], dataset_dir: str | os.PathLike[str], config: str,
          split: str = "test", *, max_bytes: int = MAX_BYTES, meta: str | os.PathLike[str] | None = None,
          subset: str | os.PathLike[str] | None = None) -> tuple[int, list]:
    """Validate a predictions file (and its meta file); raise with every problem; return (rows, warnings).

    With ``subset`` (an id file, :mod:`blueprint.subset`), the file must cover exactly those rows. Needs only the
    ids of the split, so it works on a dataset with hidden labels."""
    read_meta(meta)
    ids = read_split(dataset_dir, config, split, columns=["id"])["id"].to_pylist()
    if subset is not None:
        ids = read_ids(subset, ids)
    preds = read_predictions(pred_path, max_bytes=max_bytes)
    _raise_if_invalid(preds, ids, dataset_dir, config, split)
    return len(preds.parsed), preds.warnings


def _raise_if_invalid(preds, ids: list[str], dataset_dir, config: str, split: str) -> None:
    """Every problem of the file; a file made for another config or split of the dataset is named as such."""
    problems = validate(preds, set(ids))
    if problems:
        other = made_for(preds, dataset_dir, config, split)
        if other is not None:
            problems = [Problem(None, "id", f"these predictions cover {other[0]}/{other[1]} ({other[2]:,} rows), not "
                                            f"{config}/{split} ({len(ids):,} rows): pass --config {other[0]} "
                                            f"--split {other[1]}, or predict {config}/{split}")]
    raise_if_invalid(preds, problems)


def _git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions(model: str) -> dict:
    """The versions of everything that changes a score, and the embedding model's id and weights hash."""
    from importlib.metadata import PackageNotFoundError, version

    from blueprint.embedding import resolve_model

    out = {"blueprint": __version__, "results": RESULTS_VERSION}
    for pkg in ("datasets", "transformers", "scikit-learn", "rouge-score", "bert-score", "torch", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover - every one is a dependency
            out[pkg] = None
    resolved = resolve_model(model)
    out["embedding_model"] = {"id": resolved.name, "fingerprint": resolved.fingerprint}
    return out


def score(pred_path: str | os.PathLike[str], dataset_dir: str | os.PathLike[str], config: str,
          split: str = "test", *, model_name: str | None = None,
          labels: str | os.PathLike[str] | None = None, score_config: ScoreConfig | None = None,
          meta: str | os.PathLike[str] | None = None, subset: str | os.PathLike[str] | None = None,
          default_name: Callable[[], str | None] | None = None) -> dict:
    """Validate, then score every metric with intervals; return the results (the per-sample rows under ``samples``).

    With ``subset`` (an id file, :mod:`blueprint.subset`), only those rows are scored: the results record
    ``n-samples`` ``original`` and ``effective`` and are marked ``partial``, and the leaderboard ranks them apart.
    Without ``model_name``, ``default_name()`` names the submission, once the file has passed validation (so
    that nothing is said of a file that is refused).
    """
    cfg = score_config or ScoreConfig()
    submission_meta = read_meta(meta)
    refs = references(dataset_dir, config, split, labels)
    original = len(refs["ids"])
    if subset is not None:
        keep = set(read_ids(subset, refs["ids"]))
        refs = {k: [v for i, v in zip(refs["ids"], vs) if i in keep] for k, vs in refs.items()}
    preds = read_predictions(pred_path)
    _raise_if_invalid(preds, refs["ids"], dataset_dir, config, split)
    if len(refs["ids"]) < MIN_ROWS:
        log.warning("score: only %d rows are evaluated, under the %d whose scores can be read (MIN_ROWS): the "
                    "intervals are wide and many actions have no row", len(refs["ids"]), MIN_ROWS)
    if model_name is None and default_name is not None:
        model_name = default_name()
    by_id = preds.by_id
    scored = score_all(refs["actions"], [by_id[i]["action"] for i in refs["ids"]], refs["texts"],
                       [by_id[i]["text"] for i in refs["ids"]], refs["clusters"], cfg)
    ids_digest = hashlib.sha256("\n".join(sorted(refs["ids"])).encode()).hexdigest()[:16]
    manifest_path = Path(dataset_dir) / "blueprint_manifest.json"
    fingerprint = orjson.loads(manifest_path.read_bytes()).get("build_fingerprint") if manifest_path.is_file() \
        else None
    samples = [{"id": i, **row} for i, row in zip(refs["ids"], scored["samples"])]
    return {
        "model_name": model_name or submission_meta.get("model_name") or Path(pred_path).stem,
        "results": scored["results"],
        "ci": scored["ci"],
        "no_interval": scored["no_interval"],
        "ci_method": scored["ci_method"],
        "higher_is_better": scored["higher_is_better"],
        "targets": scored["targets"],
        "paper_numbers": {name: f"cluster_{name}" for name in PAPER_PER_CLUSTER},
        "per_action": scored["per_action"],
        "per_cluster": scored["per_cluster"],
        "confusion_matrix": scored["confusion_matrix"],
        "similarity_matrix": scored["similarity_matrix"],
        "diagonality_matrices": scored["diagonality_matrices"],
        "diagonality_chance": scored["diagonality_chance"],
        "versions": _versions(cfg.model),
        "n-samples": {"evaluated": len(refs["ids"]), "text_rows": scored["n"]["text_rows"], "original": original,
                      "effective": len(refs["ids"])},
        "config": {"dataset": Path(dataset_dir).name, "dataset_config": config, "split": split,
                   "dataset_fingerprint": fingerprint, "split_ids_sha256": ids_digest,
                   "partial": subset is not None,
                   "subset": None if subset is None else {"file": Path(subset).name,
                                                          "sha256": file_hash(subset, hashlib.sha256())},
                   "predictions": Path(pred_path).name, "score": scored["score_config"]},
        "submission": {"sha256": file_hash(pred_path, hashlib.sha256()), "meta": submission_meta},
        "git_hash": _git_hash(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "samples": samples,
    }


def samples_path_for(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".samples.jsonl")


def write_results(result: dict, out: str | os.PathLike[str]) -> Path:
    """Write the results JSON and, beside it, the per-sample JSONL; each atomically (a reader sees whole files).

    The samples go first, so a results file never points at samples that are not there yet.
    """
    from blueprint._io import write_json, write_jsonl

    body = dict(result)
    samples = body.pop("samples", [])
    samples_out = samples_path_for(out)
    write_jsonl(samples_out, samples)
    body["samples_file"] = samples_out.name
    write_json(out, body)
    return Path(out)


def results_schema() -> dict:
    """The JSON Schema of a results file; :mod:`blueprint.leaderboard.render` checks what it reads against it."""
    number = {"type": ["number", "null"]}
    interval = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "BluePrint results file",
        "type": "object",
        "required": ["model_name", "results", "ci", "higher_is_better", "versions", "n-samples", "config", "date"],
        "properties": {
            "model_name": {"type": "string", "minLength": 1},
            "results": {"type": "object", "required": ["accuracy", "macro_f1"],
                        "additionalProperties": number},
            "ci": {"type": "object", "additionalProperties": interval},
            "no_interval": {"type": "object", "additionalProperties": {"type": "string"}},
            "higher_is_better": {"type": "object", "additionalProperties": {"type": ["boolean", "null"]}},
            "targets": {"type": "object", "additionalProperties": {"type": "number"}},
            "per_action": {"type": "object"},
            "per_cluster": {"type": "object"},
            "confusion_matrix": {"type": "object", "required": ["labels", "matrix"]},
            "diagonality_matrices": {"type": "object"},
            "versions": {"type": "object", "required": ["blueprint", "results"]},
            "n-samples": {"type": "object", "required": ["evaluated"],
                          "properties": {"evaluated": {"type": "integer", "minimum": 0}}},
            "config": {"type": "object", "required": ["dataset_config", "split"],
                       "properties": {"dataset_config": {"type": "string"}, "split": {"type": "string"}}},
            "submission": {"type": "object", "properties": {"sha256": {"type": "string"},
                                                            "meta": {"type": "object"}}},
            "git_hash": {"type": ["string", "null"]},
            "date": {"type": "string"},
        },
    }
