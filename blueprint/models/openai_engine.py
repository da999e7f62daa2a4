"""The OpenAI-compatible engine: any chat-completions server (vLLM, TGI, llama.cpp's server, ``transformers serve``).

Bounded concurrency, retries with exponential backoff and jitter (and the server's
``Retry-After``). The API key is read from an environment variable, never from the
command line, and never written anywhere.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from typing import Any

from blueprint.errors import BadInputError
from blueprint.models.engine import GenerationConfig, OnDone
from blueprint.progress import progress_bar
from blueprint.task import STYLES
from blueprint.validation import check_choice, check_scalar


class OpenAIEngine:
    """An OpenAI-compatible server: ``POST {endpoint}/chat/completions`` (``/completions`` for plain prompts)."""

    name = "openai"
    RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

    def __init__(self, endpoint: str, model: str, *, style: str = "chat",
                 generation: GenerationConfig | None = None, api_key_env: str | None = None,
                 concurrency: int = 8, retries: int = 4, backoff: float = 0.5, timeout: float = 120.0) -> None:
        check_choice(style, "style", STYLES)
        check_scalar(concurrency, "concurrency", int, min_val=1)
        check_scalar(retries, "retries", int, min_val=0)
        if not endpoint.startswith(("http://", "https://")):
            raise BadInputError(f"expected an http(s) URL, got {endpoint!r}", field="endpoint")
        self.endpoint = endpoint.rstrip("/")
        for suffix in ("/chat/completions", "/completions"):
            if self.endpoint.endswith(suffix):
                self.endpoint = self.endpoint[: -len(suffix)]
        self.model_name = model
        self.style = style
        self.gen = generation or GenerationConfig()
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self._api_key = None
        if api_key_env:
            self._api_key = os.environ.get(api_key_env)
            if not self._api_key:
                raise BadInputError(f"the environment variable {api_key_env} is not set", field="api_key_env")
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def describe(self) -> dict:
        # the endpoint and model name, never the key
        return {"engine": self.name, "model": self.model_name, "endpoint": self.endpoint, "style": self.style,
                "generation": asdict(self.gen), "concurrency": self.concurrency, "retries": self.retries}

    def stats(self) -> dict:
        """The calls made: answered, retried, failed, and answers without a choice to read."""
        return {"calls": dict(self.calls)}

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


