"""The retrieval baseline: copy the action and text of the nearest train thread of the same persona.

"Nearest" is by the cosine of context embeddings: the embedding of the message the user
responds to (the last message before the answer), with the project's encoder and its
on-disk cache. A
thread without context (a new post) has no neighbour by content, so it copies a train
thread without context of the same cluster, drawn with ``seed``. A cluster with no
candidate falls back to every cluster's.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.baselines._common import context_vectors, nearest
from blueprint.embedding import TextEmbedder


class NeighbourIndex:
    """Train threads by cluster, with their context embeddings; finds each query's nearest candidate."""

    def __init__(self, clusters: np.ndarray, vectors: np.ndarray, has_context: np.ndarray) -> None:
        self.clusters = clusters
        self.vectors = vectors
        self.has_context = has_context

    def lookup(self, clusters: np.ndarray, vectors: np.ndarray, has_context: np.ndarray, rng: np.random.Generator,
               allowed: np.ndarray | None = None) -> np.ndarray:
        """The train index matched to each query; -1 where nothing is allowed. ``allowed`` masks train rows."""
        allowed = np.ones(len(self.clusters), dtype=bool) if allowed is None else allowed
        out = np.full(len(clusters), -1, dtype=np.int64)
        for c in np.unique(clusters):
            for ctx in (True, False):
                q = np.flatnonzero((clusters == c) & (has_context == ctx))
                if not len(q):
                    continue
                base = allowed & (self.has_context == ctx)
                cand = np.flatnonzero(base & (self.clusters == c))
                if not len(cand):
                    cand = np.flatnonzero(base)
                if not len(cand):
                    cand = np.flatnonzero(allowed)
                if not len(cand):
                    continue
                if ctx:
                    out[q] = cand[nearest(vectors[q], self.vectors[cand])]
                else:
                    out[q] = cand[rng.integers(len(cand), size=len(q))]
        return out


class RetrievalBaseline:
    name = "retrieval"
    train_columns = ["thread", "action", "target_text", "cluster_id"]

    def __init__(self, seed: int = 0, model: str = "default", cache_dir: str | None = "default") -> None:
        self.seed = seed
        self.embedder = TextEmbedder(model, cache_dir=cache_dir)
        self.index: NeighbourIndex | None = None
        self.actions: list[str] = []
        self.texts: list[str | None] = []

    def fit(self, train: pa.Table) -> RetrievalBaseline:
        threads = train["thread"].to_pylist()
        self.index = NeighbourIndex(np.asarray(train["cluster_id"].to_pylist(), dtype=np.int64),
                                    context_vectors(threads, self.embedder),
                                    np.array([len(t) > 1 for t in threads]))
        self.actions = [ACTIONS[a] for a in train["action"].to_pylist()]
        self.texts = train["target_text"].to_pylist()
        return self

    def predict(self, rows: pa.Table) -> list[dict]:
        if self.index is None:
            raise RuntimeError("fit the baseline first")
        threads = rows["thread"].to_pylist()
        # a neighbour whose action carries text but whose text is missing has nothing to copy
        usable = np.array([a not in TEXT_ACTIONS or bool(t) for a, t in zip(self.actions, self.texts)])
        match = self.index.lookup(np.asarray(rows["cluster_id"].to_pylist(), dtype=np.int64),
                                  context_vectors(threads, self.embedder),
                                  np.array([len(t) > 1 for t in threads]), np.random.default_rng(self.seed), usable)
        out = []
        for i, j in zip(rows["id"].to_pylist(), match.tolist()):
            a = self.actions[j]
            out.append({"id": i, "action": a, "text": self.texts[j] if a in TEXT_ACTIONS else None})
        return out
