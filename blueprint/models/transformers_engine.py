"""The transformers engine: any Hugging Face causal LM, run here with batched generation.

Anything :func:`blueprint.models.sources.resolve_lm` takes (the packaged SmolLM2, a
``.gguf`` file, a local folder, a Hub id), or a folder holding a peft LoRA adapter over
its base. Generation is batched, batches of prompts of similar length (longest first),
greedy by default: the shared system prompt's keys and values are computed once, each
row's own tokens are read alone (no padding) into a static cache laid out for the batch,
and the batch decodes together.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from blueprint.errors import BadInputError
from blueprint.models.engine import GenerationConfig, OnDone
from blueprint.progress import progress_bar
from blueprint.task import STYLES
from blueprint.validation import check_choice

log = logging.getLogger(__name__)


def alternating(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same conversation for chat templates that demand strictly alternating user and assistant turns.

    Consecutive messages of one role are joined; a conversation that would start with
    the assistant, or end with it, gets a short user turn so the model speaks next.
    """
    system = [m for m in messages if m["role"] == "system"]
    merged: list[dict[str, str]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if merged and merged[-1]["role"] == m["role"]:
            merged[-1] = {"role": m["role"], "content": merged[-1]["content"] + "\n" + m["content"]}
        else:
            merged.append(dict(m))
    if not merged or merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "content": "(the thread starts)"})
    if merged[-1]["role"] != "user":
        merged.append({"role": "user", "content": "(your next action)"})
    return system + merged


