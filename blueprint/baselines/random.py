"""The random baseline: an action drawn uniformly from the 13, and for a text action a random train text.

It is the chance level of every metric: its macro-F1 is about 1/13 of what balanced
classes would give, and its action distribution is flat.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from blueprint.actions import ACTIONS
from blueprint.baselines._common import TextPool


class RandomBaseline:
    name = "random"
    train_columns = ["action", "target_text", "cluster_id"]

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.texts: TextPool | None = None

    def fit(self, train: pa.Table) -> RandomBaseline:
        self.texts = TextPool(train)
        return self

    def predict(self, rows: pa.Table) -> list[dict]:
        if self.texts is None:
            raise RuntimeError("fit the baseline first")
        rng = np.random.default_rng(self.seed)
        actions = rng.integers(len(ACTIONS), size=rows.num_rows)
        out = []
        for i, c, a in zip(rows["id"].to_pylist(), rows["cluster_id"].to_pylist(), actions.tolist()):
            name = ACTIONS[a]
            out.append({"id": i, "action": name, "text": self.texts.draw(rng, c, name)})
        return out
