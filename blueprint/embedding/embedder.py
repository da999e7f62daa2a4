"""Vectors for texts through the cache: each distinct text encoded once, ever.

:func:`embed_texts` is the one path from texts to vectors; :class:`TextEmbedder` (an
encoder with its cache) serves scoring and the neighbour baselines, and
:class:`ChunkEncoder` the build's embedding stage and the Ray engine's actors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from blueprint.embedding.cache import EmbeddingCache, default_cache_dir, text_key
from blueprint.embedding.encoder import Encoder

_SAME = object()


def embed_texts(texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache | None = None, *,
                progress: bool = False, write_to: EmbeddingCache | None | object = _SAME) -> tuple[np.ndarray, dict]:
    """Vectors for ``texts``: from the cache where there, the encoder otherwise (each distinct text once).

    New vectors go to ``write_to`` (default: ``cache``). Returns the vectors in input
    order and counts: texts, distinct, cached, encoded.
    """
    target = cache if write_to is _SAME else write_to
    assert target is None or isinstance(target, EmbeddingCache)
    keys = [text_key(t) for t in texts]
    first: dict[bytes, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    uniq_keys = list(first)
    uniq_texts = [texts[first[k]] for k in uniq_keys]
    vecs = np.zeros((len(uniq_keys), encoder.dim), dtype=np.float32)
    found = np.zeros(len(uniq_keys), dtype=bool)
    if cache is not None:
        found, hits = cache.get(uniq_keys)
        if hits is not None and found.any():
            vecs[found] = hits[found]
    todo = np.flatnonzero(~found)
    if len(todo):
        new = encoder.encode([uniq_texts[i] for i in todo], progress=progress)
        vecs[todo] = new
        if target is not None:
            target.put([uniq_keys[i] for i in todo], new)
    pos = {k: i for i, k in enumerate(uniq_keys)}
    out = vecs[[pos[k] for k in keys]] if keys else vecs
    return out, {"texts": len(texts), "distinct": len(uniq_keys), "cached": int(found.sum()),
                 "encoded": int(len(todo))}


class TextEmbedder:
    """An encoder with its on-disk cache: vectors for any texts, each distinct text encoded once ever.

    Scoring (reference and generated texts) and the neighbour baselines (thread contexts)
    embed through it; ``counts`` adds up what came from the cache and what was encoded.
    """

    def __init__(self, model: str = "default", *, max_length: int = 128, cache_dir: str | None = "default") -> None:
        self.encoder = Encoder(model, max_length=max_length)
        self.cache = None if cache_dir is None else EmbeddingCache(
            default_cache_dir() if cache_dir == "default" else cache_dir, self.encoder.fingerprint)
        self.counts: dict[str, int] = {}

    def __call__(self, texts: Sequence[str], *, cache: bool = True, progress: bool = False) -> np.ndarray:
        vectors, counts = embed_texts(list(texts), self.encoder, self.cache if cache else None, progress=progress)
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        return vectors


class ChunkEncoder:
    """Encodes chunks of texts in this process, in order, through a snapshot of the cache.

    Each chunk's distinct texts are looked up in the cache as it was when the stage
    began (``snapshot``: its shard names) and the others encoded, and the new vectors go
    to new shards; so a chunk's vectors do not depend on which chunk ran first. The
    build's embedding stage runs one here; the Ray engine runs one in each actor.
    """

    def __init__(self, encoder: Encoder, cache_root: str | None, snapshot: list[str] | None,
                 progress: bool = False) -> None:
        self.encoder, self.progress = encoder, progress
        self.read = None if cache_root is None else EmbeddingCache(cache_root, encoder.fingerprint, only=snapshot)
        self.write = None if cache_root is None else EmbeddingCache(cache_root, encoder.fingerprint, only=())

    def __call__(self, chunks: Iterator[list[str]]) -> Iterator[tuple[np.ndarray, dict]]:
        for texts in chunks:
            yield embed_texts(texts, self.encoder, self.read, write_to=self.write, progress=self.progress)
