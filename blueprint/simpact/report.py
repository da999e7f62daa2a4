"""The cluster report: what each persona is, per partition, as JSON, Markdown and a 2-D map.

For each partition ``k`` it gives cluster sizes (users and threads), the top TF-IDF terms
of each cluster, the distribution of the 13 actions per cluster, and a 2-D map of the
user embeddings coloured by cluster (PCA to 50 dimensions, then t-SNE, on at most
``map_users`` users), like Figure 4 of the paper.

Terms come from the released, PII-scrubbed texts, so the report shows nothing the
dataset does not; the map shows points, not users.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from blueprint._io import write_json
from blueprint.actions import ACTIONS

log = logging.getLogger(__name__)

_TAG = re.compile(r"<[A-Z_]+>")


def top_terms(cluster_texts: Mapping[int, Sequence[str]], n_terms: int = 10) -> dict[int, list[str]]:
    """Top TF-IDF terms per cluster, one document per cluster (PII tags removed, English stop words out)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    ids = sorted(cluster_texts)
    docs = [_TAG.sub(" ", " ".join(cluster_texts[c])) for c in ids]
    if not any(d.strip() for d in docs):
        return {c: [] for c in ids}
    vec = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_][\w'-]+\b", sublinear_tf=True)
    try:
        m = vec.fit_transform(docs)
    except ValueError:  # only stop words
        return {c: [] for c in ids}
    vocab = np.array(vec.get_feature_names_out())
    out = {}
    for row, c in enumerate(ids):
        weights = m.getrow(row).toarray().ravel()
        order = np.lexsort((vocab, -weights))  # ties broken alphabetically: stable output
        out[c] = [str(vocab[i]) for i in order[:n_terms] if weights[i] > 0]
    return out


def map_2d(vectors: np.ndarray, seed: int, max_users: int) -> tuple[np.ndarray, np.ndarray]:
    """2-D coordinates for a deterministic sample of at most ``max_users`` rows; returns (rows, coords)."""
    n = len(vectors)
    rows = np.arange(n) if n <= max_users else np.sort(np.random.default_rng(seed).choice(n, max_users, replace=False))
    x = vectors[rows].astype(np.float64)
    if len(rows) < 5:
        return rows, np.zeros((len(rows), 2))
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = PCA(n_components=min(50, x.shape[1], len(rows)), random_state=seed).fit_transform(x)
    perplexity = float(min(30, max(2, (len(rows) - 1) // 3)))
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    return rows, coords


def spread_labels(anchors: np.ndarray, coords: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Label positions near their anchors (cluster medians) that do not pile up on one another.

    Labels closer than a minimum gap (4% of the map's extent) push each other apart, and
    each is pulled back towards its anchor; deterministic for given inputs.
    """
    pos = anchors.astype(np.float64).copy()
    if len(pos) < 2:
        return pos
    extent = float(np.ptp(coords, axis=0).max()) or 1.0
    gap = 0.04 * extent
    for _ in range(iterations):
        diff = pos[:, None, :] - pos[None, :, :]
        dist = np.linalg.norm(diff, axis=-1) + np.eye(len(pos))
        close = (dist < gap) & ~np.eye(len(pos), dtype=bool)
        if not close.any():
            break
        # push apart along the line between two labels (a fixed direction when they coincide)
        unit = np.where(dist[..., None] > 1e-12, diff / dist[..., None], np.array([1.0, 0.0]))
        push = (close[..., None] * unit * (gap - dist)[..., None] / 2).sum(1)
        pos += push + 0.05 * (anchors - pos)
    return pos


def _plot(path: Path, coords: np.ndarray, labels: np.ndarray, k: int, title: str) -> None:
    # a Figure of its own, not pyplot: the build can run inside a notebook, whose backend it must not change
    import matplotlib
    from matplotlib.figure import Figure

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20" if k <= 20 else "hsv"]
    fig = Figure(figsize=(7, 6), dpi=110)
    ax = fig.add_subplot()
    colours = cmap(labels % cmap.N if k <= 20 else labels / max(k - 1, 1))
    ax.scatter(coords[:, 0], coords[:, 1], c=colours, s=8, linewidths=0, alpha=0.8)
    if k <= 25:
        present = [c for c in range(k) if (labels == c).any()]
        anchors = np.array([np.median(coords[labels == c], axis=0) for c in present]).reshape(-1, 2)
        for c, (ax_, ay_), (lx, ly) in zip(present, anchors, spread_labels(anchors, coords)):
            moved = abs(lx - ax_) + abs(ly - ay_) > 1e-9
            ax.annotate(str(c), (ax_, ay_), xytext=(lx, ly), fontsize=8, ha="center", va="center",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.8, "lw": 0},
                        arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.4"} if moved else None)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None, "Creation Time": None})  # no build time in the file


def write_cluster_reports(out_dir: Path, *, dids: Sequence[str], vectors: np.ndarray,
                          partitions: Mapping[int, Mapping[str, int]], thread_clusters: Mapping[int, np.ndarray],
                          thread_actions: np.ndarray, thread_texts, thread_has_text: np.ndarray | None = None,
                          seed: int = 0, map_users: int = 2000, n_terms: int = 10, max_texts: int = 20_000,
                          max_total_texts: int = 1_000_000) -> dict[int, dict]:
    """Write ``clusters_{k}.json``, ``clusters_{k}.md`` and ``clusters_{k}.png`` for every partition.

    Top terms come from at most ``max_texts`` texts per cluster, and ``max_total_texts``
    per partition (evenly spaced over the cluster's texts), which keeps the report's
    memory and time bounded on large datasets (k = 1000 reads 1,000 texts per cluster).
    ``thread_clusters[k][i]`` is the cluster of exported thread i, ``thread_actions[i]``
    its action index, ``thread_texts`` the scrubbed target texts: an Arrow array or a list
    with None where there is no text, or a function from row numbers to those texts
    (then ``thread_has_text`` says which rows have one).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, coords = map_2d(vectors, seed, map_users) if len(vectors) else (np.arange(0), np.zeros((0, 2)))
    summaries = {}
    for k in sorted(partitions):
        labels_of = partitions[k]
        user_labels = np.array([labels_of[d] for d in dids], dtype=np.int64)
        tc = np.asarray(thread_clusters[k])
        counts = np.zeros((k, len(ACTIONS)), dtype=np.int64)
        np.add.at(counts, (tc, thread_actions), 1)
        texts = _cluster_samples(tc, k, thread_texts, thread_has_text,
                                 max(1, min(max_texts, max_total_texts // max(k, 1))))
        terms = top_terms(texts, n_terms)
        users = np.bincount(user_labels, minlength=k)
        clusters = []
        for c in range(k):
            total = int(counts[c].sum())
            clusters.append({
                "cluster": c,
                "users": int(users[c]),
                "threads": total,
                "actions": {a: int(counts[c, j]) for j, a in enumerate(ACTIONS)},
                "action_share": {a: (float(counts[c, j]) / total if total else 0.0) for j, a in enumerate(ACTIONS)},
                "top_terms": terms[c],
            })
        summary = {"k": k, "users": int(len(dids)), "threads": int(len(tc)),
                   "smallest_cluster_users": int(users.min()) if k else 0,
                   "largest_cluster_users": int(users.max()) if k else 0,
                   "map": {"method": "PCA(50) + t-SNE", "users_shown": int(len(rows)), "seed": seed},
                   "clusters": clusters}
        write_json(out_dir / f"clusters_{k}.json", summary)
        (out_dir / f"clusters_{k}.md").write_text(_markdown(summary), encoding="utf-8")
        if len(rows):
            _plot(out_dir / f"clusters_{k}.png", coords, user_labels[rows], k,
                  f"{k} persona clusters: user embeddings (t-SNE), n={len(rows)}")
        summaries[k] = summary
    return summaries


def _cluster_samples(tc: np.ndarray, k: int, texts, has_text: np.ndarray | None, limit: int) -> dict[int, list[str]]:
    """Per cluster, at most ``limit`` of its texts, evenly spaced; read in one pass where ``texts`` is a function."""
    if not callable(texts):
        arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(texts, pa.string())
        has_text = arr.is_valid().to_numpy(zero_copy_only=False) if isinstance(arr, pa.Array) else \
            np.concatenate([c.is_valid().to_numpy(zero_copy_only=False) for c in arr.chunks] or [np.zeros(0, bool)])
        texts = lambda rows: arr.take(pa.array(rows, pa.int64())).to_pylist()  # noqa: E731
    picked = {}
    for c in range(k):
        rows = np.flatnonzero((tc == c) & has_text)
        if len(rows) > limit:
            rows = rows[np.linspace(0, len(rows) - 1, limit).astype(np.int64)]
        picked[c] = rows
    every = np.concatenate(list(picked.values())) if picked else np.zeros(0, np.int64)
    got = dict(zip(every.tolist(), texts(every))) if len(every) else {}
    return {c: [got[r] for r in rows.tolist()] for c, rows in picked.items()}


def _markdown(s: dict) -> str:
    head = ["cluster", "users", "threads", "top actions", "top terms"]
    lines = [f"# {s['k']} clusters", "", f"{s['users']} users, {s['threads']} threads. "
             f"Map: `clusters_{s['k']}.png`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in s["clusters"]:
        top = sorted(c["action_share"].items(), key=lambda kv: -kv[1])[:3]
        acts = ", ".join(f"{a} {v:.0%}" for a, v in top if v > 0)
        lines.append(f"| {c['cluster']} | {c['users']} | {c['threads']} | {acts} | {', '.join(c['top_terms'][:8])} |")
    return "\n".join(lines) + "\n"