class TransformersEngine:
    """A Hugging Face causal LM with batched, length-sorted, left-padded generation."""

    name = "transformers"

    def __init__(self, model: str, *, style: str = "chat", generation: GenerationConfig | None = None,
                 device: str | None = None, dtype: str = "auto", sort_by_length: bool = True,
                 share_prefix: bool = True, prefill_rows: bool = True) -> None:
        check_choice(style, "style", STYLES)
        self.model_name = str(model)
        self.style = style
        self.gen = generation or GenerationConfig()
        self.sort_by_length = sort_by_length
        self.share_prefix = share_prefix
        self.prefill_rows = prefill_rows
        self._device = device
        self._dtype = dtype
        self._loaded: tuple[Any, Any, Any] | None = None
        self._alternating_said = False

    def describe(self) -> dict:
        return {"engine": self.name, "model": self.model_name, "style": self.style, "generation": asdict(self.gen)}

    def stats(self) -> dict:
        return {}  # a local model has no calls to count: every prompt is answered or the run fails

    def load(self):
        """(torch, tokenizer, model), loaded once."""
        if self._loaded is None:
            self._loaded = load_causal_lm(self.model_name, device=self._device, dtype=self._dtype)
        return self._loaded

    def render(self, prompt) -> str:
        """The text the model reads: the chat template applied, or the plain prompt as it is."""
        _, tok, _ = self.load()
        if self.style == "plain":
            return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        if not getattr(tok, "chat_template", None):
            raise BadInputError(f"{self.model_name} has no chat template; use --style plain", field="style")
        try:
            return tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        except Exception as first:  # noqa: BLE001 - jinja raises its own errors for templates with role rules
            if not self._alternating_said:
                self._alternating_said = True
                log.warning("predict: the chat template of %s refused a prompt (%s); prompts whose roles do not "
                            "alternate are sent with merged turns", self.model_name, first)
            try:
                return tok.apply_chat_template(alternating(prompt), tokenize=False, add_generation_prompt=True)
            except Exception as exc:  # noqa: BLE001
                raise BadInputError(f"the chat template of {self.model_name} refused the prompt ({exc}); "
                                    "try --style plain", field="style") from None

    def generate(self, prompts: Sequence[Any], on_done: OnDone, *, progress: bool = False) -> None:
        """Answer every prompt; ``on_done(i, answer, None)`` as each batch finishes.

        Every prompt starts with the same system message, so with ``share_prefix`` its
        keys and values are computed once and reused by every batch: each batch is laid
        out as ``[shared prefix][left padding][the row's own tokens]``, and the attention
        mask and position ids skip the padding. With ``prefill_rows``, each row's own tokens
        are read one row at a time, without padding, into a cache laid out for the whole
        answer; the batch then decodes together (:func:`_prefill_each_row`).
        """
        torch, tok, net = self.load()
        texts = [self.render(p) for p in prompts]
        ids = tok(texts, add_special_tokens=False)["input_ids"]
        if not ids:
            return
        order = sorted(range(len(texts)), key=lambda i: (-len(ids[i]), i)) if self.sort_by_length else \
            list(range(len(texts)))
        stop = _stop_ids(tok, net)
        kwargs: dict[str, Any] = {"max_new_tokens": self.gen.max_new_tokens, "pad_token_id": tok.pad_token_id,
                                  "eos_token_id": stop}
        if self.gen.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.gen.temperature, top_p=self.gen.top_p)
            torch.manual_seed(self.gen.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode(), progress_bar(total=len(texts), desc="predict", unit="row",
                                                  enabled=progress) as bar:
            n_prefix, prefix_cache = self._prefix_cache(ids) if self.share_prefix else (0, None)
            for start in range(0, len(order), self.gen.batch_size):
                batch = order[start:start + self.gen.batch_size]
                rows = [ids[i] for i in batch]
                enc = _prefixed_batch(torch, rows, n_prefix, tok.pad_token_id)
                width = enc["input_ids"].shape[1]
                cache = _static_cache(net, prefix_cache, len(batch), width + self.gen.max_new_tokens)
                if self.prefill_rows and _plain_layers(cache):
                    _prefill_each_row(torch, net, cache, prefix_cache, rows, n_prefix, width)
                extra = {_cache_kwarg(): cache}
                enc = {k: v.to(net.device) for k, v in enc.items()}
                out = net.generate(**enc, **kwargs, **extra)
                new = out[:, enc["input_ids"].shape[1]:]
                for i, answer in zip(batch, tok.batch_decode(new, skip_special_tokens=True)):
                    on_done(i, answer.strip(), None)
                bar.update(len(batch))

    MIN_SHARED_PREFIX = 16

    def _prefix_cache(self, ids: list[list[int]]):
        """(length, key-value cache) of the token prefix every prompt shares; (0, None) when too short to pay."""
        torch, _, net = self.load()
        first, n = ids[0], 0
        limit = min(len(x) for x in ids) - 1  # every row keeps at least one token of its own
        while n < limit and all(x[n] == first[n] for x in ids):
            n += 1
        if n < self.MIN_SHARED_PREFIX:
            return 0, None
        out = net(torch.tensor([first[:n]], device=net.device), use_cache=True)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        if not hasattr(cache, "layers"):  # a cache whose layers' keys and values cannot be copied per batch
            return 0, None
        return n, cache


def _static_cache(net, prefix, batch: int, length: int):
    """A key-value cache laid out once for the whole answer, holding the shared prefix (when there is one).

    Each new token is written in place (transformers' default cache concatenates every
    layer's keys and values at every token), and each row's own keys and values can be
    written where the batch's layout puts them (:func:`_prefill_each_row`).
    """
    from transformers import StaticCache

    cache = StaticCache(config=net.config, max_cache_len=length)
    if prefix is not None:
        for i, layer in enumerate(prefix.layers):
            cache.update(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1), i)
    return cache


def _plain_layers(cache) -> bool:
    """True when every layer of ``cache`` is a full-attention static layer (no sliding window, no linear
    attention): the layout :func:`_prefill_each_row` writes into."""
    from transformers.cache_utils import StaticLayer

    return all(type(layer) is StaticLayer for layer in cache.layers)


def _prefill_each_row(torch, net, cache, prefix, rows: list[list[int]], n_prefix: int, width: int) -> None:
    """Fill ``cache`` with every row's keys and values up to its last token, one row at a time.

    A batch's rows differ in length: computed together, the short ones are padded to the
    longest, and on the demo's prompts (a shared prefix of 399 tokens, then 20 to 265 of a
    row's own) three quarters of what the batch computed was padding. Each row is computed
    alone here, with the position ids the padded batch would give it, and its keys and
    values are written where the batch's layout puts them (``[prefix][padding][own]``).
    Only the last column is left, so ``generate`` starts with one token per row.
    """
    from transformers import DynamicCache

    layers: list[Any] = list(cache.layers)
    for j, row in enumerate(rows):
        own = row[n_prefix:-1]
        if not own:
            continue
        alone: Any = DynamicCache()
        if prefix is not None:
            for i, layer in enumerate(prefix.layers):
                alone.update(layer.keys, layer.values, i)
        positions = torch.arange(n_prefix, n_prefix + len(own), device=net.device)[None]
        net(input_ids=torch.tensor([own], device=net.device), position_ids=positions, use_cache=True,
            **{_cache_kwarg(): alone})
        at = torch.arange(width - 1 - len(own), width - 1, device=net.device)
        for target, layer in zip(layers, alone.layers):
            if not target.is_initialized:  # no shared prefix: the batch's first row lays the cache out
                shape = (len(rows), layer.keys.shape[1], 0, layer.keys.shape[-1])
                target.lazy_initialization(layer.keys.new_zeros(shape), layer.values.new_zeros(shape))
            target.keys[j].index_copy_(1, at, layer.keys[0, :, n_prefix:])
            target.values[j].index_copy_(1, at, layer.values[0, :, n_prefix:])
    for target in layers:
        target.cumulative_length.fill_(width - 1)


