"""Embeddings: which model (resolved and verified), the encoder and its backends, the cache, and texts -> vectors.

- :mod:`.models`: model names -> folders, the packaged default's sha256 check, fingerprints;
- :mod:`.encoder`: :class:`Encoder`, batched and pooled, on torch;
- :mod:`.backends`: the same encoder on ONNX Runtime or OpenVINO (exported once, cached);
- :mod:`.cache`: vectors on disk, keyed by text hash and encoder fingerprint;
- :mod:`.embedder`: :func:`embed_texts` through the cache, :class:`TextEmbedder` for scoring and
  baselines, :class:`ChunkEncoder` for the build's embedding stage and the Ray engine's actors.

The pipeline (:mod:`blueprint.simpact`) and the benchmark side (metrics, baselines,
leaderboard) both stand on this package, never on each other.
"""

from __future__ import annotations

from blueprint.embedding.cache import EmbeddingCache, default_cache_dir, text_key
from blueprint.embedding.embedder import ChunkEncoder, TextEmbedder, embed_texts
from blueprint.embedding.encoder import BACKENDS, Encoder
from blueprint.embedding.models import (
                                        DEFAULT_MODEL,
                                        DEFAULT_MODEL_SHA256,
                                        ResolvedModel,
                                        check_packaged_model,
                                        resolve_model,
                                        sha256_file,
)

__all__ = ["BACKENDS", "DEFAULT_MODEL", "DEFAULT_MODEL_SHA256", "ChunkEncoder", "EmbeddingCache", "Encoder",
           "ResolvedModel", "TextEmbedder", "check_packaged_model", "default_cache_dir", "embed_texts",
           "resolve_model", "sha256_file", "text_key"]
