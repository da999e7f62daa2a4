"""AT Protocol identifiers: record keys (TIDs), content ids (CIDs), DIDs and ``at://`` URIs.

Shared by the readers (ingest), the collector, the privacy transforms, the PII
recognizers and the synthetic corpus, so each format is written down once:

- a TID is 13 characters of base32-sortable: 53 bits of microseconds since the
  epoch, then a 10-bit clock id (:func:`tid`, :func:`tid_time_us`);
- a DID is ``did:plc:`` + 24 characters of lower-case base32, or ``did:web:`` + a
  host name (:data:`DID_PATTERN`);
- an AT URI names a record: ``at://<did>/<collection>/<rkey>`` (:data:`AT_URI_RE`).

:func:`base_decode` is the one base-N decoder: TIDs use it, and so does the Base58
check of Bitcoin addresses (:mod:`blueprint.pii.checksums`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from blueprint.errors import BadInputError

TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
"""base32-sortable: the digits of a TID, in value order."""
DID_PLC_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
"""RFC 4648 base32, lower case: the characters of a ``did:plc`` identifier."""

_TID_INDEX = {c: i for i, c in enumerate(TID_ALPHABET)}

DID_PATTERN = r"did:(?:plc:[a-z2-7]{24}(?![a-z2-7])|web:[A-Za-z0-9.-]+(?:%3[Aa]\d+)?(?::[A-Za-z0-9._~%-]+)*)"
"""An AT Protocol DID (did:plc, did:web): the one pattern the scrubber, removal lists and the audit share."""
DID_RE = re.compile(DID_PATTERN)

AT_URI_RE = re.compile(
    r"^at://(?P<did>did:[a-z]+:[A-Za-z0-9._:%-]+)/(?P<collection>[A-Za-z0-9.-]+)/(?P<rkey>[A-Za-z0-9._:~-]+)$")
"""A record's AT URI, whole: groups ``did``, ``collection`` and ``rkey``."""


def base_decode(text: str, index: Mapping[str, int]) -> int | None:
    """The integer that ``text`` writes in the base of ``index`` (digit -> value); None on a foreign character."""
    base = len(index)
    n = 0
    for ch in text:
        i = index.get(ch)
        if i is None:
            return None
        n = n * base + i
    return n


def tid(time_us: int, clock_id: int) -> str:
    """A record key in the TID format: 53 bits of microseconds, then 10 of clock id."""
    n = (time_us << 10) | (clock_id & 0x3FF)
    return "".join(TID_ALPHABET[(n >> (60 - 5 * i)) & 31] for i in range(13))


def tid_time_us(rkey: str) -> int | None:
    """The microsecond timestamp inside a TID record key, or None when the key is not a TID."""
    if len(rkey) != 13:
        return None
    n = base_decode(rkey, _TID_INDEX)
    return None if n is None else n >> 10


def cid_of(obj: Any) -> str:
    """A CIDv1 string (dag-cbor, sha2-256, base32) over the object's canonical JSON.

    The shape of a real record CID, not its value: a real CID hashes the record's
    DAG-CBOR bytes. The synthetic corpus uses it for records no PDS ever stored.
    """
    digest = hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).digest()
    raw = bytes((0x01, 0x71, 0x12, 0x20)) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def read_did_file(path: str | os.PathLike[str], *, field: str, what: str = "file") -> list[str]:
    """DIDs from a file, one per line, in file order; blank lines and ``#`` comments are skipped.

    A missing file or a line that is not a DID is bad input, named by file, line and ``field``.
    """
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"no such {what}", path=p, field=field)
    out = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        did = line.split("#", 1)[0].strip()
        if not did:
            continue
        if not DID_RE.fullmatch(did):
            raise BadInputError(f"not a DID: {did[:60]!r}", path=p, line=lineno, field=field)
        out.append(did)
    return out
