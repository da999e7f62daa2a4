"""Shared fixtures: the real Bluesky records (in tests/data), hermetic caches, and offline mode."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

REPO = Path(__file__).resolve().parents[1]

# datasets and transformers read their cache locations when first imported, so the
# hermetic settings must be in place before any test module imports them.
_CACHE = Path(tempfile.mkdtemp(prefix="blueprint-tests-hf-"))
os.environ.update({
    "HF_HOME": str(_CACHE),
    "HF_DATASETS_CACHE": str(_CACHE / "datasets"),
    "HF_MODULES_CACHE": str(_CACHE / "modules"),
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    # the README test's nested run of the suite shares the outer run's embedding cache (content-addressed)
    "BLUEPRINT_CACHE": os.environ.get("BLUEPRINT_TEST_CACHE") or str(_CACHE / "blueprint"),
})


# hypothesis keeps no example database, and its other files (a cache of the source's constants) go to the
# session's temporary folder: by default both would be written to .hypothesis/ in the checkout
settings.register_profile("blueprint", database=None)
settings.load_profile("blueprint")
set_hypothesis_home_dir(_CACHE / "hypothesis")


def pytest_collection_modifyitems(config, items):
    """The quick tier (``-m quick``) is every test not marked ``full`` or ``slow``."""
    for item in items:
        if item.get_closest_marker("full") is None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.quick)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


REAL_DATA = REPO / "tests" / "data" / "bluesky-real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Real Jetstream, CAR and getPostThread records kept in the repository (provenance: its README.md).

    The files are checked against SHA256SUMS first, so a damaged checkout fails here, by name.
    """
    import hashlib

    for line in (REAL_DATA / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((REAL_DATA / name).read_bytes()).hexdigest() == digest, f"{name} is damaged"
    return REAL_DATA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer random BERT with a small word-piece vocabulary, saved as a transformers folder."""
    from blueprint.models.tiny import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


CORPUS = dict(users=120, seed=3, days=2.0, pii_rate=0.4, corrupt_rate=0.02)
"""The tests' synthetic corpus: 8 personas, every kind of planted PII and of malformed line (about 3,700 lines)."""


@pytest.fixture(scope="session")
def make_corpus(tmp_path_factory):
    """``make_corpus(**overrides)``: the tests' corpus with some settings changed, made once per session for each
    distinct config and shared. Read-only: copy it before changing anything in it."""
    from dataclasses import astuple

    from blueprint.synth import SynthConfig, synthesize

    made: dict[tuple, Path] = {}

    def make(**overrides) -> Path:
        cfg = SynthConfig(**{**CORPUS, **overrides})
        if astuple(cfg) not in made:
            made[astuple(cfg)] = synthesize(tmp_path_factory.mktemp("corpus") / "raw", cfg).out_dir
        return made[astuple(cfg)]

    return make


@pytest.fixture(scope="session")
def corpus(make_corpus) -> Path:
    """The tests' synthetic corpus (:data:`CORPUS`)."""
    return make_corpus()


@pytest.fixture(scope="session")
def small_build(tmp_path_factory, corpus, tiny_model):
    """``small_build(secret=..., **settings)``: the corpus built with the tests' base settings (partitions 2 and 5,
    at least 5 users a persona, the tiny BERT, one worker, a fixed secret) and some changed (``hold_out_labels=True``
    puts the labels beside the dataset), once per session for each distinct settings. Returns the dataset
    directory; its work directory (``ds-work``), secret (``s.key``) and any labels file lie beside it."""
    from blueprint.simpact.config import BuildConfig, ClusterConfig, EmbedConfig, IngestConfig
    from blueprint.simpact.pipeline import build

    made: dict[str, Path] = {}

    def make(secret: str = "k" * 48, **settings) -> Path:
        base = dict(ingest=IngestConfig(workers=1), embed=EmbedConfig(model=str(tiny_model)),
                    cluster=ClusterConfig(partitions=(2, 5), size_min=5))
        key = repr((secret, sorted(settings.items())))
        if key not in made:
            root = tmp_path_factory.mktemp("build")
            if settings.pop("hold_out_labels", False):
                settings["hold_out_labels"] = str(root / "labels.jsonl")
            (root / "s.key").write_text(secret)
            build([corpus], root / "ds", BuildConfig(**{**base, **settings}), secret_file=root / "s.key",
                  progress=False)
            made[key] = root / "ds"
        return made[key]

    return make


@pytest.fixture(scope="session")
def small_dataset(small_build) -> Path:
    """The corpus built with the tests' base settings: a small exported BluePrint dataset (partitions 2 and 5)."""
    return small_build()


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Path:
    """A fresh clone of the repository (:func:`helpers.tracked_copy`: the tracked files, copied and committed) in
    which the README's own demo command has just run: ``demo-out/`` there is a fresh demo output, made once per
    test session. Nothing in the user's checkout is read but its tracked files, and nothing there is written.

    The README test runs every block in this folder; the notebook and demo tests read its ``demo-out``.
    ``BLUEPRINT_TEST_DEMO_OUT`` names a finished demo output to copy instead of running the demo (the README
    test's nested run of the suite uses it, to not build the same demo twice).
    """
    import subprocess

    from helpers import tracked_copy
    from readme_blocks import block_env, demo_command, read_blocks

    root = tracked_copy(REPO, tmp_path_factory.mktemp("project"), commit=True)
    demo = [b for b in read_blocks(REPO / "README.md") if b.kind == "demo"]
    assert len(demo) == 1, "the README must mark exactly one block 'readme-test: demo'"
    command = demo_command(demo[0])
    if os.environ.get("BLUEPRINT_TEST_DEMO_OUT"):
        shutil.copytree(os.environ["BLUEPRINT_TEST_DEMO_OUT"], root / "demo-out", symlinks=True)
    else:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=root, env=block_env(),
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{command!r} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    assert (root / "demo-out" / "dataset" / "blueprint_manifest.json").is_file()
    return root
