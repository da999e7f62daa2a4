"""The per-persona majority baseline: each cluster's most frequent action and text in the training split.

It is the simplest model that uses the persona: it beats the global majority wherever
personas differ in how they act, and it shows the diagonality a persona-aware model
should at least reach.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pyarrow as pa

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.baselines.majority import MajorityBaseline


class ClusterMajorityBaseline:
    name = "cluster_majority"
    train_columns = ["action", "target_text", "cluster_id"]

    def __init__(self) -> None:
        self.fallback = MajorityBaseline()
        self.by_cluster: dict[int, tuple[str, str | None]] = {}

    def fit(self, train: pa.Table) -> ClusterMajorityBaseline:
        self.fallback.fit(train)
        actions: dict[int, Counter] = defaultdict(Counter)
        texts: dict[int, Counter] = defaultdict(Counter)
        for c, a, t in zip(train["cluster_id"].to_pylist(), train["action"].to_pylist(),
                           train["target_text"].to_pylist()):
            actions[c][a] += 1
            if t:
                texts[c][t] += 1
        for c, counts in actions.items():
            best = ACTIONS[max(counts.items(), key=lambda kv: (kv[1], -kv[0]))[0]]
            text = min(texts[c].items(), key=lambda kv: (-kv[1], kv[0]))[0] if texts[c] else None
            self.by_cluster[c] = (best, text)
        return self

    def predict(self, rows: pa.Table) -> list[dict]:
        out = []
        for i, c in zip(rows["id"].to_pylist(), rows["cluster_id"].to_pylist()):
            action, text = self.by_cluster.get(c, (self.fallback.action, self.fallback.text))
            text = text or self.fallback.text  # a cluster with no train text of its own
            out.append({"id": i, "action": action, "text": text if action in TEXT_ACTIONS else None})
        return out
