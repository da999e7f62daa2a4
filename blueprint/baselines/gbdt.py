"""The gradient-boosted baseline: a classifier on context features, in the spirit of the SocialSim winners.

Features, all from what the model sees (``thread[:-1]``, the persona), never from
the answer:

- the cluster (a categorical feature);
- the context's shape: messages, other authors, the target user's own messages, whether
  the first and the last message are the target user's, whether there is any context;
- the last context message: has text, its length, ``<REMOVED>``, a question mark, PII tags;
- time-rank gaps inside the context: the last gap, the largest, the span;
- the context embedding, reduced by PCA to ``embedding_dims`` dimensions.

The classifier is LightGBM when installed (``engine="auto"``), else scikit-learn's
HistGradientBoostingClassifier, both with balanced class weights so that rare actions
are not ignored. A predicted text action takes its text from retrieval: the nearest
train thread of the same cluster with that action (by context embedding).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from typing import Any

import numpy as np
import pyarrow as pa

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.baselines._common import TextPool, context_vectors
from blueprint.baselines.retrieval import NeighbourIndex
from blueprint.embedding import TextEmbedder
from blueprint.errors import BadInputError
from blueprint.task import context
from blueprint.validation import check_choice

log = logging.getLogger(__name__)

ENGINES = ("auto", "lightgbm", "sklearn")
_TAG = re.compile(r"<[A-Z_]+>")
SHAPE_FEATURES = ("cluster", "n_context", "n_authors", "n_own", "first_own", "last_own", "has_context",
                  "last_has_text", "last_chars", "last_removed", "last_question", "last_tags", "context_chars",
                  "gap_last", "gap_max", "span")


def shape_features(threads, clusters) -> np.ndarray:
    """One row of :data:`SHAPE_FEATURES` per thread (floats; -1 where a gap is undefined)."""
    out = np.zeros((len(threads), len(SHAPE_FEATURES)), dtype=np.float64)
    for r, (thread, c) in enumerate(zip(threads, clusters)):
        turns = context({"thread": thread})
        last = turns[-1] if turns else None
        times = [t.time for t in turns if t.time is not None]
        gaps = np.diff(times) if len(times) > 1 else np.zeros(0)
        text = (last.text or "") if last else ""
        out[r] = (
            c, len(turns), len({t.speaker for t in turns if t.role == "user"}),
            sum(t.role == "assistant" for t in turns), float(bool(turns) and turns[0].role == "assistant"),
            float(last is not None and last.role == "assistant"), float(bool(turns)), float(bool(text)), len(text),
            float(text == "<REMOVED>"), float("?" in text), len(_TAG.findall(text)),
            sum(len(t.text or "") for t in turns),
            gaps[-1] if len(gaps) else -1, gaps.max() if len(gaps) else -1, (times[-1] - times[0]) if times else -1,
        )
    return out


class GBDTBaseline:
    name = "gbdt"
    train_columns = ["thread", "action", "target_text", "cluster_id"]

    def __init__(self, seed: int = 0, engine: str = "auto", model: str = "default",
                 cache_dir: str | None = "default", embedding_dims: int = 16, max_iter: int = 200) -> None:
        check_choice(engine, "engine", ENGINES)
        if engine == "lightgbm" and importlib.util.find_spec("lightgbm") is None:
            raise BadInputError("LightGBM is not installed (pip install lightgbm), or use --engine sklearn",
                                field="engine")
        self.engine = ("lightgbm" if importlib.util.find_spec("lightgbm") else "sklearn") if engine == "auto" \
            else engine
        log.info("gbdt: %s classifier%s", self.engine, " (auto)" if engine == "auto" else "")
        self.seed = seed
        self.embedding_dims = embedding_dims
        self.max_iter = max_iter
        self.embedder = TextEmbedder(model, cache_dir=cache_dir)
        self.pca: Any = None  # sklearn's PCA, once fitted
        self.clf: Any = None  # LightGBM's or scikit-learn's classifier, once fitted
        self.index: NeighbourIndex | None = None
        self.train_actions: np.ndarray | None = None
        self.train_texts: list[str | None] = []

    def _features(self, threads, clusters, vectors) -> np.ndarray:
        return np.hstack([shape_features(threads, clusters), self.pca.transform(vectors)])

    def _classifier(self):
        if self.engine == "lightgbm":
            import lightgbm

            return lightgbm.LGBMClassifier(n_estimators=self.max_iter, learning_rate=0.1, num_leaves=31,
                                           class_weight="balanced", random_state=self.seed, n_jobs=2, verbose=-1,
                                           deterministic=True, force_row_wise=True)
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=self.max_iter, learning_rate=0.1, class_weight="balanced",
                                              categorical_features=[0], early_stopping=False,
                                              random_state=self.seed)

    def fit(self, train: pa.Table) -> GBDTBaseline:
        from sklearn.decomposition import PCA

        threads = train["thread"].to_pylist()
        clusters = np.asarray(train["cluster_id"].to_pylist(), dtype=np.int64)
        y = np.asarray(train["action"].to_pylist(), dtype=np.int64)
        vectors = context_vectors(threads, self.embedder)
        dims = max(1, min(self.embedding_dims, vectors.shape[1], len(threads)))
        self.pca = PCA(n_components=dims, random_state=self.seed).fit(vectors)
        x = self._features(threads, clusters, vectors)
        self.clf = self._classifier()
        if self.engine == "lightgbm":
            self.clf.fit(x, y, categorical_feature=[0])
        else:
            self.clf.fit(x, y)
        self.index = NeighbourIndex(clusters, vectors, np.array([len(t) > 1 for t in threads]))
        self.train_actions = y
        self.train_texts = train["target_text"].to_pylist()
        self.pool = TextPool(train)
        return self

    def predict(self, rows: pa.Table) -> list[dict]:
        if self.clf is None or self.index is None:
            raise RuntimeError("fit the baseline first")
        threads = rows["thread"].to_pylist()
        clusters = np.asarray(rows["cluster_id"].to_pylist(), dtype=np.int64)
        vectors = context_vectors(threads, self.embedder)
        pred = np.asarray(self.clf.predict(self._features(threads, clusters, vectors)), dtype=np.int64)
        texts: list[str | None] = [None] * len(pred)
        rng = np.random.default_rng(self.seed)
        has_context = np.array([len(t) > 1 for t in threads])
        for a in np.unique(pred):
            if ACTIONS[a] not in TEXT_ACTIONS:
                continue
            q = np.flatnonzero(pred == a)
            with_text = np.array([bool(t) for t in self.train_texts])
            allowed = (self.train_actions == a) & with_text
            if not allowed.any():
                allowed = with_text
            match = self.index.lookup(clusters[q], vectors[q], has_context[q], rng, allowed)
            for qi, j in zip(q.tolist(), match.tolist()):
                texts[qi] = self.train_texts[j] if j >= 0 else self.pool.draw(rng, int(clusters[qi]), ACTIONS[a])
        return [{"id": i, "action": ACTIONS[a], "text": t}
                for i, a, t in zip(rows["id"].to_pylist(), pred.tolist(), texts)]
