"""The embedding stage: each in-scope user -> the mean vector of their posts and replies.

The texts come from the threads stage (``user_texts.parquet``), a chunk at a time:
memory holds a chunk or two, the per-user sums (:class:`UserMeans`) and the cache's
keys, never every text's vector. Quotes count only with ``include_quotes``, and users
who asked to be removed get no persona. The encoding itself (model, backends, cache)
is :mod:`blueprint.embedding`'s; the engine decides where the chunks are encoded, and
the vectors do not depend on it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blueprint._io import atomic_path
from blueprint.embedding import EmbeddingCache, Encoder
from blueprint.simpact.config import EmbedConfig
from blueprint.simpact.privacy import without_removed

if TYPE_CHECKING:
    from blueprint.simpact.engine import Engine

log = logging.getLogger(__name__)

EMBED_CHUNK = 100_000  # texts per step of the stage: bounds its memory


class UserMeans:
    """Per-user means of vectors that arrive in chunks: sums in float64, in arrival order, then one division.

    Users are fixed up front (sorted DIDs); a vector of a DID not among them is an error.
    A user who got no vector keeps a zero vector (the stage only lists users with texts).
    """

    def __init__(self, users: list[str], dim: int) -> None:
        self.keys = pa.array(users, pa.string())
        self.dim = dim
        self.sums = np.zeros((len(users), dim), dtype=np.float64)
        self.counts = np.zeros(len(users), dtype=np.int64)

    def add(self, dids: pa.Array | pa.ChunkedArray, vectors: np.ndarray) -> None:
        """Add ``vectors[i]``, written by ``dids[i]``."""
        found = pc.index_in(dids, value_set=self.keys)
        if found.null_count:
            raise ValueError(f"{found.null_count} vectors of users who are not in the list")
        idx = found.to_numpy(zero_copy_only=False).astype(np.int64)
        np.add.at(self.sums, idx, vectors)
        np.add.at(self.counts, idx, 1)

    def means(self) -> np.ndarray:
        """float32 means, one row per user in the order given."""
        return (self.sums / np.maximum(self.counts, 1)[:, None]).astype(np.float32)

    def table(self) -> pa.Table:
        """``did`` and ``vector`` (a fixed-size list of float32) per user."""
        vectors = self.means()
        column = (pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), self.dim) if len(self.keys)
                  else pa.array([], pa.list_(pa.float32(), self.dim)))
        return pa.table({"did": self.keys, "vector": column})


def embed_users(threads_dir: Path, out_dir: Path, cfg: EmbedConfig, engine: Engine, *, encoder: Encoder | None = None,
                removed: frozenset[str] = frozenset(), progress: bool = False) -> dict:
    """Write ``users.parquet`` (each user's mean vector) to ``out_dir``; return the stage's report.

    Each chunk's distinct texts are looked up in the embedding cache as it was when the
    stage began, and the others encoded; so a chunk's vectors do not depend on which
    chunk ran first, and the Ray engine (chunks encoded on actors, results in order)
    gives the same bytes as this process. The sums add the texts in file order, as one
    pass would.
    """
    encoder = encoder or cfg.encoder()
    path = threads_dir / "user_texts.parquet"
    cache_root = cfg.cache_root()
    snapshot = EmbeddingCache(cache_root, encoder.fingerprint).shard_names() if cache_root else None
    encode = engine.chunk_encoder(encoder, cache_root, snapshot, progress)
    means = UserMeans(_users_with_texts(path, cfg, removed), encoder.dim)
    totals = {"texts": 0, "cached": 0, "encoded": 0}  # cached / encoded: distinct texts of each chunk
    chunks = _PersonaTexts(path, cfg, removed)
    for dids, (vectors, counts) in zip(chunks.dids(), encode(chunks.texts())):
        for k in totals:
            totals[k] += counts[k]
        means.add(dids, vectors)
    with atomic_path(out_dir / "users.parquet") as tmp:
        pq.write_table(means.table(), tmp)
    n_users = len(means.keys)
    log.info("embed: %d texts (%d encoded, %d from the cache) -> %d users (%s, %s pooling, %s)", totals["texts"],
             totals["encoded"], totals["cached"], n_users, encoder.model.name, encoder.pooling, encoder.backend)
    return {**totals, "users": n_users, "model": encoder.model.name,
            "model_fingerprint": encoder.model.fingerprint, "pooling": encoder.pooling, "dim": encoder.dim,
            "backend": encoder.backend}


class _PersonaTexts:
    """The texts that make personas, :data:`EMBED_CHUNK` at a time: no quotes unless asked, no removed user.

    Read twice in step: the DIDs here, the texts by the encoder (which may run elsewhere).
    """

    def __init__(self, path: Path, cfg: EmbedConfig, removed: frozenset[str]) -> None:
        self.path, self.cfg, self.removed = path, cfg, removed

    def __iter__(self) -> Iterator[pa.Table]:
        columns = ["did", "action", "text"]
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=EMBED_CHUNK, columns=columns):
            texts = pa.Table.from_batches([batch])
            if not self.cfg.include_quotes:
                texts = texts.filter(pc.not_equal(texts["action"], "quote"))
            texts, _ = without_removed(texts, self.removed)  # users who asked to be removed get no persona
            if texts.num_rows:
                yield texts

    def dids(self) -> Iterator[pa.ChunkedArray]:
        for t in self:
            yield t["did"]

    def texts(self) -> Iterator[list[str]]:
        for t in self:
            yield t["text"].to_pylist()


def _users_with_texts(path: Path, cfg: EmbedConfig, removed: frozenset[str]) -> list[str]:
    """The users with at least one persona text, sorted."""
    seen: set[str] = set()
    for texts in _PersonaTexts(path, cfg, removed):
        seen.update(pc.unique(texts["did"]).to_pylist())
    return sorted(seen)


def read_user_vectors(embed_dir: Path) -> tuple[list[str], np.ndarray]:
    """The stage's output: DIDs in sorted order, and their vectors as one float32 matrix."""
    t = pq.read_table(embed_dir / "users.parquet")
    dids = t["did"].to_pylist()
    if not dids:
        return [], np.zeros((0, 0), dtype=np.float32)
    flat = t["vector"].combine_chunks().flatten().to_numpy()
    return dids, flat.reshape(len(dids), -1)
