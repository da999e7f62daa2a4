"""Baselines for next-action prediction: one module per baseline, registered by name.

A baseline learns from the ``train`` split of a config and writes one prediction per
row of the evaluated split: ``{"id", "action", "text"}``, the format
``blueprint validate`` and ``blueprint score`` read.
"""

from __future__ import annotations

import difflib
from typing import Callable, Protocol

import pyarrow as pa


class Baseline(Protocol):
    name: str

    def fit(self, train: pa.Table) -> "Baseline": ...

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


def get(name: str) -> Baseline:
    """A fresh baseline by name; a helpful error for unknown names."""
    from blueprint.errors import BadInputError

    _load_all()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BadInputError(f"unknown baseline {name!r}.{hint} Available: {sorted(_REGISTRY)}", field="baseline")
    return _REGISTRY[name]()


def _load_all() -> None:
    from blueprint.baselines import cluster_majority, majority  # noqa: F401  (each registers itself)


def run_baseline(name: str, dataset_dir, config: str, split: str, out) -> int:
    """Fit a baseline on ``train`` and write its predictions for ``split`` to ``out`` (JSONL). Returns the row count."""
    from blueprint._io import write_jsonl
    from blueprint.data import read_split

    model = get(name)
    model.fit(read_split(dataset_dir, config, "train", columns=["id", "action", "target_text", "cluster_id"]))
    rows = model.predict(read_split(dataset_dir, config, split))
    return write_jsonl(out, rows)
