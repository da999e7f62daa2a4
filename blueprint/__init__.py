"""BluePrint: privacy-preserving persona datasets from public Bluesky data, and a
next-action benchmark for LLM social-media agents.

Stable names: :data:`ACTIONS`, :func:`blueprint.actions.action_of` and
:func:`load_dataset`. Heavy libraries (torch, datasets) load only when used.
ARCHITECTURE.md, at the repository's root, maps the package: the layers, one line per
module, and where a new engine, metric, baseline or reader goes.
"""

from __future__ import annotations

from typing import Any

from blueprint.actions import ACTIONS, TEXT_ACTIONS, action_of

try:  # the version lives in setup.cfg alone
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("blueprint-bench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["ACTIONS", "TEXT_ACTIONS", "action_of", "load_dataset", "__version__"]


def load_dataset(config: str, split: str | None = None, *, data_dir: str, **kwargs: Any):
    """Load one config (and optionally one split) of an exported BluePrint dataset.

    A thin front to :func:`datasets.load_dataset` on the exported directory; see
    :func:`blueprint.data.load_dataset`.
    """
    from blueprint.data import load_dataset as _load

    return _load(config, split=split, data_dir=data_dir, **kwargs)
