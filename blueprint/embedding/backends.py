"""The ONNX Runtime and OpenVINO backends of the encoder: the same weights, exported once and cached.

``onnx``: exported by ``torch.onnx.export`` and run by ONNX Runtime with its graph
optimisations; ``onnx-int8``: that graph with int8 dynamic quantisation of its
weights; ``openvino`` / ``openvino-bf16``: the same ONNX graph compiled by OpenVINO
for the CPU in float32 or in bfloat16 (fast where the CPU has bfloat16 instructions,
such as AVX512_BF16 or AMX). The ONNX files are cached beside the embeddings, keyed
by the model's fingerprint.

sentence-transformers' own ONNX backend goes through optimum-onnx, whose releases pin
transformers below 4.58, which this project's datasets and TRL versions cannot use;
exporting with torch's exporter and running ONNX Runtime directly needs neither.
``benchmarks/bench_embed.py`` measures the backends and their agreement with torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np

from blueprint.embedding.cache import default_cache_dir
from blueprint.embedding.models import ResolvedModel
from blueprint.errors import BadInputError

log = logging.getLogger(__name__)

def runner(model: ResolvedModel, tok, backend: str):
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


