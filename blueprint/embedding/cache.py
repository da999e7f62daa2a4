"""The on-disk embedding cache: vectors keyed by a hash of their text, one folder per encoder fingerprint."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from blueprint._io import cache_root


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``$BLUEPRINT_CACHE/embeddings`` or ``~/.cache/blueprint/embeddings``."""
    return cache_root() / "embeddings"


def text_key(text: str) -> bytes:
    """The cache key of a text: 16 bytes of its sha256 (the text itself is never stored)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


class EmbeddingCache:
    """Vectors on disk, keyed by text hash, one folder per encoder fingerprint.

    Each addition is one more shard: ``shard-NNNNN.vectors.npy`` (float32) written first,
    then ``shard-NNNNN.keys.npy`` (16-byte keys), each atomically; a shard counts once its
    keys are there. Vectors are memory-mapped and keys kept sorted, so a lookup holds
    about 32 bytes per cached text, not the vectors: a cache of millions of texts stays
    small in memory. Shards of the earlier ``shard-NNNNN.npz`` form are still read.
    The folder is private (mode 0700): vectors are derived from users' posts.
    """

    def __init__(self, root: str | os.PathLike[str], fingerprint: str, *, only: Sequence[str] | None = None) -> None:
        self.dir = Path(root) / fingerprint
        self.only = None if only is None else set(only)  # read these shards and no others: a snapshot
        self._shards: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None

    def shard_names(self) -> list[str]:
        """The complete shards on disk now (pass them as ``only`` for a snapshot of this moment)."""
        return sorted(p.name for p in [*self.dir.glob("shard-*.keys.npy"), *self.dir.glob("shard-*.npz")])

    def _load(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per shard: sorted first-8-byte prefixes, the order that sorts them, the keys, the vectors."""
        if self._shards is None:
            self._shards = []
            for path in sorted(self.dir.glob("shard-*.keys.npy")) + sorted(self.dir.glob("shard-*.npz")):
                if self.only is not None and path.name not in self.only:
                    continue
                if path.suffix == ".npz":
                    with np.load(path) as z:
                        keys, vecs = z["keys"], z["vectors"]
                else:
                    keys = np.load(path)
                    vecs = np.load(path.with_name(path.name.replace(".keys.npy", ".vectors.npy")), mmap_mode="r")
                self._add(np.ascontiguousarray(keys, dtype=np.uint8), vecs)
        return self._shards

    def _add(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        prefix = keys[:, :8].copy().view(">u8").ravel()
        order = np.argsort(prefix, kind="stable")
        if self._shards is None:
            self._shards = []
        self._shards.append((prefix[order], order, keys, vecs))

    def __len__(self) -> int:
        return sum(len(s[2]) for s in self._load())

    def get(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """A mask of the keys found, and their vectors (rows of zeros where missing; None if nothing is cached)."""
        shards = self._load()
        found = np.zeros(len(keys), dtype=bool)
        if not shards or not len(keys):
            return found, None
        q = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16)
        q_prefix = q[:, :8].copy().view(">u8").ravel()
        out = np.zeros((len(keys), shards[0][3].shape[1]), dtype=np.float32)
        for prefix, order, skeys, vecs in shards:
            todo = np.flatnonzero(~found)
            if not len(todo):
                break
            pos = np.searchsorted(prefix, q_prefix[todo])
            # equal prefixes lie side by side: step through them until the whole key matches
            while len(todo):
                ok = pos < len(prefix)
                todo, pos = todo[ok], pos[ok]
                same = prefix[pos] == q_prefix[todo]
                todo, pos = todo[same], pos[same]
                rows = order[pos]
                hit = (skeys[rows] == q[todo]).all(axis=1)
                found[todo[hit]] = True
                if hit.any():
                    out[todo[hit]] = vecs[rows[hit]]
                todo, pos = todo[~hit], pos[~hit] + 1
        return found, out

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store new vectors in a new shard."""
        if not len(keys):
            return
        from blueprint._io import atomic_path

        self.dir.mkdir(parents=True, exist_ok=True)
        for d in (self.dir, self.dir.parent):
            try:
                os.chmod(d, 0o700)
            except OSError:  # pragma: no cover - not ours to change
                pass
        shards = self._load()
        # a random part in the name: processes that add shards at once (Ray actors) never pick the same one
        name = f"shard-{len(self.shard_names()):05d}-{secrets.token_hex(6)}"
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        for suffix, arr in (("vectors", vecs), ("keys", key_arr)):
            with atomic_path(self.dir / f"{name}.{suffix}.npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, arr)
        self._shards = shards
        self._add(key_arr.copy(), vecs)


