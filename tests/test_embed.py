from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from blueprint.errors import BadInputError
from blueprint.simpact.embed import (DEFAULT_MODEL_SHA256, EmbeddingCache, Encoder, check_packaged_model,
                                     embed_texts, resolve_model, user_embeddings)

TEXTS = ["The carbon tax debate is back.", "Vote!", "Housing is the issue in Toronto and Vancouver this election.",
         "", "Tariffs again", "A much longer post about the election, the polls, the ridings and the leaders' "
         "debate, which goes on and on so that it is the longest text of them all."]


@pytest.fixture(scope="module")
def default_encoder():
    return Encoder("default")


def test_default_model_is_the_checked_package(default_encoder):
    m = default_encoder.model
    assert (m.path / "model.safetensors").is_file()
    assert default_encoder.pooling == "mean" and default_encoder.normalize and default_encoder.max_length == 128
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2").path == m.path


def test_a_tampered_package_is_refused(tmp_path, default_encoder):
    fake = tmp_path / "model"
    shutil.copytree(default_encoder.model.path, fake, ignore=shutil.ignore_patterns("model.safetensors"))
    (fake / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(BadInputError, match="sha256 mismatch") as err:
        check_packaged_model(fake)
    assert err.value.field == "model"
    assert check_packaged_model(default_encoder.model.path, DEFAULT_MODEL_SHA256) == default_encoder.model.path


def test_matches_sentence_transformers(default_encoder):
    """Mean pooling + normalisation on the transformer gives what sentence-transformers gives."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(default_encoder.model.path), device="cpu")
    st.max_seq_length = 128
    want = st.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    got = default_encoder.encode(TEXTS)
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_length_sorted_batches_keep_input_order(tiny_model):
    enc = Encoder(str(tiny_model), batch_size=2)
    together = enc.encode(TEXTS)
    alone = np.stack([enc.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_pooling_choices(tiny_model, tmp_path):
    mean = Encoder(str(tiny_model), pooling="mean").encode(TEXTS[:3])
    cls = Encoder(str(tiny_model), pooling="cls").encode(TEXTS[:3])
    assert Encoder(str(tiny_model)).pooling == "mean"  # no sentence-transformers config: mean
    assert not np.allclose(mean, cls)
    np.testing.assert_allclose(np.linalg.norm(cls, axis=1), 1.0, atol=1e-5)
    st_dir = tmp_path / "st"
    shutil.copytree(tiny_model, st_dir)
    (st_dir / "1_Pooling").mkdir()
    (st_dir / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert Encoder(str(st_dir)).pooling == "cls"  # a sentence-transformers folder says how it pools
    assert Encoder(str(tiny_model)).fingerprint != Encoder(str(tiny_model), pooling="cls").fingerprint


def test_missing_models_fail_fast_with_a_hint(tmp_path):
    t = time.perf_counter()
    with pytest.raises(BadInputError, match="--model default") as err:
        resolve_model("nobody/no-such-model-xyz")
    assert time.perf_counter() - t < 10 and err.value.field == "model"
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(BadInputError, match="pooling"):
        Encoder("default", pooling="max")


def test_cache_reuses_vectors_and_keys_by_text(tiny_model, tmp_path):
    enc = Encoder(str(tiny_model))
    cache = EmbeddingCache(tmp_path / "cache", enc.fingerprint)
    texts = TEXTS + TEXTS[:2]
    first, c1 = embed_texts(texts, enc, cache)
    assert c1 == {"texts": 8, "distinct": 6, "cached": 0, "encoded": 6}
    again, c2 = embed_texts(texts + ["a new one"], enc, EmbeddingCache(tmp_path / "cache", enc.fingerprint))
    assert c2["cached"] == 6 and c2["encoded"] == 1
    np.testing.assert_allclose(again[:8], first, atol=1e-6)
    assert not any(TEXTS[0].encode() in p.read_bytes() for p in (tmp_path / "cache").rglob("*.npz"))
    other = EmbeddingCache(tmp_path / "cache", Encoder(str(tiny_model), pooling="cls").fingerprint)
    assert len(other) == 0  # another encoder setting, another key space


def test_user_embedding_is_the_mean_of_their_texts():
    v = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], dtype=np.float32)
    users, m = user_embeddings(["b", "a", "b"], v)
    assert users == ["a", "b"]
    np.testing.assert_allclose(m, [[0.0, 1.0], [1.5, 1.0]])
    with pytest.raises(ValueError, match="differ in length"):
        user_embeddings(["a"], v)


def test_a_model_missing_from_the_cache_warns_once_and_fails_clearly_without_a_network(monkeypatch, caplog):
    import logging

    import huggingface_hub.constants as hf_constants

    from blueprint.errors import BadInputError
    from blueprint.simpact.embed import resolve_model

    # online mode, with the Hub endpoint on a closed local port: the download is tried for real and refused
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "ENDPOINT", "http://127.0.0.1:9")
    with caplog.at_level(logging.WARNING, logger="blueprint"):
        for _ in range(2):
            with pytest.raises(BadInputError, match="is the network reachable"):
                resolve_model("blueprint-tests/not-a-cached-model")
    warnings = [r for r in caplog.records if "not in the local Hugging Face cache" in r.getMessage()]
    assert len(warnings) == 1
