"""The paper's reference code (evaluating/compute_metrics.py of ComplexData-MILA/BluePrint), re-implemented
plainly as it behaves, against blueprint.metrics: equal, or different exactly as the README documents."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from blueprint.metrics import diagonality as dg
from blueprint.metrics import text as tm
from blueprint.metrics.action import accuracy, macro_f1
from blueprint.metrics.distribution import diagonality

# --- the reference's formulas, as it computes them -------------------------------------------------------------


def ref_js(p: dict, q: dict) -> float:
    ps, qs = sum(p.values()), sum(q.values())
    keys = set(p) | set(q)
    pn = {k: p.get(k, 0) / ps for k in keys}
    qn = {k: q.get(k, 0) / qs for k in keys}
    m = {k: (pn[k] + qn[k]) / 2 for k in keys}
    kl_p = sum(pn[k] * np.log2(pn[k] / m[k]) for k in keys if pn[k] > 0)
    kl_q = sum(qn[k] * np.log2(qn[k] / m[k]) for k in keys if qn[k] > 0)
    return (kl_p + kl_q) / 2


def ref_js_of_distances(real_d: np.ndarray, gen_d: np.ndarray) -> float:
    bins = np.linspace(0, 2, 50)
    rh, _ = np.histogram(real_d, bins=bins, density=True)
    gh, _ = np.histogram(gen_d, bins=bins, density=True)
    return ref_js({i: v for i, v in enumerate(rh) if v > 0}, {i: v for i, v in enumerate(gh) if v > 0})


def ref_embedding_js(real: np.ndarray, gen: np.ndarray) -> float:
    d = 1 - cosine_similarity(np.vstack([real, gen]))
    n = len(real)
    return ref_js_of_distances(d[:n, :n].flatten(), d[n:, n:].flatten())


def ref_avg_cosine(real, gen) -> float:
    return cosine_similarity(real.mean(0).reshape(1, -1), gen.mean(0).reshape(1, -1))[0][0]


def ref_max_cosine(real, gen) -> float:
    return max(cosine_similarity(g.reshape(1, -1), real).flatten().max() for g in gen)


def ref_tfidf_jaccard(real_docs: list[str], gen_docs: list[str]) -> list[float]:
    """Per cluster: one vectorizer over every (cluster, source) document, argsort()[-100:], empty union 0."""
    vec = TfidfVectorizer(min_df=2, max_df=0.95).fit(real_docs + gen_docs)
    names = vec.get_feature_names_out()

    def top(doc):
        w = vec.transform([doc]).toarray().flatten()
        return {names[i] for i in w.argsort()[-100:][::-1]}

    out = []
    for r, g in zip(real_docs, gen_docs):
        a, b = top(r), top(g)
        out.append(len(a & b) / len(a | b) if a | b else 0)
    return out


def documented_tfidf(docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's TF-IDF weights of ``docs`` (one fit over all of them) and the term names."""
    vec = TfidfVectorizer(min_df=2, max_df=0.95)
    return vec.fit_transform(docs).toarray(), vec.get_feature_names_out()


def documented_top(weights: np.ndarray, names: np.ndarray) -> set[str]:
    """BluePrint's documented rule: the top 100 non-zero weights, ties broken alphabetically."""
    order = np.lexsort((names, -weights))
    return {names[i] for i in order[:100] if weights[i] > 0}


def documented_jaccards(real_docs: list[str], gen_docs: list[str]) -> list[float]:
    w, names = documented_tfidf(real_docs + gen_docs)
    k = len(real_docs)
    out = []
    for c in range(k):
        a, b = documented_top(w[c], names), documented_top(w[k + c], names)
        out.append(len(a & b) / len(a | b))
    return out


def ref_f1(real: list[str], gen: list[str]) -> float:
    tp = sum(r == g for r, g in zip(real, gen))
    fp = fn = sum(r != g for r, g in zip(real, gen))
    p, r = tp / (tp + fp), tp / (tp + fn)
    return 2 * p * r / (p + r)


