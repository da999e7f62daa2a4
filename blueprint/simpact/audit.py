"""``blueprint audit``: check a built dataset for what must not be in it.

Hard checks (any failure makes the audit fail):
- ``residual_pii``: a second PII pass over every released text finds nothing;
- ``raw_identifiers`` (needs the raw input): no DID or handle seen in the raw input
  appears anywhere in the output: texts, ids, card, manifest, reports, file metadata;
- ``pseudonym_reuse``: no ``user_id`` appears in two threads;
- ``absolute_time``: no ISO date or epoch-like number in the metadata (card YAML,
  manifest, reports, Parquet and PNG metadata), and ``relative_integer_time`` values are ranks;
- ``k_anonymity``: the smallest persona cluster has at least ``min_cluster`` users.

Reported, not judged:
- ``verbatim_share`` (needs the raw input): the share of released texts equal to a raw
  post verbatim. The paper does not measure it; it is the share of texts a reader
  could search for on Bluesky to find their author.
- ``suspicious_text``: long digit runs and ``@word`` mentions left in texts, for a person to look at.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from blueprint._io import atomic_open, write_json
from blueprint.atproto import DID_RE
from blueprint.data import MANIFEST, read_manifest
from blueprint.errors import BadInputError
from blueprint.pii import Scrubber

log = logging.getLogger(__name__)

_HANDLE_TOKEN = re.compile(r"(?<![\w.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                           r"[A-Za-z][A-Za-z0-9-]{1,62}(?![\w-])")
_ISO = re.compile(r"\b(?:19|20)\d\d-[01]\d-[0-3]\d(?:[T ][0-2]\d:[0-5]\d)?")
_EPOCH = re.compile(r"(?<![\d.])(?:1[5-9]\d{8}(?:\d{3}){0,2})(?![\d.])")  # seconds, ms or us since 2017-ish
_DIGITS = re.compile(r"\d{9,}")
_MENTION = re.compile(r"(?<![\w<])@[A-Za-z][\w.-]{2,}")
_TAG = re.compile(r"<[A-Z_]+>")


@dataclass
class Check:
    name: str
    status: str  # pass, fail, info, skipped
    value: object
    detail: str
    examples: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "value": self.value, "detail": self.detail,
                "examples": self.examples}


def _full_configs(dataset: Path, manifest: dict) -> list[str]:
    return [f"{k}_clusters" for k in manifest["partitions"]]


def _rows(dataset: Path, config: str) -> Iterator[dict]:
    for f in sorted((dataset / "data" / config).glob("*.parquet")):
        yield from pq.read_table(f, columns=["id", "thread"]).to_pylist()


def _texts(dataset: Path, config: str) -> set[str]:
    out = set()
    for row in _rows(dataset, config):
        for m in row["thread"]:
            if m["text"]:
                out.add(m["text"])
    return out


def _metadata_blobs(dataset: Path) -> Iterator[tuple[str, str]]:
    """(where, text) for every piece of metadata: card, manifest, reports, Parquet key-values, PNG chunks."""
    for f in sorted(dataset.rglob("*")):
        if not f.is_file():
            continue
        rel = str(f.relative_to(dataset))
        if f.suffix in (".md", ".json"):
            yield rel, f.read_text(encoding="utf-8", errors="replace")
        elif f.suffix == ".parquet":
            meta = pq.ParquetFile(f).metadata
            kv = meta.metadata or {}
            yield rel, " ".join(f"{k.decode(errors='replace')}={v.decode(errors='replace')}" for k, v in kv.items())
            yield rel, str(meta.created_by)
        elif f.suffix == ".png":
            yield rel, _png_text(f.read_bytes())


def _png_text(data: bytes) -> str:
    """The text chunks (tEXt, iTXt, zTXt) and any tIME chunk of a PNG, as one string."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind in (b"tEXt", b"iTXt", b"zTXt"):
            out.append(data[pos + 8 : pos + 8 + n].decode("latin-1", "replace"))
        elif kind == b"tIME":
            out.append("tIME chunk present")
        pos += 12 + n
    return " ".join(out)


