"""Baselines for next-action prediction: one module per baseline, named in :mod:`.registry`.

A baseline learns from the ``train`` split of a config and writes one prediction per
row of the evaluated split: ``{"id", "action", "text"}``, the format
``blueprint validate`` and ``blueprint score`` read.
"""

from __future__ import annotations

import os

from blueprint._io import write_jsonl
from blueprint.actions import TEXT_ACTIONS
from blueprint.baselines.registry import BASELINES, Baseline, available, get
from blueprint.data import read_split

__all__ = ["BASELINES", "Baseline", "available", "get", "run_baseline"]


def run_baseline(name: str, dataset_dir: str | os.PathLike[str], config: str, split: str,
                 out: str | os.PathLike[str], **options: object) -> int:
    """Fit a baseline on ``train`` and write its predictions for ``split`` to ``out`` (JSONL). Returns the row count.

    A baseline reads the train columns it names in ``train_columns`` (all when None).
    """
    model = get(name, **options)
    columns = getattr(model, "train_columns", ["id", "action", "target_text", "cluster_id"])
    model.fit(read_split(dataset_dir, config, "train", columns=columns))
    rows = model.predict(read_split(dataset_dir, config, split))
    bad = [r["id"] for r in rows if r["action"] in TEXT_ACTIONS and not (r["text"] or "").strip()]
    if bad:  # pragma: no cover - a baseline's own bug, not the user's input
        raise RuntimeError(f"baseline {name!r} predicted a text action without text for {len(bad)} rows")
    return write_jsonl(out, rows)