def ref_diagonality(matrix: dict) -> float:
    total = diag = 0.0
    for c, row in matrix.items():
        for model, v in row.items():
            total += v
            if int(model.split("_")[1]) == c:
                diag += v
    return 1 - (total - diag) / total if total else 0


# --- the tests --------------------------------------------------------------------------------------------------


def _upper(x: np.ndarray) -> np.ndarray:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.clip(1 - (xn @ xn.T)[np.triu_indices(len(x), 1)], 0, 2)


@pytest.mark.parametrize("n_real,n_gen,dupes", [(40, 40, 0), (55, 23, 0), (30, 30, 10), (12, 50, 6)])
def test_embedding_js_differs_from_the_reference_only_by_self_pairs_and_clipping(n_real, n_gen, dupes):
    rng = np.random.default_rng(n_real + n_gen)
    real = rng.normal(size=(n_real, 16)).astype(np.float32)
    gen = rng.normal(loc=0.2, size=(n_gen, 16)).astype(np.float32)
    if dupes:  # duplicate texts: the same vector several times
        real[-dupes:] = real[0]
        gen[-dupes:] = gen[0]
    ours = tm.embedding_js(real, gen)
    # the documented difference, exactly: within-set pairs i < j, clipped to [0, 2]
    assert ours == pytest.approx(ref_js_of_distances(_upper(real.astype(np.float64)), _upper(gen.astype(np.float64))),
                                 abs=1e-12)
    # the reference counts the diagonal (n self-distances of float32 noise around 0) and does not clip
    ref = ref_embedding_js(real, gen)
    assert ref != pytest.approx(ours, abs=1e-9)


def test_average_and_max_cosine_equal_the_reference_on_the_same_vectors():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(30, 8)) * rng.uniform(0.2, 5, size=(30, 1))  # rows of very different norms
    gen = rng.normal(loc=0.3, size=(20, 8)) * rng.uniform(0.2, 5, size=(20, 1))
    assert tm.avg_cosine(real, gen) == pytest.approx(ref_avg_cosine(real, gen), abs=1e-12)
    assert tm.max_cosine(real, gen)[0] == pytest.approx(ref_max_cosine(real, gen), abs=1e-12)
    # the documented difference: BluePrint's encoders give unit vectors (mean pooling then normalisation), the
    # reference averages raw mean-pooled vectors, so long and short texts weigh differently
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    assert tm.avg_cosine(unit(real), unit(gen)) != pytest.approx(ref_avg_cosine(real, gen), abs=1e-6)
    assert tm.max_cosine(unit(real), unit(gen))[0] == pytest.approx(ref_max_cosine(real, gen), abs=1e-12)


def _docs(rng, vocab, n_docs, terms_per_doc, distinct_counts=True):
    docs = []
    for _ in range(n_docs):
        chosen = rng.choice(vocab, terms_per_doc, replace=False)
        counts = rng.permutation(terms_per_doc) + 1 if distinct_counts else np.ones(terms_per_doc, dtype=int)
        docs.append(" ".join(" ".join([w] * int(c)) for w, c in zip(chosen, counts)))
    return docs


def _ours(real_docs, gen_docs):
    counts = tm.TermCounts(real_docs + gen_docs)
    k = len(real_docs)
    groups = [np.array([i]) for i in range(k)]
    return tm.tfidf_jaccard(counts, groups, [g + k for g in groups])


def test_tfidf_jaccard_equals_the_reference_with_large_vocabularies():
    rng = np.random.default_rng(11)
    vocab = np.array([f"term{i}" for i in range(600)])
    real, gen = _docs(rng, vocab, 3, 250), _docs(rng, vocab, 3, 250)
    vec = TfidfVectorizer(min_df=2, max_df=0.95).fit(real + gen)
    for d in real + gen:  # no tie at the 100th term and 100 non-zero terms: nothing for the two to differ on
        w = np.sort(vec.transform([d]).toarray().ravel())[::-1]
        assert w[99] > 0 and w[99] != w[100]
    assert _ours(real, gen)[1] == pytest.approx(ref_tfidf_jaccard(real, gen), abs=1e-12)


