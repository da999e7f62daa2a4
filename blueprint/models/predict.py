"""``blueprint predict``: a causal LM answers every row of a split, and the answers become a valid submission.

Two engines share one driver:

- :class:`TransformersEngine` runs any Hugging Face causal LM (a local folder, a Hub id,
  or a folder holding a peft LoRA adapter over its base) with batched generation: left
  padding, batches of prompts of similar length (longest first), the shared system
  prompt's keys and values computed once, greedy by default;
- :class:`OpenAIEngine` calls any OpenAI-compatible chat-completions server (vLLM, TGI,
  llama.cpp's server) with bounded concurrency and retries with exponential backoff and
  jitter. The API key is read from an environment variable, never from the command line,
  and never written anywhere.

The driver writes each raw answer as soon as it arrives to ``<out stem>.raw.jsonl``
(so ``--resume`` keeps finished rows after a kill, and parsing can be re-run without
the model), then parses every answer with :func:`blueprint.task.parse_output`. An
unusable answer gets the fallback action (by default the train split's most common
one), so the predictions file always covers the split. The counts of repairs, parse
errors and fallbacks go to ``<out stem>.report.json``.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import orjson

from blueprint._io import write_json, write_jsonl
from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.errors import BadInputError
from blueprint.leaderboard.submission import MAX_TEXT
from blueprint.progress import progress_bar
from blueprint.task import STYLES, Persona, load_personas, parse_output, to_messages

log = logging.getLogger(__name__)

OnDone = Callable[[int, "str | None", "str | None"], None]  # (index, raw answer, call error)


@dataclass(frozen=True)
class GenerationConfig:
    """How answers are generated. ``temperature`` 0 is greedy decoding."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise BadInputError(f"must be at least 1, got {self.max_new_tokens}", field="max_new_tokens")
        if self.temperature < 0:
            raise BadInputError(f"must be 0 (greedy) or more, got {self.temperature}", field="temperature")
        if not 0 < self.top_p <= 1:
            raise BadInputError(f"must be in (0, 1], got {self.top_p}", field="top_p")
        if self.batch_size < 1:
            raise BadInputError(f"must be at least 1, got {self.batch_size}", field="batch_size")


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

    def __init__(self, model: str, *, style: str = "chat", generation: GenerationConfig = GenerationConfig(),
                 device: str | None = None, dtype: str = "auto", sort_by_length: bool = True,
                 share_prefix: bool = True) -> None:
        if style not in STYLES:
            raise BadInputError(f"must be one of {STYLES}, got {style!r}", field="style")
        self.model_name = str(model)
        self.style = style
        self.gen = generation
        self.sort_by_length = sort_by_length
        self.share_prefix = share_prefix
        self._device = device
        self._dtype = dtype
        self._loaded: tuple[Any, Any, Any] | None = None
        self._alternating_said = False

    def describe(self) -> dict:
        return {"engine": self.name, "model": self.model_name, "style": self.style, "generation": asdict(self.gen)}

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
        mask and position ids skip the padding.
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
                if prefix_cache is None:
                    enc = tok.pad({"input_ids": [ids[i] for i in batch]}, padding=True, return_tensors="pt")
                    extra = {}
                else:
                    enc = _prefixed_batch(torch, [ids[i] for i in batch], n_prefix, tok.pad_token_id)
                    cache = copy.deepcopy(prefix_cache)
                    cache.batch_repeat_interleave(len(batch))
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
        if not hasattr(cache, "batch_repeat_interleave"):
            return 0, None
        return n, cache


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
    """(torch, tokenizer, model) for a local folder, a Hub id, or a folder holding a peft adapter.

    The tokenizer pads on the left, as batched generation needs; a tokenizer without a
    pad token pads with its eos token.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from blueprint.models import is_adapter

    hf_logging.disable_progress_bar()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = {"auto": (torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported()
                            else torch.float32), "float32": torch.float32, "bfloat16": torch.bfloat16,
                   "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise BadInputError(f"must be auto, float32, bfloat16 or float16, got {dtype!r}", field="dtype")
    path = Path(model)
    if path.exists() and not path.is_dir():
        raise BadInputError("expected a model folder, a Hub id or an adapter folder", path=path, field="model")
    try:
        if path.is_dir() and is_adapter(path):
            from peft import AutoPeftModelForCausalLM

            net = AutoPeftModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
            net = net.merge_and_unload()  # generation runs as fast as on the base model
            tok_src = path if (path / "tokenizer_config.json").is_file() else net.config.name_or_path
        else:
            net = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype)
            tok_src = model
        tok = AutoTokenizer.from_pretrained(str(tok_src))
    except OSError as exc:
        raise BadInputError(f"cannot load the model ({exc}); give a local folder, or a Hub id that is in the "
                            "local cache or reachable", field="model") from None
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    net.eval().to(device)
    return torch, tok, net


class OpenAIEngine:
    """An OpenAI-compatible server: ``POST {endpoint}/chat/completions`` (``/completions`` for plain prompts)."""

    name = "openai"
    RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

    def __init__(self, endpoint: str, model: str, *, style: str = "chat",
                 generation: GenerationConfig = GenerationConfig(), api_key_env: str | None = None,
                 concurrency: int = 8, retries: int = 4, backoff: float = 0.5, timeout: float = 120.0) -> None:
        if style not in STYLES:
            raise BadInputError(f"must be one of {STYLES}, got {style!r}", field="style")
        if concurrency < 1:
            raise BadInputError(f"must be at least 1, got {concurrency}", field="concurrency")
        if retries < 0:
            raise BadInputError(f"must be 0 or more, got {retries}", field="retries")
        if not endpoint.startswith(("http://", "https://")):
            raise BadInputError(f"expected an http(s) URL, got {endpoint!r}", field="endpoint")
        self.endpoint = endpoint.rstrip("/")
        for suffix in ("/chat/completions", "/completions"):
            if self.endpoint.endswith(suffix):
                self.endpoint = self.endpoint[: -len(suffix)]
        self.model_name = model
        self.style = style
        self.gen = generation
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self._api_key = None
        if api_key_env:
            self._api_key = os.environ.get(api_key_env)
            if not self._api_key:
                raise BadInputError(f"the environment variable {api_key_env} is not set", field="api_key_env")
        self.calls = Counter()
        self._lock = threading.Lock()

    def describe(self) -> dict:
        # the endpoint and model name, never the key
        return {"engine": self.name, "model": self.model_name, "endpoint": self.endpoint, "style": self.style,
                "generation": asdict(self.gen), "concurrency": self.concurrency, "retries": self.retries}

    def _request(self, prompt) -> tuple[str, dict]:
        body: dict[str, Any] = {"model": self.model_name, "max_tokens": self.gen.max_new_tokens,
                                "temperature": self.gen.temperature, "top_p": self.gen.top_p, "seed": self.gen.seed}
        if self.style == "chat":
            body["messages"] = prompt
            return f"{self.endpoint}/chat/completions", body
        body["prompt"] = prompt
        return f"{self.endpoint}/completions", body

    def _count(self, key: str) -> None:
        with self._lock:
            self.calls[key] += 1

    def call(self, client, prompt) -> tuple[str | None, str | None]:
        """One answer, retried on connection errors and on 408/409/425/429/5xx; (text, error)."""
        import httpx

        url, body = self._request(prompt)
        error = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._count("retries")
            wait = None
            try:
                r = client.post(url, json=body)
            except httpx.TransportError as exc:
                error = f"connection error ({type(exc).__name__})"
            else:
                if r.status_code == 200:
                    try:
                        choice = r.json()["choices"][0]
                        text = choice["message"]["content"] if self.style == "chat" else choice["text"]
                    except (ValueError, KeyError, IndexError, TypeError):
                        self._count("bad_responses")
                        return None, "the server's response has no choices[0] answer"
                    self._count("ok")
                    return text, None
                error = f"HTTP {r.status_code}"
                if r.status_code not in self.RETRY_STATUS:
                    break
                wait = _retry_after(r.headers.get("retry-after"))
            if attempt < self.retries:
                delay = wait if wait is not None else self.backoff * (2 ** attempt)
                time.sleep(min(delay, 60.0) * random.uniform(0.75, 1.25))
        self._count("failed")
        return None, error

    def generate(self, prompts: Sequence[Any], on_done: OnDone, *, progress: bool = False) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        with httpx.Client(headers=headers, timeout=self.timeout, limits=limits) as client, \
                progress_bar(total=len(prompts), desc="predict", unit="row", enabled=progress) as bar, \
                ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self.call, client, p): i for i, p in enumerate(prompts)}
            for fut in as_completed(futures):
                text, error = fut.result()
                on_done(futures[fut], text, error)
                bar.update(1)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


# --- the driver --------------------------------------------------------------------------------------------


def raw_path_for(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".raw.jsonl")


def report_path_for(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".report.json")


@dataclass(frozen=True)
class Fallback:
    """What an unusable answer becomes: an action, and a text when that action carries one."""

    action: str
    text: str | None = None
    source: str = "given"


def default_fallback(dataset_dir, config: str, action: str | None = None) -> Fallback:
    """The fallback: ``action`` when given, else the train split's most common action (and text)."""
    from blueprint.baselines.majority import MajorityBaseline
    from blueprint.data import read_split

    if action is not None and action not in ACTIONS:
        import difflib

        close = difflib.get_close_matches(action, ACTIONS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BadInputError(f"{action!r} is not an action.{hint}", field="fallback")
    m = MajorityBaseline().fit(read_split(dataset_dir, config, "train", columns=["action", "target_text"]))
    chosen, source = (m.action, "train majority") if action is None else (action, "given")
    if chosen in TEXT_ACTIONS and not m.text:
        raise BadInputError(f"the fallback {chosen!r} needs a text and the train split has none; choose a fallback "
                            "without text (--fallback like)", field="fallback")
    return Fallback(chosen, m.text if chosen in TEXT_ACTIONS else None, source)


def _read_raw(path: Path) -> dict[str, dict]:
    """The answers already in a raw file; a last line cut off by a kill is dropped (and cut from the file)."""
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    good = 0
    with open(path, "rb") as fh:
        data = fh.read()
    for line in data.splitlines(keepends=True):
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            break
        if not line.endswith(b"\n"):
            break
        done[row["id"]] = row
        good += len(line)
    if good < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good)
    return done


