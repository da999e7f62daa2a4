from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from blueprint.embedding import (
    DEFAULT_MODEL_SHA256,
    EmbeddingCache,
    Encoder,
    check_packaged_model,
    embed_texts,
    resolve_model,
)
from blueprint.errors import BadInputError

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
    assert not any(TEXTS[0].encode() in p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    other = EmbeddingCache(tmp_path / "cache", Encoder(str(tiny_model), pooling="cls").fingerprint)
    assert len(other) == 0  # another encoder setting, another key space


def test_a_users_vector_is_the_mean_of_their_texts_over_chunks():
    import pyarrow as pa

    from blueprint.simpact.embed import UserMeans

    means = UserMeans(["a", "b", "c"], 2)
    means.add(pa.array(["b", "a"]), np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    means.add(pa.chunked_array([["b"]]), np.array([[2.0, 2.0]], dtype=np.float32))
    # by hand: a = (0, 1); b = mean of (1, 0) and (2, 2) = (1.5, 1); c had no text and stays at zero
    np.testing.assert_allclose(means.means(), [[0.0, 1.0], [1.5, 1.0], [0.0, 0.0]])
    table = means.table()
    assert table["did"].to_pylist() == ["a", "b", "c"]
    np.testing.assert_allclose(np.array(table["vector"].to_pylist()), means.means())
    with pytest.raises(ValueError, match="not in the list"):
        means.add(pa.array(["z"]), np.zeros((1, 2), dtype=np.float32))


def test_a_model_missing_from_the_cache_warns_once_and_fails_clearly_without_a_network(monkeypatch, caplog):
    import logging

    import huggingface_hub.constants as hf_constants

    from blueprint.embedding import resolve_model
    from blueprint.errors import BadInputError

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


def test_cache_finds_keys_that_share_a_prefix_and_reads_the_older_npz_shards(tmp_path):
    rng = np.random.default_rng(0)
    # keys that agree on their first 8 bytes (the sorted prefix) and differ after
    keys = [b"\x07" * 8 + bytes(rng.integers(0, 256, 8, dtype=np.uint8)) for _ in range(50)]
    keys += [bytes(rng.integers(0, 256, 16, dtype=np.uint8)) for _ in range(50)]
    vecs = rng.normal(size=(100, 4)).astype(np.float32)
    # a shard of the earlier single-file form
    (tmp_path / "fp").mkdir()
    with open(tmp_path / "fp" / "shard-00000.npz", "wb") as fh:
        np.savez(fh, keys=np.frombuffer(b"".join(keys[60:]), np.uint8).reshape(-1, 16), vectors=vecs[60:])
    cache = EmbeddingCache(tmp_path, "fp")
    cache.put(keys[:30], vecs[:30])
    cache.put(keys[30:60], vecs[30:60])
    assert len(list((tmp_path / "fp").glob("shard-*"))) == 5  # the older shard, and two of keys and vectors
    missing = [b"\x07" * 8 + b"\xff" * 8, b"\x00" * 16]
    for c in (cache, EmbeddingCache(tmp_path, "fp")):
        query = keys[::-1] + missing
        found, got = c.get(query)
        assert found.tolist() == [True] * 100 + [False, False]
        np.testing.assert_array_equal(got[:100], vecs[::-1])
    assert len(EmbeddingCache(tmp_path, "fp")) == 100
    assert EmbeddingCache(tmp_path, "other").get(keys)[0].sum() == 0


@pytest.mark.parametrize("backend,min_cos", [("onnx", 0.99999), ("openvino", 0.99999), ("openvino-bf16", 0.99),
                                             ("onnx-int8", 0.9)])
def test_fast_backends_agree_with_torch(tiny_model, tmp_path, monkeypatch, backend, min_cos):
    monkeypatch.setenv("BLUEPRINT_CACHE", str(tmp_path))
    ref = Encoder(str(tiny_model)).encode(TEXTS)
    enc = Encoder(str(tiny_model), backend=backend)
    got = enc.encode(TEXTS)
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= min_cos, cos
    assert enc.fingerprint != Encoder(str(tiny_model)).fingerprint  # their vectors never mix in a cache
    assert list((tmp_path / "onnx").glob("*/model.onnx"))  # the export is cached for the next run
    assert enc.encode([]).shape == (0, enc.dim)


def test_an_unknown_backend_is_refused():
    with pytest.raises(BadInputError, match="openvino-bf16") as err:
        Encoder("default", backend="tensorrt")
    assert err.value.field == "backend"


@pytest.mark.parametrize("cache", [True, False])
def test_embed_stage_in_chunks_is_the_mean_of_each_users_texts(tiny_model, tmp_path, monkeypatch, cache):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from blueprint.simpact import embed as stage
    from blueprint.simpact.embed import EmbedConfig, embed_users, read_user_vectors
    from blueprint.simpact.engine import LocalEngine

    rows = [{"did": f"did:plc:{'abc'[i % 3] * 24}", "action": "quote" if i % 5 == 4 else "post", "text": TEXTS[i % 6]}
            for i in range(40)]
    (tmp_path / "threads").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "threads" / "user_texts.parquet")
    enc = Encoder(str(tiny_model))
    cfg = EmbedConfig(model=str(tiny_model), cache_dir=str(tmp_path / "cache") if cache else None)
    monkeypatch.setattr(stage, "EMBED_CHUNK", 7)
    removed = frozenset({"did:plc:" + "c" * 24})
    (tmp_path / "embed").mkdir()
    report = embed_users(tmp_path / "threads", tmp_path / "embed", cfg, LocalEngine(1), encoder=enc, removed=removed)
    dids, got = read_user_vectors(tmp_path / "embed")
    # expected, by hand: each kept user's texts (no quotes, not the removed user), encoded one by one, averaged
    kept = [r for r in rows if r["action"] != "quote" and r["did"] not in removed]
    want_dids = sorted({r["did"] for r in kept})
    assert dids == want_dids and report["users"] == 2 and report["texts"] == len(kept)
    for d, v in zip(dids, got):
        mine = np.stack([enc.encode([r["text"]])[0] for r in kept if r["did"] == d]).mean(0)
        np.testing.assert_allclose(v, mine, atol=1e-5)
    # each chunk (7 rows before filtering) encodes its distinct texts, whatever other chunks did: the
    # vectors then do not depend on the order chunks run in
    per_chunk = [{r["text"] for r in rows[i:i + 7] if r["action"] != "quote" and r["did"] not in removed}
                 for i in range(0, len(rows), 7)]
    assert report["encoded"] == sum(map(len, per_chunk)) and report["cached"] == 0
    if cache:  # a rebuild finds every vector in the cache, and gives the same users
        again = embed_users(tmp_path / "threads", tmp_path / "embed", cfg, LocalEngine(1), encoder=enc, removed=removed)
        assert again["encoded"] == 0 and again["cached"] == report["encoded"]
        np.testing.assert_array_equal(read_user_vectors(tmp_path / "embed")[1], got)