def test_tfidf_jaccard_small_vocabularies_ties_and_empty_sets_differ_as_documented():
    rng = np.random.default_rng(12)
    vocab = np.array([f"term{i}" for i in range(60)])
    real, gen = _docs(rng, vocab, 3, 30), _docs(rng, vocab, 3, 30)
    ours = _ours(real, gen)[1]
    ref = ref_tfidf_jaccard(real, gen)
    # the reference pads a short top-100 with zero-weight terms, which are shared, and scores higher
    assert all(r > o for r, o in zip(ref, ours))
    # ours is the reference's formula on non-zero weights only, ties broken alphabetically
    assert ours == pytest.approx(documented_jaccards(real, gen), abs=1e-12)
    # ties at the 100th term: all weights equal in each document; ours takes the alphabetical first 100
    tied_vocab = np.array([f"w{i:03d}" for i in range(300)])
    real_t = [" ".join(tied_vocab[:200]), " ".join(tied_vocab[100:300])]
    gen_t = [" ".join(tied_vocab[50:250]), " ".join(tied_vocab[:150]) + " " + " ".join(tied_vocab[250:])]
    assert _ours(real_t, gen_t)[1] == pytest.approx(documented_jaccards(real_t, gen_t), abs=1e-12)
    # a cluster whose documents keep no term after the df limits: BluePrint compares two empty sets and says 1;
    # the reference pads both with the same zero-weight terms and says 1 as well (its "empty union -> 0" is
    # reached only with an empty vocabulary, where TfidfVectorizer raises instead)
    real_e, gen_e = ["zz1", "xx yy"], ["zz2", "xx yy"]
    assert _ours(real_e, gen_e)[1][0] == 1.0 == ref_tfidf_jaccard(real_e, gen_e)[0]
    assert tm.jaccard(set(), set()) == 1.0


def test_the_reference_f1_is_accuracy_and_ours_is_macro_f1():
    rng = np.random.default_rng(3)
    acts = ["like", "reply", "post", "repost", "follow"]
    real = list(rng.choice(acts, 300, p=[0.5, 0.2, 0.15, 0.1, 0.05]))
    gen = list(rng.choice(acts, 300))
    assert ref_f1(real, gen) == pytest.approx(accuracy(real, gen), abs=1e-12)
    assert macro_f1(real, gen) != pytest.approx(ref_f1(real, gen), abs=1e-3)


def test_diagonality_formula_equals_the_reference():
    rng = np.random.default_rng(5)
    m = rng.random((6, 6))
    as_dict = {c: {f"model_{j}": m[c, j] for j in range(6)} for c in range(6)}
    assert diagonality(m) == pytest.approx(ref_diagonality(as_dict), abs=1e-12)


# --- the paper's diagonality from one submission ---------------------------------------------------------------


def _personas(k=4, per=30, seed=0, own=40, shared=20, length=12):
    """k personas, each with its own vocabulary, embedding centre and action mix."""
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(k), per)
    words = [[f"c{c}w{i}" for i in range(own)] + [f"shared{i}" for i in range(shared)] for c in range(k)]
    texts = [" ".join(rng.choice(words[c], length)) for c in clusters]
    centres = rng.normal(size=(k, 16)) * 3
    emb = centres[clusters] + rng.normal(size=(len(clusters), 16))
    mixes = rng.dirichlet(np.ones(13) * 0.3, size=k)
    actions = np.array([rng.choice(13, p=mixes[c]) for c in clusters])
    return clusters, texts, emb.astype(np.float32), actions


def _outputs(clusters, real_texts, r_emb, real_actions, gen_texts, g_emb, gen_actions):
    n = len(clusters)
    return dg.PersonaOutputs(real_actions, gen_actions, clusters, np.arange(n), r_emb, g_emb,
                             tm.TermCounts(list(real_texts) + list(gen_texts)))


