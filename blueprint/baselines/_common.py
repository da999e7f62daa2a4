"""What several baselines share: seeded text pools, context texts and their embeddings, nearest neighbours."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.task import context


class TextPool:
    """Train texts by (cluster, action), to draw a text for a predicted text action.

    A draw falls back from (cluster, action) to the cluster's texts of any text action,
    then to the action's texts in any cluster, then to any text.
    """

    def __init__(self, train: pa.Table) -> None:
        self.by_key: dict[tuple[int, str], list[str]] = defaultdict(list)
        self.by_cluster: dict[int, list[str]] = defaultdict(list)
        self.by_action: dict[str, list[str]] = defaultdict(list)
        self.all: list[str] = []
        for c, a, t in zip(train["cluster_id"].to_pylist(), train["action"].to_pylist(),
                           train["target_text"].to_pylist()):
            if t and ACTIONS[a] in TEXT_ACTIONS:
                name = ACTIONS[a]
                self.by_key[(c, name)].append(t)
                self.by_cluster[c].append(t)
                self.by_action[name].append(t)
                self.all.append(t)

    def draw(self, rng: np.random.Generator, cluster: int, action: str) -> str | None:
        if action not in TEXT_ACTIONS:
            return None
        for pool in (self.by_key.get((cluster, action)), self.by_cluster.get(cluster), self.by_action.get(action),
                     self.all):
            if pool:
                return pool[int(rng.integers(len(pool)))]
        return None


def context_text(thread: Sequence[Mapping]) -> str:
    """The text a neighbour search keys on: the last message before the answer, the one the user responds to.

    For a reply it is the parent, for a like, repost or quote the target post, for a
    follow or block the target's latest post; an empty string for a new post. These are
    posts the build has already embedded, so the embedding cache answers most lookups.
    """
    turns = context({"thread": thread})
    return (turns[-1].text or "") if turns else ""


def context_vectors(threads: Sequence[Sequence[Mapping]], embedder) -> np.ndarray:
    """Unit vectors of the threads' :func:`context_text`, through a :class:`blueprint.embedding.TextEmbedder`
    (its on-disk cache: nothing is embedded twice)."""
    vecs = embedder([context_text(t) for t in threads])
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.maximum(norms, 1e-12)


def nearest(queries: np.ndarray, keys: np.ndarray, block: int = 4096) -> np.ndarray:
    """For each query row, the index of the key row with the highest dot product (ties: the lowest index)."""
    out = np.empty(len(queries), dtype=np.int64)
    for s in range(0, len(queries), block):
        out[s:s + block] = np.argmax(queries[s:s + block] @ keys.T, axis=1)
    return out