def raw_identifiers(paths: Sequence[str | os.PathLike[str]]) -> tuple[set[str], set[str], set[str]]:
    """DIDs, handles and post texts seen in raw input (Jetstream, CAR, getPostThread)."""
    from blueprint.simpact.ingest import discover, open_lines

    dids: set[str] = set()
    handles: set[str] = set()
    texts: set[str] = set()
    scrub = Scrubber(["USERNAME"])

    def collect(obj) -> None:
        stack = [obj]
        while stack:
            o = stack.pop()
            if isinstance(o, dict):
                for k, v in o.items():
                    if k == "handle" and isinstance(v, str):
                        handles.add(v.lower())
                    elif k == "text" and isinstance(v, str) and v:
                        texts.add(v)
                        for s in scrub.spans(v):
                            handles.add(v[s.start : s.end].lower())
                    stack.append(v)
            elif isinstance(o, list):
                stack.extend(o)
            elif isinstance(o, str) and "did:" in o:
                dids.update(DID_RE.findall(o))

    files, _ = discover(paths)
    for f in files:
        if f.format == "jetstream":
            with open_lines(f.path) as fh:
                for raw in fh:
                    try:
                        collect(orjson.loads(raw))
                    except orjson.JSONDecodeError:
                        dids.update(DID_RE.findall(raw.decode("utf-8", "replace")))
        elif f.format == "post_thread":
            collect(orjson.loads(f.path.read_bytes()))
        elif f.format == "car":
            from atproto import CAR

            car = CAR.from_bytes(f.path.read_bytes())
            for block in car.blocks.values():
                collect(block)
    return dids, handles, texts


def audit(dataset_dir: str | os.PathLike[str], *, raw: Sequence[str | os.PathLike[str]] = (),
          min_cluster: int = 10, max_examples: int = 5) -> dict:
    """Run every check; return the report (``ok`` is False when a hard check failed)."""
    dataset = Path(dataset_dir)
    manifest = read_manifest(dataset)
    config = _full_configs(dataset, manifest)[-1]
    texts = _texts(dataset, config)
    identifiers = raw_identifiers(raw) if raw else None
    threads = _ThreadStats(dataset, config)
    checks = [
        _residual_pii(texts, max_examples),
        _raw_identifiers(dataset, config, identifiers, max_examples),
        Check("pseudonym_reuse", "fail" if threads.reused else "pass", len(threads.reused),
              "user_ids that appear in more than one thread", sorted(threads.reused)[:max_examples]),
        _absolute_time(dataset, threads, max_examples),
        _k_anonymity(manifest, min_cluster),
        _verbatim_share(texts, identifiers[2] if identifiers else None),
        _suspicious_text(texts, max_examples),
    ]
    ok = all(c.status != "fail" for c in checks)
    return {"dataset": str(dataset.name), "ok": ok, "texts_checked": len(texts), "config": config,
            "checks": [c.to_dict() for c in checks]}


def _residual_pii(texts: set[str], max_examples: int) -> Check:
    """Hard: a second PII pass over every released text finds nothing."""
    scrub = Scrubber()
    residual = []
    for t in texts:
        for s in scrub.spans(t):
            residual.append(f"{s.type}: {t[max(0, s.start - 20) : s.end + 20]!r}")
    return Check("residual_pii", "fail" if residual else "pass", len(residual),
                 "PII spans a second pass finds in released texts", residual[:max_examples])


def _raw_identifiers(dataset: Path, config: str, identifiers: tuple[set[str], set[str], set[str]] | None,
                     max_examples: int) -> Check:
    """Hard: no DID or handle of the raw input in the ids, pseudonyms, texts or metadata of the output."""
    if identifiers is None:
        return Check("raw_identifiers", "skipped", None, "give --raw to check against the raw input")
    dids, handles, _ = identifiers
    haystack = []
    for row in _rows(dataset, config):
        haystack.append(row["id"])
        for m in row["thread"]:
            haystack.append(m["user_id"])
            if m["text"]:
                haystack.append(m["text"])
    haystack.extend(t for _, t in _metadata_blobs(dataset))
    leaked: set[str] = set()
    for blob in haystack:
        if "did:" in blob:
            leaked.update(d for d in DID_RE.findall(blob) if d in dids)
        for tok in _HANDLE_TOKEN.findall(_TAG.sub(" ", blob)):
            if tok.lower() in handles:
                leaked.add(tok.lower())
    return Check("raw_identifiers", "fail" if leaked else "pass", len(leaked),
                 f"DIDs and handles from the raw input ({len(dids)} DIDs, {len(handles)} handles) "
                 "found in the output", sorted(leaked)[:max_examples])