def test_a_persona_blind_model_scores_chance_and_a_copying_model_far_above():
    clusters, texts, emb, actions = _personas()
    k = 4
    n = len(clusters)
    blind = _outputs(clusters, texts, emb, actions, [texts[0]] * n, np.repeat(emb[:1], n, 0),
                     np.full(n, actions[0]))
    mats = dg.matrices(blind)
    scores = dg.summarize(mats)
    for name in dg.MATRICES:
        assert scores[f"diagonality_{name}"] == pytest.approx(1 / k, abs=1e-12), name
    assert scores["diagonality"] == pytest.approx(1 / k, abs=1e-12)
    copy = dg.summarize(dg.matrices(_outputs(clusters, texts, emb, actions, texts, emb, actions)))
    for name in dg.MATRICES:
        # 1/(1 + JS) lies in [0.5, 1], so its matrix can reach at most 1 / (1 + (k - 1) / 2) = 0.4 here
        assert copy[f"diagonality_{name}"] > 1.15 / k, name
    assert copy["diagonality_tfidf_jaccard"] == 1.0  # each persona's own words, and no other's
    assert copy["diagonality"] > 2 / k


def test_diagonality_matrix_entries_follow_their_definitions():
    clusters, texts, emb, actions = _personas(k=3, per=20, seed=4)
    rng = np.random.default_rng(9)
    gen_emb = emb[rng.permutation(len(emb))]
    gen_actions = rng.integers(0, 13, len(emb))
    gen_texts = [texts[i] for i in rng.permutation(len(texts))]
    mats = dg.matrices(_outputs(clusters, texts, emb, actions, gen_texts, gen_emb, gen_actions))
    for c in range(3):
        for m in range(3):
            rc, gm = clusters == c, clusters == m
            assert mats["avg_cosine"][c, m] == pytest.approx(max(0, ref_avg_cosine(emb[rc], gen_emb[gm])))
            assert mats["max_cosine"][c, m] == pytest.approx(max(0, ref_max_cosine(emb[rc], gen_emb[gm])))
            js = ref_js_of_distances(_upper(emb[rc].astype(np.float64)), _upper(gen_emb[gm].astype(np.float64)))
            assert mats["inverse_embedding_js"][c, m] == pytest.approx(1 / (1 + js))
            p = np.bincount(actions[rc], minlength=13) / rc.sum()
            q = np.bincount(gen_actions[gm], minlength=13) / gm.sum()
            assert mats["action_f1"][c, m] == pytest.approx(np.minimum(p, q).sum())
    # TF-IDF over all six (cluster, source) documents, the reference's way (here no zero-weight padding matters)
    real_docs = [" ".join(t for t, cc in zip(texts, clusters) if cc == c) for c in range(3)]
    gen_docs = [" ".join(t for t, cc in zip(gen_texts, clusters) if cc == c) for c in range(3)]
    w, names = documented_tfidf(real_docs + gen_docs)
    for c in range(3):
        for m in range(3):
            a, b = documented_top(w[c], names), documented_top(w[3 + m], names)
            assert mats["tfidf_jaccard"][c, m] == pytest.approx(len(a & b) / len(a | b))


def test_pooled_tfidf_jaccard_uses_the_per_cluster_weights():
    clusters, texts, _, _ = _personas(k=3, per=40, seed=6, own=150, shared=150, length=20)
    rng = np.random.default_rng(1)
    # generated texts: the same personas' words, assigned to the wrong clusters, half of them from another seed
    gen = [texts[i] for i in rng.permutation(len(texts))]
    gen[::2] = _personas(k=3, per=40, seed=7, own=150, shared=150, length=20)[1][::2]
    counts = tm.TermCounts(texts + gen)
    groups = [np.flatnonzero(clusters == c) for c in range(3)]
    pooled, per = tm.tfidf_jaccard(counts, groups, [g + len(texts) for g in groups])
    real_docs = [" ".join(texts[i] for i in g) for g in groups]
    gen_docs = [" ".join(gen[i] for i in g) for g in groups]
    w, names = documented_tfidf(real_docs + gen_docs)
    a, b = documented_top(w[:3].sum(0), names), documented_top(w[3:].sum(0), names)
    assert pooled == pytest.approx(len(a & b) / len(a | b))
    # one cluster: the population level and the cluster level are the same number
    one, one_per = tm.tfidf_jaccard(counts, [np.arange(len(texts))], [np.arange(len(texts)) + len(texts)])
    assert one == one_per[0]
