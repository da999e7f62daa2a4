"""The encoder: texts -> L2-normalised vectors, with length-sorted batches and CLS or mean pooling.

It runs the transformer directly (no sentence-transformers import, which costs
seconds): texts are sorted by length so batches carry little padding, pooled by CLS
or by the attention-masked mean, and L2-normalised. ``pooling="auto"`` reads the
model's own sentence-transformers pooling config where there is one.

Backends (``backend=``): ``torch``, or an ONNX Runtime or OpenVINO graph of the same
weights (:mod:`blueprint.embedding.backends`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from blueprint.embedding.models import DEFAULT_MODEL, ResolvedModel, resolve_model
from blueprint.validation import check_choice, check_scalar

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-bf16")


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
        check_choice(backend, "backend", BACKENDS)
        check_choice(pooling, "pooling", ("auto", "cls", "mean"))
        check_scalar(max_length, "max_length", int, min_val=2)
        check_scalar(batch_size, "batch_size", int, min_val=1)
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
            from blueprint.embedding.backends import runner

            return None, tok, runner(self.model, tok, self.backend)
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


