"""BERTScore through bert-score, with the reference side cached on disk.

bert-score embeds every candidate and every reference on each call. Scoring a second
submission against the same test split would embed the same references again, which
is half the work. This module runs bert-score's own pieces (``get_model``,
``get_tokenizer``, ``get_bert_embedding``, ``greedy_cos_idf``, with idf off, as
``bert_score.score`` does) and keeps each reference text's token embeddings and
weights in a cache keyed by text hash and model, so only the candidates are embedded
again. The numbers are bert-score's: the tests compare them with ``bert_score.score``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from blueprint.embedding import resolve_model, text_key
from blueprint.errors import BadInputError


class BertScorer:
    """BERTScore P, R and F1 with a local model; reference token embeddings cached under ``cache_dir``."""

    def __init__(self, model: str = "default", *, num_layers: int | None = None, batch_size: int = 64,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.model = resolve_model(model)
        config = json.loads((self.model.path / "config.json").read_text())
        self.num_layers = num_layers if num_layers is not None else int(config["num_hidden_layers"])
        self.batch_size = batch_size
        folder = f"{self.model.fingerprint[:32]}-L{self.num_layers}"
        self.cache_dir = None if cache_dir is None else Path(cache_dir) / folder
        self._memory: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self._shards_read: set[str] = set()
        self._loaded: tuple[Any, Any, defaultdict[int, float]] | None = None  # tokenizer, model, idf weights

    def _load(self):
        if self._loaded is None:
            from bert_score.utils import get_model, get_tokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            tok = get_tokenizer(str(self.model.path), use_fast=False)
            net = get_model(str(self.model.path), self.num_layers, all_layers=False)
            idf: defaultdict[int, float] = defaultdict(lambda: 1.0)
            idf[tok.sep_token_id] = 0
            idf[tok.cls_token_id] = 0
            self._loaded = (tok, net, idf)
        return self._loaded

    def _embed(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(token embeddings, idf weights) per text, as bert-score computes them, batch by batch."""
        import torch
        from bert_score.utils import get_bert_embedding

        tok, net, idf = self._load()
        out: list[tuple[np.ndarray, np.ndarray]] = [None] * len(texts)  # type: ignore[list-item]
        # longest first, as bert-score does, so batches pad little
        order = sorted(range(len(texts)), key=lambda i: len(texts[i].split(" ")), reverse=True)
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                emb, mask, w = get_bert_embedding([texts[i] for i in idx], net, tok, idf, device="cpu")
                for j, i in enumerate(idx):
                    n = int(mask[j].sum())
                    out[i] = (emb[j, :n].float().numpy().copy(), w[j, :n].float().numpy().copy())
        return out

    def _shard_paths(self) -> list[Path]:
        return sorted(self.cache_dir.glob("shard-*.npz")) if self.cache_dir and self.cache_dir.is_dir() else []

    def _read_cache(self) -> None:
        for path in self._shard_paths():
            if path.name in self._shards_read:
                continue
            with np.load(path) as z:
                keys, offsets, emb, idf = z["keys"], z["offsets"], z["emb"], z["idf"]
            for i, k in enumerate(keys):
                a, b = offsets[i], offsets[i + 1]
                self._memory[k.tobytes()] = (emb[a:b], idf[a:b])
            self._shards_read.add(path.name)

    def _write_cache(self, keys: list[bytes], stats: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if self.cache_dir is None or not keys:
            return
        from blueprint._io import atomic_path

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.cache_dir, 0o700)
        n = len(self._shard_paths())
        offsets = np.cumsum([0] + [len(e) for e, _ in stats])
        with atomic_path(self.cache_dir / f"shard-{n:05d}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16),
                     offsets=offsets, emb=np.concatenate([e for e, _ in stats]),
                     idf=np.concatenate([w for _, w in stats]))
        self._shards_read.add(f"shard-{n:05d}.npz")

    def stats(self, texts: Sequence[str], *, cache: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """Token embeddings and weights per text; from (and, with ``cache``, into) the disk cache."""
        keys = [text_key(t) for t in texts]
        if cache:
            self._read_cache()
        todo = [i for i, k in enumerate(keys) if k not in self._memory]
        uniq: dict[bytes, int] = {}
        for i in todo:
            uniq.setdefault(keys[i], i)
        if uniq:
            fresh = self._embed([texts[i] for i in uniq.values()])
            new_keys = list(uniq)
            for k, s in zip(new_keys, fresh):
                self._memory[k] = s
            if cache:
                self._write_cache(new_keys, fresh)
        return [self._memory[k] for k in keys]

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-pair P, R, F1. References go through the cache; candidates are embedded afresh."""
        import torch
        from bert_score.utils import greedy_cos_idf
        from torch.nn.utils.rnn import pad_sequence

        if len(candidates) != len(references):
            raise BadInputError(f"candidates and references differ in length: {len(candidates)} != {len(references)}",
                                field="candidates")
        if not len(candidates):
            return np.zeros(0), np.zeros(0), np.zeros(0)
        cands = [(c or "").strip() for c in candidates]
        refs = [(r or "").strip() for r in references]
        # bert-score scores a pair with an empty side 0 (and its empty-text path fails with transformers 5)
        full = [i for i in range(len(cands)) if cands[i] and refs[i]]
        result = np.zeros((len(cands), 3))
        if not full:
            return result[:, 0], result[:, 1], result[:, 2]
        cands = [cands[i] for i in full]
        refs = [refs[i] for i in full]
        ref_stats = self.stats(refs, cache=self.cache_dir is not None)
        hyp_stats = self.stats(cands, cache=False)

        def pad(stats):
            emb = [torch.from_numpy(e) for e, _ in stats]
            idf = [torch.from_numpy(w) for _, w in stats]
            lens = torch.tensor([len(e) for e in emb])
            mask = torch.arange(int(lens.max())).expand(len(lens), -1) < lens.unsqueeze(1)
            return pad_sequence(emb, batch_first=True, padding_value=2.0), mask, pad_sequence(idf, batch_first=True)

        out = []
        with torch.inference_mode():
            for s in range(0, len(cands), self.batch_size):
                p, r, f = greedy_cos_idf(*pad(ref_stats[s : s + self.batch_size]),
                                         *pad(hyp_stats[s : s + self.batch_size]), False)
                out.append(torch.stack((p, r, f), dim=-1))
        result[full] = torch.cat(out).double().numpy()
        return result[:, 0], result[:, 1], result[:, 2]