def _meta_path(raw: Path) -> Path:
    return raw.with_name(raw.name.replace(".raw.jsonl", ".raw.meta.json"))


def predict(engine, dataset_dir: str | os.PathLike[str], config: str, out: str | os.PathLike[str], *,
            split: str = "test", persona: bool = False, fallback: str | None = None, resume: bool = False,
            progress: bool = True) -> dict:
    """Answer every row of ``config``/``split`` with ``engine`` and write a valid predictions file to ``out``.

    Returns the report (also written to ``<out stem>.report.json``).
    """
    from blueprint.data import parse_config_name, read_split

    t0 = time.perf_counter()
    out = Path(out)
    rows = read_split(dataset_dir, config, split, columns=["id", "thread", "cluster_id"]).to_pylist()
    personas: dict[int, Persona] = load_personas(dataset_dir, parse_config_name(config)[0]) if persona else {}
    fb = default_fallback(dataset_dir, config, fallback)
    raw = raw_path_for(out)
    meta = {"dataset_config": config, "split": split, "persona": persona, **engine.describe()}
    if resume and raw.is_file():
        old = orjson.loads(_meta_path(raw).read_bytes()) if _meta_path(raw).is_file() else None
        if old != orjson.loads(orjson.dumps(meta)):
            raise BadInputError("the raw answers there were made with other settings (model, split, prompt or "
                                "generation); use another --out, or drop --resume to start over", path=raw)
        done = _read_raw(raw)
    else:
        done = {}
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_bytes(b"")
        write_json(_meta_path(raw), meta)
    todo = [i for i, r in enumerate(rows) if r["id"] not in done]
    log.info("predict: %d rows of %s/%s, %d already answered, %d to go (%s)", len(rows), config, split,
             len(rows) - len(todo), len(todo), engine.name)
    if todo:
        prompts = [to_messages(rows[i], persona=personas.get(rows[i]["cluster_id"]), style=engine.style)
                   for i in todo]
        lock = threading.Lock()
        with open(raw, "ab") as fh:
            def on_done(j: int, answer: str | None, error: str | None) -> None:
                line = orjson.dumps({"id": rows[todo[j]]["id"], "raw": answer, "call_error": error}) + b"\n"
                with lock:
                    fh.write(line)
                    fh.flush()

            engine.generate(prompts, on_done, progress=progress)
    report = finalize(rows, raw, out, fb)
    report.update(engine=engine.describe(), dataset_config=config, split=split, persona=persona,
                  seconds=round(time.perf_counter() - t0, 3), generated=len(todo))
    if isinstance(engine, OpenAIEngine):
        report["calls"] = dict(engine.calls)
    write_json(report_path_for(out), report)
    return report


