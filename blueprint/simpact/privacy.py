"""Privacy: PII scrubbing, relative time, keyed per-thread pseudonyms, and the secret.

- Text: every message's text goes through :class:`blueprint.simpact.pii.Scrubber`.
- Time: absolute times become ``relative_integer_time``, the rank of the message in
  time order over the whole dataset (ties broken by the message's record URI, so
  the order is total and the same on every rebuild); the same message has the same
  rank in every thread it appears in. The ranking is done on whole columns, in
  :mod:`blueprint.simpact.export`.
- Users: each DID becomes ``HMAC-SHA256(secret, DID || thread identity)`` in hex (64
  characters). Inside a thread the same user has one pseudonym; across threads the
  pseudonyms are unlinkable without the secret. A secret shorter than 32 bytes is
  refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Sequence

import orjson

from blueprint.errors import BadInputError
from blueprint.simpact.pii import DID_RE

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32


def load_secret(path: str | os.PathLike[str]) -> bytes:
    """Read a secret file; refuse one under :data:`MIN_SECRET_BYTES` bytes (surrounding whitespace ignored)."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such secret file", path=p, field="--secret-file")
    secret = p.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise BadInputError(f"the secret has {len(secret)} bytes; at least {MIN_SECRET_BYTES} are required "
                            "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')",
                            path=p, field="--secret-file")
    return secret


def create_secret(path: str | os.PathLike[str]) -> bytes:
    """Write a new random secret (64 hex characters) with mode 0600 and return it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret + b"\n")
    return secret


def thread_identity(message_uris: Sequence[str], action: str, time_us: int) -> bytes:
    """The canonical content that identifies a thread: its messages' records, its action and when it happened."""
    return orjson.dumps([list(message_uris), action, time_us])


def pseudonym(secret: bytes, did: str, identity: bytes) -> str:
    """HMAC-SHA256 over (DID, thread identity), 64 hex characters."""
    return hmac.new(secret, did.encode() + b"\x00" + identity, hashlib.sha256).hexdigest()




def read_removal_list(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """DIDs of users who asked to be removed: one per line; blank lines and ``#`` comments are skipped."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError("no such removal list", path=p, field="--remove-dids")
    out = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        did = line.split("#", 1)[0].strip()
        if not did:
            continue
        if not DID_RE.fullmatch(did):
            raise BadInputError(f"not a DID: {did[:60]!r}", path=p, line=lineno, field="--remove-dids")
        out.append(did)
    return tuple(sorted(set(out)))
