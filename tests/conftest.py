"""Shared fixtures: the real Bluesky records (in tests/data), hermetic caches, and offline mode."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

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
    "BLUEPRINT_CACHE": str(_CACHE / "blueprint"),
})


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
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    words = ("the a of to and in is for on that with carbon tax vote election housing poll debate liberal "
             "conservative ndp bloc climate rent workers union trump tariffs canada quebec").split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *"abcdefghijklmnopqrstuvwxyz0123456789.,!?#@'",
             *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789")]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True, model_max_length=128)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, tiny_model) -> Path:
    """A small exported BluePrint dataset (partitions 2 and 5) built from a synthetic corpus with the tiny BERT."""
    from blueprint.simpact.cluster import ClusterConfig
    from blueprint.simpact.ingest import IngestConfig
    from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build
    from blueprint.synth import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("small-dataset")
    synthesize(root / "raw", SynthConfig(users=120, seed=3, days=2.0))
    secret = root / "s.key"
    secret.write_text("k" * 48)
    cfg = BuildConfig(ingest=IngestConfig(workers=1), embed=EmbedConfig(model=str(tiny_model)),
                      cluster=ClusterConfig(partitions=(2, 5), size_min=5))
    build([root / "raw"], root / "ds", cfg, secret_file=secret, progress=False)
    return root / "ds"
