"""Baselines: valid submissions, seeded draws, and values checked against independent computations."""

from __future__ import annotations

from collections import Counter

import numpy as np
import orjson
import pyarrow as pa
import pytest

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.baselines import available, get, run_baseline
from blueprint.cli import main
from blueprint.data import read_split
from blueprint.errors import BadInputError
from blueprint.leaderboard.score import check
from blueprint.metrics.action import macro_f1

ALL = ("majority", "cluster_majority", "random", "persona_prior", "retrieval", "gbdt")


def _read(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _options(name, tiny_model):
    return {"model": str(tiny_model)} if name in ("retrieval", "gbdt") else {}


def test_every_baseline_is_registered_and_writes_a_valid_submission(small_dataset, tiny_model, tmp_path):
    assert set(ALL) <= set(available())
    for name in ALL:
        out = tmp_path / f"{name}.jsonl"
        n = run_baseline(name, small_dataset, "5_clusters", "test", out, **_options(name, tiny_model))
        assert check(out, small_dataset, "5_clusters", "test") == (n, [])
        for row in _read(out):
            assert row["action"] in ACTIONS
            assert row["text"] is None or row["action"] in TEXT_ACTIONS


def test_options_are_checked(small_dataset, tmp_path):
    with pytest.raises(BadInputError, match="takes no option 'seed'"):
        get("majority", seed=1)
    with pytest.raises(BadInputError, match="mode"):
        get("persona_prior", mode="median")
    rc = main(["baseline", "majority", "--dataset", str(small_dataset), "--config", "5_clusters", "--out",
               str(tmp_path / "p.jsonl"), "--mode", "sample"])
    assert rc == 2


def _tiled(small_dataset, n):
    """n rows made from the test split (new ids), to measure distributions."""
    t = read_split(small_dataset, "5_clusters", "test")
    reps = -(-n // t.num_rows)
    big = pa.concat_tables([t] * reps).slice(0, n)
    return big.set_column(big.schema.get_field_index("id"), "id", pa.array([f"r{i}" for i in range(n)]))


def test_random_is_uniform_and_seeded(small_dataset):
    train = read_split(small_dataset, "5_clusters", "train")
    rows = _tiled(small_dataset, 13_000)
    a = get("random", seed=1).fit(train).predict(rows)
    counts = Counter(r["action"] for r in a)
    assert set(counts) == set(ACTIONS)
    assert all(abs(c / 13_000 - 1 / 13) < 0.015 for c in counts.values())
    assert a == get("random", seed=1).fit(train).predict(rows)
    assert a != get("random", seed=2).fit(train).predict(rows)
    train_texts = set(t for t in train["target_text"].to_pylist() if t)
    assert all(r["text"] in train_texts for r in a if r["action"] in TEXT_ACTIONS)


def test_persona_prior_matches_each_clusters_train_distribution(small_dataset):
    train = read_split(small_dataset, "5_clusters", "train")
    by_cluster = {}
    for c, a in zip(train["cluster_id"].to_pylist(), train["action"].to_pylist()):
        by_cluster.setdefault(c, Counter())[ACTIONS[a]] += 1
    rows = _tiled(small_dataset, 20_000)
    argmax = get("persona_prior").fit(train).predict(rows)
    clusters = rows["cluster_id"].to_pylist()
    for r, c in zip(argmax, clusters):
        best = max(by_cluster[c].values())
        # ties go to the earlier action
        assert r["action"] == next(a for a in ACTIONS if by_cluster[c][a] == best)
    sampled = get("persona_prior", mode="sample", seed=0).fit(train).predict(rows)
    for c, counts in by_cluster.items():
        got = Counter(r["action"] for r, cc in zip(sampled, clusters) if cc == c)
        n = sum(got.values())
        for a in ACTIONS:
            expected = counts[a] / sum(counts.values())
            assert abs(got[a] / n - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 1e-9, (c, a)


def test_retrieval_copies_the_most_similar_context_of_the_same_cluster(small_dataset, tiny_model):
    from blueprint.baselines._common import context_text
    from blueprint.embedding import Encoder

    train = read_split(small_dataset, "5_clusters", "train")
    test = read_split(small_dataset, "5_clusters", "test")
    preds = get("retrieval", model=str(tiny_model), cache_dir=None).fit(train).predict(test)
    # an independent computation: encode, normalise, brute-force cosine within the cluster
    enc = Encoder(str(tiny_model))
    tr_threads, te_threads = train["thread"].to_pylist(), test["thread"].to_pylist()
    tv = enc.encode([context_text(t) for t in tr_threads])
    tv /= np.linalg.norm(tv, axis=1, keepdims=True)
    qv = enc.encode([context_text(t) for t in te_threads])
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    tr_c = np.array(train["cluster_id"].to_pylist())
    tr_ctx = np.array([len(t) > 1 for t in tr_threads])
    tr_actions = [ACTIONS[a] for a in train["action"].to_pylist()]
    tr_texts = train["target_text"].to_pylist()
    checked = 0
    for q, (p, c, thread) in enumerate(zip(preds, test["cluster_id"].to_pylist(), te_threads)):
        if len(thread) < 2:
            continue
        cand = np.flatnonzero((tr_c == c) & tr_ctx)
        sims = tv[cand] @ qv[q]
        best = cand[np.isclose(sims, sims.max(), atol=1e-5)]
        assert p["action"] in {tr_actions[j] for j in best}
        if p["action"] in TEXT_ACTIONS:
            assert p["text"] in {tr_texts[j] for j in best}
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("engine", ["sklearn", "lightgbm"])
def test_gbdt_beats_the_priors_on_macro_f1(small_dataset, tiny_model, engine):
    pytest.importorskip("lightgbm") if engine == "lightgbm" else None
    train = read_split(small_dataset, "5_clusters", "train")
    test = read_split(small_dataset, "5_clusters", "test")
    truth = [ACTIONS[a] for a in test["action"].to_pylist()]
    model = get("gbdt", engine=engine, model=str(tiny_model)).fit(train)
    gbdt = [r["action"] for r in model.predict(test)]
    prior = [r["action"] for r in get("persona_prior").fit(train).predict(test)]
    major = [r["action"] for r in get("majority").fit(train).predict(test)]
    assert macro_f1(truth, gbdt) > macro_f1(truth, prior) > 0
    assert macro_f1(truth, gbdt) > macro_f1(truth, major)
    assert len(set(gbdt)) >= 5  # balanced class weights: more than the common actions
    assert gbdt == [r["action"] for r in get("gbdt", engine=engine, model=str(tiny_model)).fit(train).predict(test)]