@functools.cache
def _cache_kwarg() -> str:
    """The name generate() takes a key-value cache under: ``cache`` in transformers 5, ``past_key_values`` before."""
    try:
        from transformers.generation.utils import ALL_CACHE_NAMES
    except ImportError:
        return "past_key_values"
    return "cache" if "cache" in ALL_CACHE_NAMES else "past_key_values"


def _prefixed_batch(torch, rows: list[list[int]], n_prefix: int, pad_id: int) -> dict:
    """``[shared prefix][left padding][own tokens]`` for each row, with the attention mask that skips the padding."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, r in enumerate(rows):
        own = r[n_prefix:]
        input_ids[j, :n_prefix] = torch.tensor(r[:n_prefix])
        input_ids[j, width - len(own):] = torch.tensor(own)
        mask[j, :n_prefix] = 1
        mask[j, width - len(own):] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _stop_ids(tok, net) -> list[int]:
    """Token ids that end an answer: the tokenizer's eos and the generation config's (end-of-turn tokens)."""
    stop = set()
    for v in (tok.eos_token_id, getattr(net.generation_config, "eos_token_id", None)):
        if isinstance(v, int):
            stop.add(v)
        elif isinstance(v, (list, tuple)):
            stop.update(int(x) for x in v)
    return sorted(stop)


def load_causal_lm(model: str, *, device: str | None = None, dtype: str = "auto"):
    """(torch, tokenizer, model) for anything :func:`~blueprint.models.sources.resolve_lm` takes, or a folder
    holding a peft adapter (over the base it records).

    The tokenizer pads on the left, as batched generation needs; a tokenizer without a
    pad token pads with its eos token.
    """
    import torch

    from blueprint.models import is_adapter
    from blueprint.models.sources import load_lm, resolve_lm

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtypes = {"auto": (torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported()
                       else torch.float32), "float32": torch.float32, "bfloat16": torch.bfloat16,
              "float16": torch.float16}
    torch_dtype = dtypes[check_choice(dtype, "dtype", dtypes)]
    path = Path(model)
    if path.is_dir() and is_adapter(path):
        tok, net = _load_adapter(path, torch_dtype)
    else:
        tok, net = load_lm(resolve_lm(model), torch_dtype)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    net.eval().to(device)
    return torch, tok, net


def _load_adapter(path: Path, dtype):
    """(tokenizer, merged model) for an adapter folder: its base rebuilt from ``blueprint_finetune.json`` when
    it records one (a packaged or GGUF base, checked by sha256), else from the adapter's own config."""
    import orjson
    from transformers import AutoTokenizer

    from blueprint.models.finetune import SUMMARY, require_models_extra
    from blueprint.models.sources import load_lm, resolve_lm, resolve_record

    require_models_extra(f"the adapter {path}")
    from peft import PeftConfig, PeftModel

    summary = orjson.loads((path / SUMMARY).read_bytes()) if (path / SUMMARY).is_file() else {}
    record = summary.get("base")
    source = resolve_record(record) if isinstance(record, dict) else \
        resolve_lm(PeftConfig.from_pretrained(str(path)).base_model_name_or_path)
    tok, base = load_lm(source, dtype)
    net = PeftModel.from_pretrained(base, str(path)).merge_and_unload()  # generation as fast as on the base
    if (path / "tokenizer_config.json").is_file():
        tok = AutoTokenizer.from_pretrained(str(path))
    return tok, net
