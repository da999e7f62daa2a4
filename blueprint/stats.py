"""``blueprint stats``: the statistics table of a dataset, per action and per cluster.

Counts come from the data files themselves (threads, actions, messages, mean thread
length) and, for users, from the build manifest: user ids are per-thread pseudonyms,
so users cannot be counted from the data.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from blueprint.actions import ACTIONS
from blueprint.data import SPLITS, config_name, read_split
from blueprint.errors import BadInputError


def dataset_stats(dataset_dir: str | os.PathLike[str]) -> dict:
    """Threads, users, messages and action counts, overall and per cluster of every partition."""
    from blueprint.data import read_manifest

    d = Path(dataset_dir)
    manifest = read_manifest(d)
    out: dict = {"dataset": d.name, "path": str(d), "partitions": {}}
    for k in manifest["partitions"]:
        name = config_name(k)
        tables = [read_split(d, name, s, columns=["thread", "cluster_id", "action"]) for s in SPLITS]
        actions = np.concatenate([t["action"].to_numpy() for t in tables])
        clusters = np.concatenate([t["cluster_id"].to_numpy() for t in tables])
        lengths = np.concatenate([pc.list_value_length(t["thread"]).to_numpy() for t in tables])
        hidden = int((actions < 0).sum())
        known = actions >= 0
        known_users = manifest["users_per_cluster"][name]  # None: unknown (an imported release)
        users = {int(c): int(n) for c, n in (known_users or {}).items()}
        per_cluster = []
        for c in range(k):
            m = clusters == c
            counts = np.bincount(actions[m & known], minlength=len(ACTIONS))
            per_cluster.append({"cluster": c, "users": users.get(c, 0) if known_users is not None else None,
                                "threads": int(m.sum()),
                                "messages": int(lengths[m].sum()),
                                "actions": {a: int(n) for a, n in zip(ACTIONS, counts)}})
        counts = np.bincount(actions[known], minlength=len(ACTIONS))
        out["partitions"][name] = {
            "threads": int(len(actions)), "users": int(sum(users.values())) if known_users is not None else None,
            "messages": int(lengths.sum()),
            "mean_thread_length": float(lengths.mean()) if len(lengths) else 0.0,
            "hidden_labels": hidden,
            "splits": {s: t.num_rows for s, t in zip(SPLITS, tables)},
            "actions": {a: int(n) for a, n in zip(ACTIONS, counts)},
            "clusters": per_cluster,
        }
    if not out["partitions"]:
        raise BadInputError("the dataset has no partitions", path=d)
    return out


def format_stats(s: dict) -> str:
    """The statistics as plain-text tables."""
    lines = [f"Dataset at {s.get('path', s['dataset'])}"]
    for name, p in s["partitions"].items():
        users = "unknown (pseudonymous ids)" if p["users"] is None else f"{p['users']:,}"
        lines += ["", f"{name}: {p['threads']:,} threads, {users} users, {p['messages']:,} messages "
                      f"(mean thread length {p['mean_thread_length']:.2f}); "
                      + ", ".join(f"{k} {v:,}" for k, v in p["splits"].items())]
        if p["hidden_labels"]:
            lines.append(f"  {p['hidden_labels']:,} test threads have hidden labels and are not counted by action")
        lines.append("  " + " ".join(f"{a:>{max(6, len(a))}}" for a in ("cluster", "users", "threads", *ACTIONS)))
        rows = [("all", p["users"], p["threads"], *(p["actions"][a] for a in ACTIONS))]
        rows += [(c["cluster"], c["users"], c["threads"], *(c["actions"][a] for a in ACTIONS)) for c in p["clusters"]]
        for r in rows:
            lines.append("  " + " ".join(f"{'n/a' if v is None else str(v):>{max(6, len(h))}}" for v, h in
                                         zip(r, ("cluster", "users", "threads", *ACTIONS))))
    return "\n".join(lines) + "\n"
