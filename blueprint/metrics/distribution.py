"""Distributional fidelity: does a model act, and write, like the population it imitates?

- ``action_js``: Jensen-Shannon divergence (log2) between the predicted and the real
  distributions over the 13 actions;
- ``diagonality``: over a cluster x model matrix of similarities, 1 - off-diagonal / total.
  Here the models are the predictions made for each cluster's rows, and the similarity
  of real cluster c and model m is 1 - action_js(real actions of c, predictions for m).
  A model per persona that imitates its own persona best scores high; chance is 1/k;
- ``distinguishability``: a classifier two-sample test. A logistic regression learns to
  tell generated text embeddings from real ones; its cross-validated accuracy is the
  score. 0.5 means the model's texts cannot be told apart from real ones (the automated
  analogue of the paper's human study, where people picked the real post 56.0% of the
  time against the best fine-tuned model and 71.9% against the base model).
"""

from __future__ import annotations

import numpy as np

from blueprint.errors import BadInputError
from blueprint.metrics.bootstrap import interval
from blueprint.metrics.divergence import action_distribution, action_js, js_divergence

__all__ = ["action_distribution", "action_js", "action_similarity_matrix", "diagonality", "distinguishability"]


def diagonality(matrix: np.ndarray) -> float:
    """1 - (sum of off-diagonal entries) / (sum of all entries), for a square non-negative matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise BadInputError(f"must be square, got shape {m.shape}", field="matrix")
    total = m.sum()
    return float(np.trace(m) / total) if total > 0 else float("nan")


def action_similarity_matrix(reference_idx: np.ndarray, prediction_idx: np.ndarray,
                             clusters: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """M[c, m] = 1 - action_js(real actions of cluster c, predicted actions for cluster m's rows)."""
    ids = sorted(set(np.asarray(clusters).tolist()))
    real = {c: action_distribution(reference_idx[clusters == c]) for c in ids}
    pred = {c: action_distribution(prediction_idx[clusters == c]) for c in ids}
    m = np.array([[1.0 - js_divergence(real[c], pred[d]) for d in ids] for c in ids])
    return m, ids


def distinguishability(real: np.ndarray, generated: np.ndarray, *, folds: int = 5, seed: int = 0,
                       return_correct: bool = False):
    """Cross-validated accuracy of a classifier separating generated from real embeddings.

    Classes are balanced by subsampling the larger set. Returns nan when either set has
    fewer than ``folds`` rows. With ``return_correct``, also the per-row out-of-fold
    correctness, from which a bootstrap interval is cheap.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    real = np.asarray(real, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    n = min(len(real), len(generated))
    if n < folds:
        return (float("nan"), np.zeros(0, dtype=bool)) if return_correct else float("nan")
    rng = np.random.default_rng(seed)
    r = real[rng.choice(len(real), n, replace=False)] if len(real) > n else real
    g = generated[rng.choice(len(generated), n, replace=False)] if len(generated) > n else generated
    x = np.vstack([r, g])
    y = np.r_[np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)]
    clf = LogisticRegression(max_iter=2000, C=1.0)
    pred = cross_val_predict(clf, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    correct = pred == y
    acc = float(correct.mean())
    return (acc, correct) if return_correct else acc


class Distinguishability:
    """The classifier two-sample test, pooled and per cluster, with the out-of-fold correctness of each row.

    Its interval resamples that correctness rather than refitting the classifier (stated in the results file's
    ``ci_method``): a refit per resample would cost a cross-validation each.
    """

    def __init__(self, real: np.ndarray, generated: np.ndarray, clusters: np.ndarray, ids: np.ndarray, *, folds: int,
                 seed: int, progress: bool) -> None:
        """``clusters``: the cluster of each embedded row; ``ids``: every cluster of the split, those without a
        text row included (their value is nan, not absent)."""
        from blueprint.progress import progress_bar

        self.per_cluster: dict[int, float] = {}
        self.per_correct: dict[int, np.ndarray] = {}
        with progress_bar(total=len(ids) + 1, desc="distinguishability", unit="fit", enabled=progress) as bar:
            self.accuracy, self.correct = distinguishability(real, generated, folds=folds, seed=seed,
                                                                  return_correct=True)
            bar.update(1)
            for k in ids:
                m = clusters == k
                a, corr = distinguishability(real[m], generated[m], folds=folds, seed=seed, return_correct=True)
                self.per_cluster[int(k)] = a
                self.per_correct[int(k)] = corr
                bar.update(1)

    def intervals(self, estimates: dict, *, resamples: int, seed: int, confidence: float
                  ) -> dict[str, list[float] | str]:
        """The intervals of ``distinguishability`` and ``cluster_distinguishability`` (none without resamples)."""
        if resamples <= 0 or not len(self.correct):
            return {}
        rng = np.random.default_rng(seed)
        correct = self.correct
        draws = [correct[rng.integers(0, len(correct), len(correct))].mean() for _ in range(resamples)]
        cl = [np.nanmean([corr[rng.integers(0, len(corr), len(corr))].mean() if len(corr) else np.nan
                          for corr in self.per_correct.values()]) for _ in range(resamples)]
        return {"distinguishability": interval(draws, estimates["distinguishability"], confidence),
                "cluster_distinguishability": interval(cl, estimates["cluster_distinguishability"], confidence)}
