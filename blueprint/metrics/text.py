"""Stylistic fidelity: how close generated texts are to real ones.

Set metrics compare a set of generated texts with a set of real ones (per cluster, or
pooled), from their embeddings (L2-normalised rows):

- ``avg_cosine``: cos(mean(real), mean(generated));
- ``max_cosine``: for each generated text its best cosine to any real text, then the max;
  ``mean_max_cosine`` is the mean of those bests;
- ``embedding_js``: pairwise cosine distances within the real set and within the
  generated set; histograms over ``linspace(0, 2, 50)``, normalised; bins empty in both
  dropped; Jensen-Shannon divergence with log2. scipy's ``jensenshannon`` returns the
  square root of this number;
- ``tfidf_jaccard``: one document per (cluster, source); TF-IDF with ``min_df=2`` and
  ``max_df=0.95``; Jaccard of the top-100 terms of the real and generated documents.

Pair metrics compare each generated text with the real text of the same row:
ROUGE-1/2/L F1 through ``rouge-score`` and BERTScore F1 through ``bert-score``
(:mod:`blueprint.metrics.bertscore`).
rouge-score's tokenizer keeps only ASCII letters and digits: non-Latin text and emoji
score 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from blueprint.metrics.divergence import js_divergence

BINS = np.linspace(0.0, 2.0, 50)
TOP_TERMS = 100


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def avg_cosine(real: np.ndarray, generated: np.ndarray) -> float:
    """Cosine of the two sets' mean embeddings."""
    a, b = np.asarray(real, np.float64).mean(0), np.asarray(generated, np.float64).mean(0)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else 0.0


