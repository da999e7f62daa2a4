"""Baselines by name: the module and class of each, made on demand with their options.

A new baseline is a module of this package with one class (``name``, ``train_columns``,
``fit`` and ``predict``), and one line in :data:`BASELINES`.
"""

from __future__ import annotations

import difflib
import inspect
from importlib import import_module
from typing import Any, Protocol

import pyarrow as pa

from blueprint.errors import BadInputError

BASELINES: dict[str, str] = {
    "cluster_majority": "blueprint.baselines.cluster_majority:ClusterMajorityBaseline",
    "gbdt": "blueprint.baselines.gbdt:GBDTBaseline",
    "majority": "blueprint.baselines.majority:MajorityBaseline",
    "persona_prior": "blueprint.baselines.persona_prior:PersonaPriorBaseline",
    "random": "blueprint.baselines.random:RandomBaseline",
    "retrieval": "blueprint.baselines.retrieval:RetrievalBaseline",
}
"""Every baseline: its name on the command line -> ``module:class``."""


class Baseline(Protocol):
    name: str
    train_columns: list[str] | None  # the train split's columns that fit reads (None: all)

    def fit(self, train: pa.Table) -> Baseline: ...

    def predict(self, rows: pa.Table) -> list[dict]: ...


def available() -> list[str]:
    """The baselines' names, sorted."""
    return sorted(BASELINES)


def baseline_class(name: str) -> type:
    """The class of baseline ``name``; a helpful error for an unknown one."""
    if name not in BASELINES:
        close = difflib.get_close_matches(name, BASELINES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BadInputError(f"unknown baseline {name!r}.{hint} Available: {available()}", field="baseline")
    module, _, cls = BASELINES[name].partition(":")
    return getattr(import_module(module), cls)


def get(name: str, **options: Any) -> Baseline:
    """A fresh baseline by name, with its options (``seed``, ``mode``, ...); helpful errors for unknown ones."""
    factory = baseline_class(name)
    accepted = set(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise BadInputError(f"baseline {name!r} takes no option {unknown[0]!r}; its options: {sorted(accepted)}",
                            field=unknown[0])
    return factory(**options)
