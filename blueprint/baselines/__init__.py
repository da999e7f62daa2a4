"""Baselines for next-action prediction: one module per baseline, registered by name.

A baseline learns from the ``train`` split of a config and writes one prediction per
row of the evaluated split: ``{"id", "action", "text"}``, the format
``blueprint validate`` and ``blueprint score`` read.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Protocol

import pyarrow as pa


class Baseline(Protocol):
    name: str
    train_columns: list[str] | None  # the train split's columns that fit reads (None: all)

    def fit(self, train: pa.Table) -> Baseline: ...

    def predict(self, rows: pa.Table) -> list[dict]: ...


_REGISTRY: dict[str, Callable[[], Baseline]] = {}


def register(name: str) -> Callable:
    def deco(factory: Callable[[], Baseline]) -> Callable[[], Baseline]:
        if name in _REGISTRY:
            raise ValueError(f"baseline {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get(name: str, **options) -> Baseline:
    """A fresh baseline by name, with its options (``seed``, ``mode``, ...); helpful errors for unknown ones."""
    import inspect

    from blueprint.errors import BadInputError

    _load_all()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BadInputError(f"unknown baseline {name!r}.{hint} Available: {sorted(_REGISTRY)}", field="baseline")
    factory = _REGISTRY[name]
    accepted = set(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise BadInputError(f"baseline {name!r} takes no option {unknown[0]!r}; its options: {sorted(accepted)}",
                            field=unknown[0])
    return factory(**options)


def _load_all() -> None:
    from blueprint.baselines import (  # noqa: F401  (each registers itself)
        cluster_majority,
        gbdt,
        majority,
        persona_prior,
        random,
        retrieval,
    )


def run_baseline(name: str, dataset_dir, config: str, split: str, out, **options) -> int:
    """Fit a baseline on ``train`` and write its predictions for ``split`` to ``out`` (JSONL). Returns the row count.

    A baseline reads the train columns it names in ``train_columns`` (all when None).
    """
    from blueprint._io import write_jsonl
    from blueprint.data import read_split

    model = get(name, **options)
    columns = getattr(model, "train_columns", ["id", "action", "target_text", "cluster_id"])
    model.fit(read_split(dataset_dir, config, "train", columns=columns))
    rows = model.predict(read_split(dataset_dir, config, split))
    from blueprint.actions import TEXT_ACTIONS

    bad = [r["id"] for r in rows if r["action"] in TEXT_ACTIONS and not (r["text"] or "").strip()]
    if bad:  # pragma: no cover - a baseline's own bug, not the user's input
        raise RuntimeError(f"baseline {name!r} predicted a text action without text for {len(bad)} rows")
    return write_jsonl(out, rows)
