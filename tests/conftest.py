"""Shared fixtures: the real Bluesky records, hermetic caches, and offline mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _real_data_dir() -> Path:
    env = os.environ.get("BLUEPRINT_REAL_DATA")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "data" / "bluesky-real", REPO / "shared" / "data" / "bluesky-real"]
    for c in candidates:
        if (c / "SHA256SUMS").is_file():
            return c
    raise FileNotFoundError(
        "the real Bluesky fixtures were not found; set BLUEPRINT_REAL_DATA to the bluesky-real folder "
        f"(looked in {[str(c) for c in candidates]})"
    )


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real Jetstream, CAR and getPostThread records (../shared/data/bluesky-real)."""
    return _real_data_dir()


@pytest.fixture(autouse=True)
def _hermetic(tmp_path_factory, monkeypatch):
    """Point every cache at a temporary folder and forbid the Hub, as CI has no network."""
    cache = tmp_path_factory.getbasetemp() / "hf-cache"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