class _ThreadStats:
    """One pass over the released threads: the pseudonyms seen in more than one thread, and the range of the
    relative times."""

    def __init__(self, dataset: Path, config: str) -> None:
        seen: dict[str, str] = {}
        self.reused: set[str] = set()
        self.time_max = self.time_min = 0
        self.messages = 0
        for row in _rows(dataset, config):
            for uid in {m["user_id"] for m in row["thread"]}:
                other = seen.setdefault(uid, row["id"])
                if other != row["id"]:
                    self.reused.add(uid)
            for m in row["thread"]:
                self.time_max = max(self.time_max, m["relative_integer_time"])
                self.time_min = min(self.time_min, m["relative_integer_time"])
                self.messages += 1


def _absolute_time(dataset: Path, threads: _ThreadStats, max_examples: int) -> Check:
    """Hard: no ISO date or epoch-like number in the metadata, and relative times that are ranks."""
    stamps = []
    for where, blob in _metadata_blobs(dataset):
        for m in list(_ISO.finditer(blob)) + list(_EPOCH.finditer(blob)):
            stamps.append(f"{where}: {m.group()}")
        if "tIME chunk" in blob:
            stamps.append(f"{where}: PNG tIME chunk")
    if threads.time_min < 0 or threads.time_max > max(threads.messages, 1) * 10:
        stamps.append(f"relative_integer_time spans {threads.time_min}..{threads.time_max} for {threads.messages} "
                      "messages: not ranks")
    return Check("absolute_time", "fail" if stamps else "pass", len(stamps),
                 "ISO dates or epoch-like numbers in metadata; relative times that are not ranks",
                 stamps[:max_examples])


def _k_anonymity(manifest: dict, min_cluster: int) -> Check:
    """Hard: the smallest persona of any partition has at least ``min_cluster`` users."""
    smallest = min(min(v.values()) for v in manifest["users_per_cluster"].values())
    return Check("k_anonymity", "fail" if smallest < min_cluster else "pass", smallest,
                 f"users in the smallest cluster of any partition (at least {min_cluster} required)")


def _verbatim_share(texts: set[str], raw_texts: set[str] | None) -> Check:
    """Reported: the share of released texts equal to a raw post."""
    if raw_texts is None:
        return Check("verbatim_share", "skipped", None, "give --raw to measure it")
    verbatim = sum(1 for t in texts if t in raw_texts)
    share = verbatim / len(texts) if texts else 0.0
    return Check("verbatim_share", "info", round(share, 4),
                 f"{verbatim} of {len(texts)} released texts equal a raw post verbatim: re-identification "
                 "exposure, since a verbatim text can be searched for on Bluesky")


def _suspicious_text(texts: set[str], max_examples: int) -> Check:
    """Reported: long digit runs and @mentions left in texts, for a person to look at."""
    odd = [t for t in texts if _DIGITS.search(_TAG.sub(" ", t)) or _MENTION.search(t)]
    return Check("suspicious_text", "info", len(odd), "texts with 9+ digit runs or @mentions left, for a person "
                 "to look at", [t[:80] for t in odd[:max_examples]])


def write_audit(report: dict, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    out = Path(out_dir)
    if (out / MANIFEST).exists():
        raise BadInputError("the audit report must not go inside a dataset directory", path=out)
    paths = {"json": out / "audit.json", "markdown": out / "audit.md"}
    write_json(paths["json"], report)
    lines = [f"# Privacy audit of `{report['dataset']}`", "",
             f"**{'PASSED' if report['ok'] else 'FAILED'}** ({report['texts_checked']} distinct texts, config "
             f"`{report['config']}`)", "", "| check | status | value | what it measures |", "|---|---|---|---|"]
    for c in report["checks"]:
        lines.append(f"| {c['name']} | {c['status']} | {c['value']} | {c['detail']} |")
    for c in report["checks"]:
        if c["examples"]:
            lines += ["", f"## {c['name']}: examples", ""] + [f"- `{e}`" for e in c["examples"]]
    with atomic_open(paths["markdown"], "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return paths
