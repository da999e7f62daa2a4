"""What to capture from Jetstream, and how to stay connected: :class:`CollectConfig` and its inputs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from blueprint.actions import COLLECTIONS
from blueprint.atproto import read_did_file
from blueprint.errors import BadInputError
from blueprint.validation import check_scalar

PUBLIC_ENDPOINTS = ("wss://jetstream1.us-east.bsky.network/subscribe",
                    "wss://jetstream2.us-east.bsky.network/subscribe",
                    "wss://jetstream1.us-west.bsky.network/subscribe",
                    "wss://jetstream2.us-west.bsky.network/subscribe")
CURSOR = "_cursor.json"
QUARANTINE = "_quarantine.jsonl"
FILE = "jetstream.jsonl"


@dataclass(frozen=True)
class CollectConfig:
    """What to capture and how to stay connected."""

    endpoint: str = PUBLIC_ENDPOINTS[1]
    collections: tuple[str, ...] = tuple(sorted(COLLECTIONS))
    dids: tuple[str, ...] = ()
    until_us: int | None = None  # stop at the first event at or after this time (not written)
    max_events: int | None = None  # stop once the capture holds this many events (over all its runs)
    window_s: float = 5.0  # how far before the cursor a reconnection starts
    flush_s: float = 1.0  # data flushed (and the cursor written) at least this often
    backoff_s: float = 0.5  # first reconnection delay; doubled each failure, with jitter
    backoff_max_s: float = 60.0
    compress_level: int = 10

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise BadInputError(f"not a ws:// or wss:// URL: {self.endpoint!r}", field="endpoint")
        if len(self.dids) > 10_000:
            raise BadInputError(f"Jetstream takes at most 10,000 DIDs, got {len(self.dids)}", field="dids")
        for name in ("window_s", "flush_s", "backoff_s", "backoff_max_s"):
            check_scalar(getattr(self, name), name, min_val=0)
        check_scalar(self.max_events, "max_events", int, min_val=1, allow_none=True)
        check_scalar(self.compress_level, "compress_level", int, min_val=1, max_val=22)

    def url(self, cursor: int | None) -> str:
        """The subscribe URL: the endpoint with wantedCollections, wantedDids and cursor."""
        parts = urlsplit(self.endpoint)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [("wantedCollections", c) for c in self.collections]
        query += [("wantedDids", d) for d in self.dids]
        if cursor is not None:
            query.append(("cursor", str(cursor)))
        return urlunsplit((parts.scheme, parts.netloc, parts.path or "/subscribe", urlencode(query), ""))


def parse_time(value: str) -> int:
    """``--until``: unix microseconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    if value.isdigit():
        return int(value)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"neither unix microseconds nor an ISO 8601 time: {value!r}", field="until_us") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1_000_000)


def read_dids(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """DIDs to follow, one per line (blank lines and ``#`` comments skipped), first occurrence kept."""
    return tuple(dict.fromkeys(read_did_file(path, field="dids")))