def best_cosines(real: np.ndarray, generated: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """For each generated text, its highest cosine to any real text (in chunks: memory stays bounded)."""
    r, g = _unit(real), _unit(generated)
    out = np.empty(len(g))
    for s in range(0, len(g), chunk):
        out[s : s + chunk] = (g[s : s + chunk] @ r.T).max(1)
    return out


def max_cosine(real: np.ndarray, generated: np.ndarray) -> tuple[float, float]:
    """(max of the per-text best cosines, mean of them)."""
    best = best_cosines(real, generated)
    return float(best.max()), float(best.mean())


def distance_histogram(x: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Counts of the pairwise cosine distances (i < j) within ``x`` over :data:`BINS`, block by block."""
    u = _unit(x)
    n = len(u)
    counts = np.zeros(len(BINS) - 1, dtype=np.int64)
    side = min(chunk, n)  # a mask only as large as the biggest block: small sets are scored many times
    upper = np.triu(np.ones((side, side), dtype=bool), k=1)
    for a in range(0, n, chunk):
        for b in range(a, n, chunk):
            block = 1.0 - u[a : a + chunk] @ u[b : b + chunk].T
            vals = block[upper[: block.shape[0], : block.shape[1]]] if a == b else block.ravel()
            counts += np.histogram(np.clip(vals, 0.0, 2.0), bins=BINS)[0]
    return counts


def embedding_js(real: np.ndarray, generated: np.ndarray) -> float:
    """JS divergence of the within-set pairwise distance histograms; nan with fewer than 2 texts a side."""
    if len(real) < 2 or len(generated) < 2:
        return float("nan")
    return js_divergence(distance_histogram(real), distance_histogram(generated))


# --- TF-IDF Jaccard -------------------------------------------------------------------------------------


class TermCounts:
    """Term counts of every text, once: documents of any grouping are sums of rows.

    TF-IDF is then computed exactly as scikit-learn's ``TfidfVectorizer`` would on the
    concatenated documents (default tokenizer and lower-casing, smooth idf, l2 norm),
    which makes bootstrap resamples cheap: no text is tokenized twice.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        self.vectorizer = CountVectorizer()
        try:
            self.counts = self.vectorizer.fit_transform([t or "" for t in texts]).tocsr().astype(np.float64)
            self.vocab = np.asarray(self.vectorizer.get_feature_names_out())
        except ValueError:  # no token at all
            self.counts = sp.csr_matrix((len(texts), 0))
            self.vocab = np.array([], dtype=object)

    def documents(self, groups: Sequence[np.ndarray]) -> sp.csr_matrix:
        """One document per group of row indices (repeats count again: bootstrap samples)."""
        rows, cols, vals = [], [], []
        for d, idx in enumerate(groups):
            w = np.bincount(np.asarray(idx, dtype=np.int64), minlength=self.counts.shape[0]).astype(np.float64)
            doc = sp.csr_matrix(w) @ self.counts
            rows.append(np.full(doc.nnz, d))
            cols.append(doc.indices)
            vals.append(doc.data)
        shape = (len(groups), self.counts.shape[1])
        if not rows:
            return sp.csr_matrix(shape)
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)


def tfidf_df_limits(n_groups: int) -> dict:
    """``min_df``/``max_df`` for documents of ``n_groups`` groups x 2 sources.

    With one group the two documents share every common term, which ``max_df=0.95``
    would remove, and ``min_df=2`` would keep only those: then every term is kept.
    """
    return {"min_df": 1, "max_df": 1.0} if n_groups == 1 else {"min_df": 2, "max_df": 0.95}


def tfidf_weights(docs: sp.csr_matrix, vocab: np.ndarray, *, min_df: float = 2,
                  max_df: float = 0.95) -> tuple[sp.csr_matrix, np.ndarray]:
    """TF-IDF rows (l2-normalised) and their term names, as ``TfidfVectorizer(min_df, max_df)`` computes them."""
    n_docs = docs.shape[0]
    df = np.asarray((docs > 0).sum(0)).ravel()
    lo = min_df if isinstance(min_df, int) or min_df >= 1 else min_df * n_docs
    hi = max_df * n_docs if isinstance(max_df, float) and max_df <= 1.0 else max_df
    keep = (df >= lo) & (df <= hi)
    tf = docs[:, keep]
    idf = np.log((1 + n_docs) / (1 + df[keep])) + 1.0
    w = tf.multiply(idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(w.multiply(w).sum(1)).ravel())
    w = sp.diags(1.0 / np.where(norms == 0, 1.0, norms)) @ w
    return w.tocsr(), vocab[keep]


def top_terms(weights: np.ndarray | sp.spmatrix, names: np.ndarray, top: int = TOP_TERMS) -> set[str]:
    """The ``top`` terms of one weight row; zero weights never count; ties broken alphabetically."""
    row = sp.csr_matrix(weights)
    vals, cols = row.data, row.indices
    cols = cols[vals > 0]
    vals = vals[vals > 0]
    order = np.lexsort((names[cols], -vals))[:top]
    return set(names[cols[order]].tolist())


def tfidf_top_terms(docs: sp.csr_matrix, vocab: np.ndarray, *, min_df: float = 2, max_df: float = 0.95,
                    top: int = TOP_TERMS) -> list[set[str]]:
    """The top TF-IDF terms of each document, as ``TfidfVectorizer(min_df, max_df)`` ranks them."""
    w, names = tfidf_weights(docs, vocab, min_df=min_df, max_df=max_df)
    return [top_terms(w.getrow(d), names, top) for d in range(docs.shape[0])]


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; 1.0 when both are empty (two sources with no term at all say the same: nothing)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def tfidf_jaccard(counts: TermCounts, real_groups: Sequence[np.ndarray],
                  generated_groups: Sequence[np.ndarray]) -> tuple[float, list[float]]:
    """Jaccard of top TF-IDF terms: per group (cluster), and pooled over the groups.

    One document per (group, source), as in the paper, and one TF-IDF fit over all of
    them. The population level uses the same weights: a source's top terms are the
    highest weights summed over its groups' documents. With one group the two levels are
    the same number.
    """
    k = len(real_groups)
    docs = counts.documents(list(real_groups) + list(generated_groups))
    w, names = tfidf_weights(docs, counts.vocab, **tfidf_df_limits(k))
    tops = [top_terms(w.getrow(d), names) for d in range(2 * k)]
    per = [jaccard(tops[c], tops[k + c]) for c in range(k)]
    real_sum = np.asarray(w[:k].sum(0)).ravel()
    gen_sum = np.asarray(w[k:].sum(0)).ravel()
    return jaccard(top_terms(real_sum, names), top_terms(gen_sum, names)), per


# --- ROUGE and BERTScore ---------------------------------------------------------------------------------

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _rouge_chunk(args: tuple[list[str], list[str], bool]) -> np.ndarray:
    from rouge_score import rouge_scorer

    preds, refs, stem = args
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=stem)
    out = np.empty((len(preds), len(ROUGE_TYPES)))
    for i, (p, r) in enumerate(zip(preds, refs)):
        s = scorer.score(r, p)  # rouge-score takes (target, prediction)
        out[i] = [s[t].fmeasure for t in ROUGE_TYPES]
    return out


def rouge(predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool = False,
          workers: int | None = None, chunk: int = 2000) -> np.ndarray:
    """Per-pair ROUGE-1, ROUGE-2 and ROUGE-L F1 from rouge-score, shape (n, 3).

    Large inputs are split across processes (default: one per CPU): this process scores
    the first share while the others start up and score the rest. The values are
    rouge-score's own, pair by pair.
    """
    n = len(predictions)
    workers = workers or os.cpu_count() or 1
    preds = [p or "" for p in predictions]
    refs = [r or "" for r in references]
    if workers == 1 or n < 2 * chunk:
        return _rouge_chunk((preds, refs, use_stemmer)) if n else np.zeros((0, 3))
    import concurrent.futures as cf
    import multiprocessing as mp

    # the helpers start a fresh interpreter each (about a second): give this process a larger share
    cut = int(n * 0.55) if workers == 2 else n // workers
    rest = [(preds[s : s + chunk], refs[s : s + chunk], use_stemmer) for s in range(cut, n, chunk)]
    with cf.ProcessPoolExecutor(max_workers=min(workers - 1, len(rest)), mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_rouge_chunk, part) for part in rest]
        mine = _rouge_chunk((preds[:cut], refs[:cut], use_stemmer))
        return np.concatenate([mine] + [f.result() for f in futures])
