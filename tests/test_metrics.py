"""Metrics against reference implementations and the paper's formulas, and their properties."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_cm

from blueprint.actions import ACTIONS
from blueprint.metrics import text as tm
from blueprint.metrics.action import confusion_matrix, macro_f1, per_action_prf
from blueprint.metrics.distribution import action_js, diagonality, distinguishability
from blueprint.metrics.registry import get_metric, metric_names
from blueprint.metrics.suite import rare_actions_from, score_actions, score_distribution, score_texts


def random_actions(n, seed, skew=True):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(13) * (0.3 if skew else 5))
    return [ACTIONS[i] for i in rng.choice(13, n, p=p)]


@pytest.mark.parametrize("seed", range(5))
def test_action_metrics_equal_scikit_learn(seed):
    y_true, y_pred = random_actions(500, seed), random_actions(500, seed + 100)
    assert score_actions(y_true, y_pred)["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    want = f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert macro_f1(y_true, y_pred) == pytest.approx(want, abs=1e-12)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(ACTIONS), zero_division=0)
    got = per_action_prf(y_true, y_pred)
    for i, a in enumerate(ACTIONS):
        assert got[a]["precision"] == pytest.approx(p[i]) and got[a]["recall"] == pytest.approx(r[i])
        assert got[a]["f1"] == pytest.approx(f[i]) and got[a]["support"] == s[i]
    assert (confusion_matrix(y_true, y_pred) == sk_cm(y_true, y_pred, labels=list(ACTIONS))).all()


def test_macro_f1_is_not_accuracy():
    y_true = ["like"] * 8 + ["block", "post"]
    y_pred = ["like"] * 10
    assert score_actions(y_true, y_pred)["accuracy"] == 0.8
    assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert macro_f1(y_true, y_pred) < 0.4  # the paper's "F1" would say 0.8


def test_rare_macro_f1():
    y_true = ["like", "like", "block", "unlike", "post"]
    y_pred = ["like", "block", "block", "like", "post"]
    out = score_actions(y_true, y_pred, rare=("block", "unlike", "unblock"))
    want = f1_score(y_true, y_pred, labels=["block", "unlike"], average="macro", zero_division=0)
    assert out["rare_macro_f1"] == pytest.approx(want)
    assert np.isnan(score_actions(["like"], ["like"])["rare_macro_f1"])
    train = ["like"] * 90 + ["post"] * 8 + ["block"] * 2
    assert rare_actions_from(train) == tuple(a for a in ACTIONS if a not in ("like", "post"))


def test_cluster_level_is_the_mean_of_the_table():
    y_true, y_pred = random_actions(300, 1), random_actions(300, 2)
    clusters = list(np.random.default_rng(3).integers(0, 4, 300))
    out = score_actions(y_true, y_pred, clusters)
    assert out["cluster_accuracy"] == pytest.approx(np.mean([v["accuracy"] for v in out["per_cluster"].values()]))
    for c, row in out["per_cluster"].items():
        idx = [i for i, k in enumerate(clusters) if k == c]
        assert row["macro_f1"] == pytest.approx(f1_score([y_true[i] for i in idx], [y_pred[i] for i in idx],
                                                         average="macro", zero_division=0))


def test_order_and_cluster_labels_do_not_matter():
    y_true, y_pred = random_actions(200, 4), random_actions(200, 5)
    clusters = np.random.default_rng(6).integers(0, 3, 200)
    perm = np.random.default_rng(7).permutation(200)
    a = score_actions(y_true, y_pred, clusters)
    b = score_actions([y_true[i] for i in perm], [y_pred[i] for i in perm], (clusters[perm] + 5) * 3)
    for k in ("accuracy", "macro_f1", "cluster_accuracy", "cluster_macro_f1"):
        assert a[k] == pytest.approx(b[k])
    d1 = score_distribution(y_true, y_pred, clusters)
    d2 = score_distribution([y_true[i] for i in perm], [y_pred[i] for i in perm], (clusters[perm] + 5) * 3)
    assert d1["action_js"] == pytest.approx(d2["action_js"]) and d1["diagonality"] == pytest.approx(d2["diagonality"])


@pytest.mark.parametrize("fn", [lambda t, p: score_actions(t, p),
                                lambda t, p: score_distribution(t, p)])
def test_bad_inputs_name_the_argument(fn):
    with pytest.raises(ValueError, match="references is empty"):
        fn([], [])
    with pytest.raises(ValueError, match="predictions"):
        fn(["like", "post"], ["like"])
    with pytest.raises(ValueError, match=r"predictions\[1\] = 'dance'"):
        fn(["like", "post"], ["like", "dance"])


# --- the paper's formulas, written out plainly --------------------------------------------------------------


def paper_js(a, b):
    """Pairwise cosine distances within each set, histograms over linspace(0, 2, 50), JS with log2."""
    def dists(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1 - x @ x.T
        return d[np.triu_indices(len(x), 1)]
    bins = np.linspace(0, 2, 50)
    p, _ = np.histogram(dists(a), bins=bins, density=True)
    q, _ = np.histogram(dists(b), bins=bins, density=True)
    keep = (p > 0) | (q > 0)
    p, q = p[keep] / p[keep].sum(), q[keep] / q[keep].sum()
    m = (p + q) / 2
    kl = lambda x: np.sum(x[x > 0] * np.log2(x[x > 0] / m[x > 0]))  # noqa: E731
    return 0.5 * kl(p) + 0.5 * kl(q)


def test_cosine_and_js_follow_the_paper():
    rng = np.random.default_rng(0)
    real, gen = rng.normal(size=(60, 16)), rng.normal(loc=0.3, size=(45, 16))
    mr, mg = real.mean(0), gen.mean(0)
    assert tm.avg_cosine(real, gen) == pytest.approx(mr @ mg / np.linalg.norm(mr) / np.linalg.norm(mg))
    rn = real / np.linalg.norm(real, axis=1, keepdims=True)
    gn = gen / np.linalg.norm(gen, axis=1, keepdims=True)
    best = (gn @ rn.T).max(1)
    assert tm.max_cosine(real, gen) == pytest.approx((best.max(), best.mean()))
    assert tm.embedding_js(real, gen) == pytest.approx(paper_js(real, gen), abs=1e-12)
    from scipy.spatial.distance import jensenshannon

    p, q = rng.random(13), rng.random(13)
    assert tm.js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2)


def test_chunked_pairwise_histogram():
    x = np.random.default_rng(1).normal(size=(301, 8))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    want = np.histogram(np.clip(1 - (xn @ xn.T)[np.triu_indices(301, 1)], 0, 2), bins=tm.BINS)[0]
    assert (tm.distance_histogram(x, chunk=64) == want).all()


def test_tfidf_jaccard_follows_the_paper():
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(400)]
    real = [" ".join(rng.choice(words[:300], 12)) for _ in range(60)]
    gen = [" ".join(rng.choice(words[100:], 12)) for _ in range(60)]
    clusters = rng.integers(0, 3, 60)
    docs = [" ".join(t for t, c in zip(real, clusters) if c == k) for k in range(3)] + \
           [" ".join(t for t, c in zip(gen, clusters) if c == k) for k in range(3)]
    vec = TfidfVectorizer(min_df=2, max_df=0.95)
    m = vec.fit_transform(docs).toarray()
    names = vec.get_feature_names_out()

    def top(row):
        order = np.lexsort((names, -row))
        return {names[i] for i in order[:100] if row[i] > 0}

    want = [len(top(m[k]) & top(m[3 + k])) / len(top(m[k]) | top(m[3 + k])) for k in range(3)]
    counts = tm.TermCounts(real + gen)
    groups = [np.flatnonzero(clusters == k) for k in range(3)]
    _, per = tm.tfidf_jaccard(counts, groups, [g + 60 for g in groups])
    assert per == pytest.approx(want)


def test_identical_sets_are_perfect(tiny_model):
    from blueprint.metrics.suite import TextEmbedder

    texts = [f"the carbon tax vote {i} in the housing election debate" for i in range(40)]
    clusters = [i % 2 for i in range(40)]
    out = score_texts(texts, texts, clusters, embedder=TextEmbedder(str(tiny_model), cache_dir=None))
    for lvl in ("", "cluster_"):
        assert out[f"{lvl}avg_cosine"] == pytest.approx(1.0)
        assert out[f"{lvl}max_cosine"] == pytest.approx(1.0) and out[f"{lvl}mean_max_cosine"] == pytest.approx(1.0)
        assert out[f"{lvl}embedding_js"] == pytest.approx(0.0, abs=1e-12)
        assert out[f"{lvl}tfidf_jaccard"] == 1.0 and out[f"{lvl}rougeL"] == 1.0
    emb = TextEmbedder(str(tiny_model), cache_dir=None)(texts * 3)
    assert abs(distinguishability(emb, emb, seed=0) - 0.5) <= 0.1
    acts = random_actions(100, 9)
    d = score_distribution(acts, acts, [i % 4 for i in range(100)])
    assert d["action_js"] == 0.0 and d["diagonality_action_f1"] > d["diagonality_chance"]


def test_distinguishability_separates_different_sets():
    rng = np.random.default_rng(3)
    assert distinguishability(rng.normal(size=(200, 8)), rng.normal(loc=2, size=(200, 8))) > 0.95
    assert np.isnan(distinguishability(rng.normal(size=(3, 8)), rng.normal(size=(3, 8))))


def test_every_cluster_has_its_distinguishability_even_one_without_texts():
    """Clusters 0 and 1 have text rows, cluster 2 has none (a like and a follow): its row still states the
    number, as not measurable (nan), and the cluster level is the mean over the clusters that have one."""
    rng = np.random.default_rng(5)
    refs = ["post"] * 20 + ["reply"] * 20 + ["like", "follow"]
    clusters = [0] * 20 + [1] * 20 + [2, 2]
    rows = np.arange(40)  # the rows with a text: clusters 0 and 1
    real, generated = rng.normal(size=(40, 8)), rng.normal(loc=3, size=(40, 8))
    d = score_distribution(refs, refs, clusters, reference_embeddings=real, prediction_embeddings=generated,
                           embedding_rows=rows, folds=5, bootstrap=20)
    by_hand = [distinguishability(real[:20], generated[:20]), distinguishability(real[20:], generated[20:])]
    assert [d["per_cluster"][k]["distinguishability"] for k in (0, 1)] == by_hand
    assert np.isnan(d["per_cluster"][2]["distinguishability"])
    assert d["cluster_distinguishability"] == pytest.approx(np.mean(by_hand))
    low, high = d["ci"]["cluster_distinguishability"]
    assert low <= d["cluster_distinguishability"] <= high


def test_diagonality():
    assert diagonality(np.eye(3)) == 1.0
    assert diagonality(np.ones((4, 4))) == 0.25
    with pytest.raises(ValueError, match="square"):
        diagonality(np.ones((2, 3)))
    assert action_js(np.array([0, 1]), np.array([0, 1])) == 0.0


def test_rouge_equals_rouge_score_in_parallel():
    from rouge_score import rouge_scorer

    rng = np.random.default_rng(4)
    words = "carbon tax housing vote election poll liberal conservative rent debate the a of".split()
    preds = [" ".join(rng.choice(words, rng.integers(1, 15))) for _ in range(5000)]
    refs = [" ".join(rng.choice(words, rng.integers(1, 15))) for _ in range(5000)]
    got = tm.rouge(preds, refs, workers=2, chunk=1000)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    want = np.array([[s[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")]
                     for s in (scorer.score(r, p) for p, r in zip(preds, refs))])
    assert (got == want).all()


def test_bertscore_equals_bert_score(tiny_model, tmp_path):
    import bert_score

    from blueprint.metrics.bertscore import BertScorer

    rng = np.random.default_rng(5)
    words = "the a of carbon tax vote housing election debate poll rent workers union canada".split()
    cands = [" ".join(rng.choice(words, rng.integers(1, 12))) for _ in range(30)]
    refs = [" ".join(rng.choice(words, rng.integers(1, 12))) for _ in range(30)]
    p, r, f = bert_score.score(cands, refs, model_type=str(tiny_model), num_layers=2, batch_size=8, device="cpu")
    scorer = BertScorer(str(tiny_model), cache_dir=tmp_path / "bs", batch_size=7)
    gp, gr, gf = scorer.score(cands, refs)
    np.testing.assert_allclose(gf, f.numpy(), atol=1e-6)
    np.testing.assert_allclose(gp, p.numpy(), atol=1e-6)
    np.testing.assert_allclose(gr, r.numpy(), atol=1e-6)
    again = BertScorer(str(tiny_model), cache_dir=tmp_path / "bs")  # references now come from the disk cache
    np.testing.assert_allclose(again.score(cands, refs)[2], f.numpy(), atol=1e-6)
    assert list((tmp_path / "bs").rglob("shard-*.npz"))
    # an empty side scores 0, as bert-score sets it
    assert list(again.score(["", "the vote"], ["the vote", ""])[2]) == [0.0, 0.0]


def test_registry():
    assert get_metric("macro_f1").higher_is_better and not get_metric("embedding_js").higher_is_better
    assert get_metric("cluster_action_js").family == "distribution"
    with pytest.raises(KeyError, match="Did you mean: macro_f1"):
        get_metric("macro_fl")
    assert {"accuracy", "bertscore_f1", "distinguishability"} <= set(metric_names())


def test_bootstrap_intervals_cover_the_estimate():
    y_true, y_pred = random_actions(400, 11), random_actions(400, 12)
    out = score_actions(y_true, y_pred, np.arange(400) % 3, bootstrap=100, seed=1)
    for k in ("accuracy", "macro_f1", "cluster_accuracy"):
        lo, hi = out["ci"][k]
        assert lo <= out[k] <= hi and hi - lo < 0.3
    again = score_actions(y_true, y_pred, np.arange(400) % 3, bootstrap=100, seed=1)
    assert again["ci"] == out["ci"]  # a seed fixes the intervals


def test_intervals_contain_their_estimate_even_for_statistics_that_resampling_biases():
    from blueprint.metrics.suite import NO_INTERVAL, interval

    # per-cluster action JS on small clusters: a resample's histograms are noisier, so its JS is biased upward
    # and most plain percentile intervals sit above the estimate
    y_true, y_pred = random_actions(120, 21), random_actions(120, 22)
    clusters = np.arange(120) % 8
    out = score_distribution(y_true, y_pred, clusters, bootstrap=200, seed=3)
    for name in ("action_js", "cluster_action_js", "diagonality", "action_js_diagonality"):
        lo, hi = out["ci"][name]
        assert lo <= out[name] <= hi, (name, out[name], lo, hi)
    # a maximum gets no interval, and says why
    assert "maximum" in NO_INTERVAL["max_cosine"]
    # the interval keeps the resamples' spread on each side of their median, moved onto the estimate
    draws = np.arange(101) / 100.0 + 0.2  # median 0.7, 2.5% and 97.5% percentiles 0.225 and 1.175
    lo, hi = interval(draws, 0.5, 0.95)
    assert lo == pytest.approx(0.5 - (0.7 - 0.225)) and hi == pytest.approx(min(1.0, 0.5 + (1.175 - 0.7)))
    assert isinstance(interval([np.nan], 0.5, 0.95), str)