def reparse(dataset_dir: str | os.PathLike[str], config: str, out: str | os.PathLike[str], *, split: str = "test",
            fallback: str | None = None) -> dict:
    """Parse the kept raw answers again (after a parser change, or with another fallback) without the model."""
    from blueprint.data import read_split

    raw = raw_path_for(out)
    if not raw.is_file():
        raise BadInputError("no raw answers to parse (run blueprint predict first)", path=raw)
    rows = read_split(dataset_dir, config, split, columns=["id", "thread"]).to_pylist()
    report = finalize(rows, raw, Path(out), default_fallback(dataset_dir, config, fallback))
    report.update(dataset_config=config, split=split, reparsed=True)
    write_json(report_path_for(out), report)
    return report


def finalize(rows: list[dict], raw: Path, out: Path, fb: Fallback) -> dict:
    """Parse the raw answers of ``rows`` into ``out`` (atomically), with the fallback where unusable."""
    answers = _read_raw(raw)
    missing = [r["id"] for r in rows if r["id"] not in answers]
    if missing:
        raise BadInputError(f"{len(missing)} rows have no raw answer (e.g. {missing[0]}); run predict with --resume",
                            path=raw)
    repairs: Counter = Counter()
    errors: Counter = Counter()
    preds, fallbacks = [], 0
    for r in rows:
        a = answers[r["id"]]
        parsed = parse_output(a["raw"], has_context=len(r["thread"]) > 1)
        repairs.update(parsed.repairs)
        if a.get("call_error"):
            errors[f"call failed: {a['call_error']}"] += 1
        elif parsed.error:
            errors[parsed.error] += 1
        text = parsed.text
        if parsed.action in TEXT_ACTIONS and text is not None and len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
            repairs["cut_long_text"] += 1
        if parsed.action in TEXT_ACTIONS and (text is None or not text.strip()):
            if not (a.get("call_error") or parsed.error):
                errors[f"a {parsed.action} without its text"] += 1
            preds.append({"id": r["id"], "action": fb.action, "text": fb.text})
            fallbacks += 1
        elif parsed.action is None:
            fallbacks += 1
            preds.append({"id": r["id"], "action": fb.action, "text": fb.text})
        else:
            preds.append({"id": r["id"], "action": parsed.action, "text": text})
    write_jsonl(out, preds)
    n = len(rows)
    actions = Counter(p["action"] for p in preds)
    return {"rows": n, "parsed": n - fallbacks, "fallbacks": fallbacks,
            "fallback_rate": round(fallbacks / n, 6) if n else 0.0,
            "fallback": asdict(fb), "repairs": dict(sorted(repairs.items())), "errors": dict(sorted(errors.items())),
            "predicted_actions": {a: actions.get(a, 0) for a in ACTIONS},
            "predictions": str(out), "raw_answers": str(raw)}
