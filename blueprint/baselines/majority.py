"""The majority baseline: always the most frequent action of the training split.

For its text it gives the most frequent target text of the training split when that
action carries text, and nothing otherwise. It is the floor every model must clear;
its macro-F1 shows how much accuracy alone rewards the class imbalance.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.errors import BadInputError


class MajorityBaseline:
    name = "majority"
    train_columns = ["action", "target_text", "cluster_id"]

    def __init__(self) -> None:
        self.action: str | None = None
        self.text: str | None = None

    def fit(self, train: pa.Table) -> MajorityBaseline:
        if train.num_rows == 0:
            raise BadInputError("the training split is empty", field="train")
        counts = Counter(train["action"].to_pylist())
        # ties go to the earlier action in ACTIONS order, so the result is deterministic
        best = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))[0]
        self.action = ACTIONS[best]
        texts = Counter(t for t in train["target_text"].to_pylist() if t)
        self.text = min(texts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if texts else None
        return self

    def predict(self, rows: pa.Table) -> list[dict]:
        if self.action is None:
            raise RuntimeError("fit the baseline first")
        text = self.text if self.action in TEXT_ACTIONS else None
        return [{"id": i, "action": self.action, "text": text} for i in rows["id"].to_pylist()]
