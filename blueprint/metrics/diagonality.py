"""Persona specificity as the paper measures it: the diagonality of cluster x model matrices.

Entry (c, m) of each matrix compares the real data of cluster c with what the model
produced as persona m. From one submission, "persona m" is the predictions made for
cluster m's rows: a model that imitates each persona gets its largest values on the
diagonal, a persona-blind model (the same output whatever the cluster) gets identical
columns. Diagonality is the diagonal's share of the matrix total; chance (a
persona-blind model) is exactly 1/k.

The five matrices, as in the paper's reference code:

- ``tfidf_jaccard``: Jaccard of the top-100 TF-IDF terms of real cluster c and generated
  m, with IDF over all (cluster, source) documents;
- ``avg_cosine`` and ``max_cosine``: as the text metrics, real texts of c against the
  generated texts of m;
- ``inverse_embedding_js``: 1 / (1 + embedding JS), so that higher is better and every
  entry is positive;
- ``action_f1``: the two action sets are not aligned row by row (cluster c's rows
  against cluster m's), so F1 is that of the two action multisets rescaled to the same
  size: precision = recall = F1 = sum over actions of min(p_c(a), q_m(a)). On aligned
  rows this is the best F1 any pairing could give, the upper bound of the reference
  code's "F1" (which is accuracy).

Cosine entries are clipped at 0 so that every matrix is non-negative. ``diagonality``
is the mean of the five; ``action_js_diagonality`` keeps this project's earlier
construct (1 - action JS between real c and the predictions for m, from
:func:`blueprint.metrics.distribution.action_similarity_matrix`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blueprint.metrics import text as tm
from blueprint.metrics.distribution import diagonality
from blueprint.metrics.divergence import action_distribution, js_divergence

MATRICES = ("tfidf_jaccard", "avg_cosine", "max_cosine", "action_f1", "inverse_embedding_js")


@dataclass
class PersonaOutputs:
    """One submission, as the diagonality matrices need it.

    ``text_pos[i]`` is row i's position in ``r_emb``/``g_emb`` (the rows whose reference
    has a text), -1 elsewhere; ``counts`` holds the term counts of the reference texts
    followed by the generated texts, in ``r_emb`` order.
    """

    references: np.ndarray  # action indices, one per row
    predictions: np.ndarray
    clusters: np.ndarray
    text_pos: np.ndarray | None = None
    r_emb: np.ndarray | None = None
    g_emb: np.ndarray | None = None
    counts: tm.TermCounts | None = None

    @property
    def has_texts(self) -> bool:
        return self.text_pos is not None and self.r_emb is not None and len(self.r_emb) > 0


def action_f1_matrix(real: list[np.ndarray], pred: list[np.ndarray]) -> np.ndarray:
    """F1 of action multisets rescaled to one size: sum_a min(p_c(a), q_m(a))."""
    p = np.array([r / r.sum() if r.sum() else r for r in real])
    q = np.array([g / g.sum() if g.sum() else g for g in pred])
    return np.minimum(p[:, None, :], q[None, :, :]).sum(-1)


def matrices(data: PersonaOutputs, idx: np.ndarray | None = None) -> dict:
    """The five matrices over the rows ``idx`` (all rows by default; repeats count, as in a bootstrap resample).

    Text matrices cover the clusters with at least one text row (two for embedding JS,
    whose entries are otherwise left out by dropping that cluster); their cluster lists
    are returned with them.
    """
    idx = np.arange(len(data.references)) if idx is None else np.asarray(idx)
    c = data.clusters[idx]
    ids = np.unique(c)
    real = [action_distribution(data.references[idx][c == k]) for k in ids]
    pred = [action_distribution(data.predictions[idx][c == k]) for k in ids]
    out: dict = {"clusters": ids.tolist(), "action_f1": action_f1_matrix(real, pred)}
    text_pos, r_emb, g_emb, counts = data.text_pos, data.r_emb, data.g_emb, data.counts
    if not data.has_texts or text_pos is None or r_emb is None or g_emb is None or counts is None:
        return out
    tpos = text_pos[idx]
    keep = tpos >= 0
    pos, tc = tpos[keep], c[keep]
    tids = [k for k in ids if (tc == k).any()]
    if not tids:
        return out
    groups = [pos[tc == k] for k in tids]
    out["text_clusters"] = [int(k) for k in tids]
    r_unit, g_unit = tm._unit(r_emb), tm._unit(g_emb)
    r_mean = np.array([r_emb[g].astype(np.float64).mean(0) for g in groups])
    g_mean = np.array([g_emb[g].astype(np.float64).mean(0) for g in groups])
    rn = np.linalg.norm(r_mean, axis=1, keepdims=True)
    gn = np.linalg.norm(g_mean, axis=1, keepdims=True)
    out["avg_cosine"] = np.clip((r_mean / np.where(rn == 0, 1, rn)) @ (g_mean / np.where(gn == 0, 1, gn)).T, 0, None)
    k = len(groups)
    mx = np.zeros((k, k))
    for j, gm in enumerate(groups):
        sims = g_unit[gm] @ r_unit.T  # the generated texts of m against every real text
        for i, gc in enumerate(groups):
            mx[i, j] = sims[:, gc].max()
    out["max_cosine"] = np.clip(mx, 0, None)
    m_text = len(r_emb)
    docs = counts.documents(list(groups) + [g + m_text for g in groups])
    tops = tm.tfidf_top_terms(docs, counts.vocab, **tm.tfidf_df_limits(k))
    out["tfidf_jaccard"] = np.array([[tm.jaccard(tops[i], tops[k + j]) for j in range(k)] for i in range(k)])
    jids = [i for i, g in enumerate(groups) if len(np.unique(g)) >= 2]
    if jids:
        hr = [tm.distance_histogram(r_emb[np.unique(groups[i])]) for i in jids]
        hg = [tm.distance_histogram(g_emb[np.unique(groups[i])]) for i in jids]
        out["inverse_embedding_js"] = np.array([[1.0 / (1.0 + js_divergence(a, b)) for b in hg] for a in hr])
        out["embedding_js_clusters"] = [int(tids[i]) for i in jids]
    return out


def summarize(mats: dict) -> dict[str, float]:
    """Each matrix's diagonality, their mean as ``diagonality``, and the chance level of the action matrix."""
    out = {f"diagonality_{name}": diagonality(mats[name]) if name in mats else float("nan") for name in MATRICES}
    vals = [v for v in out.values() if v == v]
    out["diagonality"] = float(np.mean(vals)) if vals else float("nan")
    return out


def to_json(mats: dict) -> dict:
    """The matrices as plain lists, with the clusters of their rows and columns and each one's chance level."""
    out = {}
    for key, value in mats.items():
        out[key] = value.tolist() if isinstance(value, np.ndarray) else value
    for name in MATRICES:
        if name in mats:
            out.setdefault("chance", {})[name] = 1.0 / len(mats[name])
    return out

