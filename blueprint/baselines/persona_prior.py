"""The persona-prior baseline: each cluster's action distribution in the train split.

``mode="argmax"`` predicts each cluster's most frequent action (ties: the earlier
action of :data:`blueprint.ACTIONS`); ``mode="sample"`` draws from the cluster's
distribution with ``seed``, which reproduces the persona's action mix (low action JS)
at the cost of accuracy. A text action gets a random train text of the same cluster
and action. A cluster absent from train uses the whole train distribution.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from blueprint.actions import ACTIONS
from blueprint.baselines._common import TextPool
from blueprint.errors import BadInputError
from blueprint.validation import check_choice

MODES = ("argmax", "sample")


class PersonaPriorBaseline:
    name = "persona_prior"
    train_columns = ["action", "target_text", "cluster_id"]

    def __init__(self, seed: int = 0, mode: str = "argmax") -> None:
        check_choice(mode, "mode", MODES)
        self.seed = seed
        self.mode = mode
        self.prior: dict[int, np.ndarray] = {}
        self.overall: np.ndarray | None = None
        self.texts: TextPool | None = None

    def fit(self, train: pa.Table) -> PersonaPriorBaseline:
        if train.num_rows == 0:
            raise BadInputError("the training split is empty", field="train")
        clusters = np.asarray(train["cluster_id"].to_pylist(), dtype=np.int64)
        actions = np.asarray(train["action"].to_pylist(), dtype=np.int64)
        self.overall = np.bincount(actions, minlength=len(ACTIONS)) / len(actions)
        for c in np.unique(clusters):
            counts = np.bincount(actions[clusters == c], minlength=len(ACTIONS))
            self.prior[int(c)] = counts / counts.sum()
        self.texts = TextPool(train)
        return self

    def predict(self, rows: pa.Table) -> list[dict]:
        if self.overall is None or self.texts is None:
            raise RuntimeError("fit the baseline first")
        rng = np.random.default_rng(self.seed)
        clusters = np.asarray(rows["cluster_id"].to_pylist(), dtype=np.int64)
        chosen = np.empty(len(clusters), dtype=np.int64)
        for c in np.unique(clusters):
            m = clusters == c
            p = self.prior.get(int(c), self.overall)
            chosen[m] = np.argmax(p) if self.mode == "argmax" else rng.choice(len(ACTIONS), size=int(m.sum()), p=p)
        out = []
        for i, c, a in zip(rows["id"].to_pylist(), clusters.tolist(), chosen.tolist()):
            name = ACTIONS[a]
            out.append({"id": i, "action": name, "text": self.texts.draw(rng, c, name)})
        return out
