"""A synthetic Jetstream v1 corpus with latent personas and planted PII.

``blueprint synth`` writes a directory in the paper's firehose layout
(``bluesky-YYYY-MM/DD/HH/jetstream.jsonl``) whose lines have the same keys and shapes
as real Jetstream v1 commits: ``did``, ``time_us``, ``kind`` and
``commit.{rev, operation, collection, rkey, record, cid}``, with strong refs
(``uri`` + ``cid``) for replies, quotes, likes and reposts.

Users belong to latent personas (:mod:`blueprint.synth.personas`). Each persona has
its own mix of all 13 actions and its own vocabulary and style, so the persona
stage can be checked against the truth in ``_meta/users.jsonl``. A share of texts
carries planted PII; ``_meta/planted_pii.jsonl`` gives every PII span present in
every text, with its type, so scrubbing can be scored for recall and precision.
``corrupt_rate`` mixes in malformed lines, listed in ``_meta/corrupt_lines.jsonl``.

The output is a pure function of the config: same seed, same bytes.
Files and folders whose names start with ``_`` or ``.`` are metadata; the ingest
stage skips them when it walks a directory.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from blueprint._io import atomic_dir, write_json, write_jsonl
from blueprint.actions import ACTIONS, BLOCK, FOLLOW, LIKE, POST, REPOST
from blueprint.errors import BadInputError
from blueprint.synth import pii as pii_gen
from blueprint.synth.personas import FACTS, FRENCH_COMMON, PERSONAS, QUOTE_OPENERS, REPLY_OPENERS, Persona

log = logging.getLogger(__name__)

__all__ = ["SynthConfig", "SynthResult", "synthesize"]

META_DIR = "_meta"
FORMAT_VERSION = 2  # bump when the same config would give other bytes
CORRUPTIONS = ("truncated", "invalid_utf8", "missing_field", "mistyped_field", "not_json", "self_reply",
               "reply_cycle")
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_HOUR_US = 3_600_000_000
# sentence starts that are ordinary words, lower-cased after an opener like "Honestly,"
_COMMON_STARTS = frozenset({"The", "Our", "Every", "This", "A", "Lower", "Public", "Clean", "Common", "Dental",
                            "Housing", "Renters", "Zoning", "Non-market", "Co-ops", "First-time", "Workers",
                            "Nurses", "Solidarity", "Minimum", "Steady", "Axing", "Supply", "Vote", "Pharmacare"})


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Every field is validated; the output depends on nothing else."""

    users: int = 1000
    seed: int = 0
    personas: int = len(PERSONAS)
    events_per_user: float = 30.0
    pii_rate: float = 0.1
    corrupt_rate: float = 0.0
    days: float = 5.0
    start: str = "2025-03-23T00:00:00+00:00"
    foreign_rate: float = 0.03
    noise_rate: float = 0.02
    compress: str | None = None

    def __post_init__(self) -> None:
        def bad(name: str, msg: str) -> BadInputError:
            return BadInputError(msg, field=name)

        if self.users < 2:
            raise bad("users", f"must be at least 2, got {self.users}")
        if not 1 <= self.personas <= len(PERSONAS):
            raise bad("personas", f"must be between 1 and {len(PERSONAS)}, got {self.personas}")
        if self.events_per_user <= 0:
            raise bad("events_per_user", f"must be positive, got {self.events_per_user}")
        for name in ("pii_rate", "corrupt_rate", "foreign_rate", "noise_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise bad(name, f"must be between 0 and 1, got {value}")
        if self.days <= 0:
            raise bad("days", f"must be positive, got {self.days}")
        if self.compress not in (None, "gz", "zst"):
            raise bad("compress", f"must be one of None, 'gz', 'zst', got {self.compress!r}")
        try:
            datetime.fromisoformat(self.start)
        except ValueError:
            raise bad("start", f"not an ISO 8601 date: {self.start!r}") from None


@dataclass
class SynthResult:
    """Where the corpus went and what it holds."""

    out_dir: Path
    files: list[str]
    counts: dict[str, Any]


# --- AT Protocol identifiers -------------------------------------------------


def tid(time_us: int, clock_id: int) -> str:
    """A record key in the AT Protocol TID format: 53 bits of microseconds, 10 of clock id."""
    n = (time_us << 10) | (clock_id & 0x3FF)
    return "".join(_TID_ALPHABET[(n >> (60 - 5 * i)) & 31] for i in range(13))


def cid_of(obj: Any) -> str:
    """A CIDv1 (dag-cbor, sha2-256) over the object's canonical JSON: the shape of real record CIDs."""
    digest = hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).digest()
    raw = bytes((0x01, 0x71, 0x12, 0x20)) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _iso(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- the simulated world -----------------------------------------------------


@dataclass
class _User:
    did: str
    handle: str
    persona: int
    activity: float
    posts: list[int] = field(default_factory=list)  # indices into _World.posts
    likes: dict[str, dict] = field(default_factory=dict)  # rkey -> subject ref
    reposts: dict[str, dict] = field(default_factory=dict)
    follows: dict[str, str] = field(default_factory=dict)  # rkey -> subject did
    blocks: dict[str, str] = field(default_factory=dict)


@dataclass
class _Post:
    uri: str
    cid: str
    author: int
    rkey: str
    root: dict
    text: str
    spans: list[tuple[str, int, int, str]]
    lang: list[str] | None
    is_reply: bool
    deleted: bool = False


@dataclass
class _Line:
    time_us: int
    event: dict | None  # None for a corrupt line carried as raw bytes
    raw: bytes | None = None
    spans: list[tuple[str, int, int, str]] = field(default_factory=list)
    uri: str | None = None
    corruption: str | None = None


class _Text:
    """Builds a text from parts, keeping the character spans of planted PII."""

    def __init__(self, lowercase: bool = False) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[str, int, int, str]] = []
        self.lowercase = lowercase
        self._len = 0

    def add(self, text: str, pii: tuple[str, str] | None = None) -> None:
        """Append ``text``; with ``pii=(type, value)``, ``value`` occurs in ``text`` and is recorded.

        A lower-case persona writes its own words in lower case, never a planted value:
        lowering would break checksums and change what was planted.
        """
        if not text:
            return
        if self.parts:
            self.parts.append(" ")
            self._len += 1
        if pii is not None:
            kind, value = pii
            at = text.index(value)
            before, after = text[:at], text[at + len(value) :]
            if self.lowercase:
                before, after = before.lower(), after.lower()
            text = before + value + after
            self.spans.append((kind, self._len + len(before), self._len + len(before) + len(value), value))
        elif self.lowercase:
            text = text.lower()
        self.parts.append(text)
        self._len += len(text)

    def build(self) -> tuple[str, list[tuple[str, int, int, str]]]:
        return "".join(self.parts), list(self.spans)


class _World:
    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.personas: tuple[Persona, ...] = PERSONAS[: cfg.personas]
        self.t0 = int(datetime.fromisoformat(cfg.start).astimezone(timezone.utc).timestamp() * 1e6)
        self.now = self.t0
        self.users: list[_User] = []
        self.posts: list[_Post] = []
        self.live_recent: list[int] = []  # recent post indices, targets for reactions
        self.recent_replies: list[int] = []
        self.lines: list[_Line] = []
        self.action_counts: Counter[str] = Counter()
        self.clock = 0
        self._make_users()
        pw = [[p.weights[a] for a in ACTIONS] for p in self.personas]
        self.action_cum = [self._cum(w) for w in pw]

    @staticmethod
    def _cum(weights: list[float]) -> list[float]:
        total, out = 0.0, []
        for w in weights:
            total += w
            out.append(total)
        return out

    def _make_users(self) -> None:
        rng = self.rng
        seen: set[str] = set()
        # unequal persona sizes, as in real data
        shares = [rng.uniform(0.6, 1.4) for _ in self.personas]
        for _ in range(self.cfg.users):
            did = pii_gen.random_did_plc(rng)
            while did in seen:
                did = pii_gen.random_did_plc(rng)
            seen.add(did)
            handle = pii_gen.bsky_handle(rng) if rng.random() < 0.8 else pii_gen.custom_domain(rng)
            persona = rng.choices(range(len(self.personas)), weights=shares)[0]
            activity = math.exp(rng.gauss(0.0, 0.6))
            self.users.append(_User(did, handle, persona, activity))
        self.user_cum = self._cum([u.activity for u in self.users])

    # -- helpers --

    def _next_clock(self) -> int:
        self.clock = (self.clock + 1) & 0x3FF
        return self.clock

    def _commit(self, user: _User, op: str, collection: str, rkey: str, record: dict | None) -> dict:
        commit: dict[str, Any] = {"rev": tid(self.now, self._next_clock()), "operation": op,
                                  "collection": collection, "rkey": rkey}
        if record is not None:
            commit["record"] = record
            commit["cid"] = cid_of(record)
        return {"did": user.did, "time_us": self.now, "kind": "commit", "commit": commit}

    def _created(self) -> tuple[int, str]:
        created = self.now - self.rng.randint(50_000, 3_000_000)
        return created, _iso(created)

    def _emit(self, event: dict, spans=(), uri: str | None = None, action: str | None = None) -> None:
        self.lines.append(_Line(self.now, event, spans=list(spans), uri=uri))
        if action:
            self.action_counts[action] += 1

    # -- texts --

    def _sentence(self, p: Persona) -> str:
        rng = self.rng
        subject = rng.choice(p.subjects)
        s = f"{subject} {rng.choice(p.verbs)} {rng.choice(p.objects)}."
        if rng.random() < 0.3:
            opener = rng.choice(p.openers)
            if opener[-1] not in ".:!?" and subject.split()[0] in _COMMON_STARTS:
                s = s[0].lower() + s[1:]
            s = f"{opener} {s}"
        if rng.random() < p.shout_rate:
            s = s.upper()
        return s

    def _compose(self, p: Persona, lead: str | None = None, mention: str | None = None) -> tuple[str, list, list[str] | None]:
        rng, cfg = self.rng, self.cfg
        out = _Text(lowercase=p.lowercase)
        lang: list[str] | None = ["en"]
        if mention is not None:
            out.add(f"@{mention}", ("USERNAME", mention))
        if lead:
            out.add(lead)
        french = rng.random() < p.french_rate
        if french:
            lang = ["fr"]
            pool = p.french + FRENCH_COMMON if p.french else FRENCH_COMMON
            for _ in range(rng.randint(*p.sentences)):
                out.add(rng.choice(pool))
        else:
            n = rng.randint(*p.sentences)
            for i in range(n):
                out.add(self._sentence(p))
                if rng.random() < p.fact_rate / n:
                    out.add(rng.choice(FACTS))
            if rng.random() < 0.35:
                out.add(rng.choice(p.closers))
        if rng.random() < p.link_rate:
            value = pii_gen.url(rng)
            out.add(rng.choice(pii_gen.CONTEXTS["URL"]).replace("{v}", value), ("URL", value))
        if rng.random() < cfg.pii_rate:
            kind = rng.choice(pii_gen.PII_TYPES)
            value = pii_gen.GENERATORS[kind](rng)
            out.add(rng.choice(pii_gen.CONTEXTS[kind]).replace("{v}", value), (kind, value))
        if rng.random() < p.emoji_rate:
            out.add("".join(rng.choice(p.emoji) for _ in range(rng.randint(1, 3))))
        if rng.random() < p.hashtag_rate:
            out.add(" ".join(rng.sample(p.hashtags, k=min(len(p.hashtags), rng.randint(1, 3)))))
        text, spans = out.build()
        if not french:
            r = rng.random()
            if r < 0.03:
                lang = None
            elif r < 0.05:
                lang = ["en", "fr"]
        return text, spans, lang

    # -- target choice --

    def _pick_post(self, user_idx: int, *, replies: bool = False, own_ok: bool = False) -> _Post | None:
        rng = self.rng
        pool = self.recent_replies if replies and self.recent_replies else self.live_recent
        if not pool:
            return None
        me = self.users[user_idx]
        fallback = None
        for _ in range(8):
            post = self.posts[pool[int(len(pool) * (1 - rng.random() ** 2)) - 1]]  # favour recent posts
            if post.deleted or (post.author == user_idx and not own_ok):
                continue
            fallback = fallback or post
            if self.users[post.author].persona == me.persona or rng.random() < 0.35:
                return post
        return fallback

    def _foreign_ref(self) -> dict:
        did = pii_gen.random_did_plc(self.rng)
        uri = f"at://{did}/{POST}/{tid(self.now - self.rng.randint(10**6, 10**10), self._next_clock())}"
        return {"cid": cid_of(uri), "uri": uri}

    def _pick_user(self, user_idx: int, *, same_persona: bool) -> int | None:
        rng = self.rng
        me = self.users[user_idx]
        for _ in range(10):
            if not self.live_recent:
                return None
            other = self.posts[rng.choice(self.live_recent)].author
            if other == user_idx:
                continue
            if (self.users[other].persona == me.persona) == same_persona or rng.random() < 0.2:
                return other
        return None

    # -- actions --

    def _record_post(self, user_idx: int, text: str, spans: list, lang: list[str] | None,
                     reply_to: _Post | None = None, quote_of: dict | None = None, media: bool = False) -> _Post:
        user = self.users[user_idx]
        created_us, created = self._created()
        rkey = tid(created_us, self._next_clock())
        record: dict[str, Any] = {"$type": POST, "createdAt": created}
        if lang is not None:
            record["langs"] = lang
        if reply_to is not None:
            parent = {"cid": reply_to.cid, "uri": reply_to.uri}
            record["reply"] = {"parent": parent, "root": reply_to.root}
        if quote_of is not None:
            if media:
                image = {"alt": "", "image": {"$type": "blob", "ref": {"$link": cid_of(text)},
                                               "mimeType": "image/jpeg", "size": 100_000 + len(text)}}
                record["embed"] = {"$type": "app.bsky.embed.recordWithMedia",
                                   "media": {"$type": "app.bsky.embed.images", "images": [image]},
                                   "record": {"$type": "app.bsky.embed.record", "record": quote_of}}
            else:
                record["embed"] = {"$type": "app.bsky.embed.record", "record": quote_of}
        record["text"] = text
        event = self._commit(user, "create", POST, rkey, record)
        uri = f"at://{user.did}/{POST}/{rkey}"
        cid = event["commit"]["cid"]
        root = reply_to.root if reply_to is not None else {"cid": cid, "uri": uri}
        post = _Post(uri, cid, user_idx, rkey, root, text, spans, lang, reply_to is not None)
        idx = len(self.posts)
        self.posts.append(post)
        user.posts.append(idx)
        self.live_recent.append(idx)
        if len(self.live_recent) > 600:
            del self.live_recent[:100]
        if reply_to is not None:
            self.recent_replies.append(idx)
            if len(self.recent_replies) > 300:
                del self.recent_replies[:50]
        action = "reply" if reply_to is not None else ("quote" if quote_of is not None else "post")
        self._emit(event, spans, uri, action)
        return post

    def do(self, user_idx: int, action: str) -> None:
        rng = self.rng
        user = self.users[user_idx]
        persona = self.personas[user.persona]
        if action == "reply":
            parent = self._pick_post(user_idx, replies=rng.random() < 0.5, own_ok=rng.random() < 0.1)
            if parent is None:
                return self.do(user_idx, "post")
            mention = self.users[parent.author].handle if rng.random() < 0.3 else None
            text, spans, lang = self._compose(persona, lead=rng.choice(REPLY_OPENERS), mention=mention)
            self._record_post(user_idx, text, spans, lang, reply_to=parent)
        elif action == "quote":
            target = self._pick_post(user_idx)
            if target is None:
                return self.do(user_idx, "post")
            text, spans, lang = self._compose(persona, lead=rng.choice(QUOTE_OPENERS))
            self._record_post(user_idx, text, spans, lang, quote_of={"cid": target.cid, "uri": target.uri},
                              media=rng.random() < 0.3)
        elif action in ("post_update", "post_delete"):
            mine = [i for i in user.posts[-20:] if not self.posts[i].deleted]
            if not mine:
                return self.do(user_idx, "post")
            post = self.posts[rng.choice(mine)]
            if action == "post_delete":
                post.deleted = True
                self._emit(self._commit(user, "delete", POST, post.rkey, None), (), post.uri, action)
                return
            extra, extra_spans, _ = self._compose(persona)
            text = f"{post.text} Edit: {extra}"
            shift = len(post.text) + len(" Edit: ")
            spans = post.spans + [(k, a + shift, b + shift, v) for k, a, b, v in extra_spans]
            created_us, created = self._created()
            record: dict[str, Any] = {"$type": POST, "createdAt": created}
            if post.lang is not None:
                record["langs"] = post.lang
            record["text"] = text
            post.text, post.spans = text, spans
            event = self._commit(user, "update", POST, post.rkey, record)
            post.cid = event["commit"]["cid"]
            self._emit(event, spans, post.uri, action)
        elif action in ("like", "repost"):
            if rng.random() < self.cfg.foreign_rate:
                ref = self._foreign_ref()
            else:
                target = self._pick_post(user_idx)
                if target is None:
                    return self.do(user_idx, "post")
                ref = {"cid": target.cid, "uri": target.uri}
            collection = LIKE if action == "like" else REPOST
            created_us, created = self._created()
            rkey = tid(created_us, self._next_clock())
            record = {"$type": collection, "createdAt": created, "subject": ref}
            (user.likes if action == "like" else user.reposts)[rkey] = ref
            self._emit(self._commit(user, "create", collection, rkey, record), (), None, action)
        elif action in ("unlike", "unrepost"):
            store = user.likes if action == "unlike" else user.reposts
            if not store:
                return self.do(user_idx, "like" if action == "unlike" else "repost")
            rkey = rng.choice(list(store))
            del store[rkey]
            collection = LIKE if action == "unlike" else REPOST
            self._emit(self._commit(user, "delete", collection, rkey, None), (), None, action)
        elif action in ("follow", "block"):
            store = user.follows if action == "follow" else user.blocks
            other = self._pick_user(user_idx, same_persona=action == "follow")
            if other is None or self.users[other].did in store.values():
                return self.do(user_idx, "post")
            collection = FOLLOW if action == "follow" else BLOCK
            created_us, created = self._created()
            rkey = tid(created_us, self._next_clock())
            store[rkey] = self.users[other].did
            record = {"$type": collection, "createdAt": created, "subject": self.users[other].did}
            self._emit(self._commit(user, "create", collection, rkey, record), (), None, action)
        elif action in ("unfollow", "unblock"):
            store = user.follows if action == "unfollow" else user.blocks
            if not store:
                return self.do(user_idx, "follow" if action == "unfollow" else "block")
            rkey = rng.choice(list(store))
            del store[rkey]
            collection = FOLLOW if action == "unfollow" else BLOCK
            self._emit(self._commit(user, "delete", collection, rkey, None), (), None, action)
        else:  # post
            text, spans, lang = self._compose(persona)
            self._record_post(user_idx, text, spans, lang)
        return None

    def noise(self) -> None:
        """An event that carries no action: identity, account, profile, or another app's record."""
        rng = self.rng
        user = self.users[rng.randrange(len(self.users))]
        kind = rng.random()
        if kind < 0.25:
            event = {"did": user.did, "time_us": self.now, "kind": "identity",
                     "identity": {"did": user.did, "handle": user.handle, "seq": self.now // 1000,
                                  "time": _iso(self.now)}}
        elif kind < 0.5:
            event = {"did": user.did, "time_us": self.now, "kind": "account",
                     "account": {"active": True, "did": user.did, "seq": self.now // 1000, "time": _iso(self.now)}}
        elif kind < 0.75:
            event = self._commit(user, "update", "app.bsky.actor.profile", "self",
                                 {"$type": "app.bsky.actor.profile", "displayName": user.handle.split(".")[0]})
        else:
            created_us, created = self._created()
            event = self._commit(user, "create", "fm.teal.alpha.feed.play", tid(created_us, self._next_clock()),
                                 {"$type": "fm.teal.alpha.feed.play", "trackName": "Song", "playedTime": created})
        self._emit(event)

    def run(self) -> None:
        rng, cfg = self.rng, self.cfg
        n_events = max(1, round(cfg.users * cfg.events_per_user))
        mean_gap = cfg.days * 86_400e6 / n_events
        # everyone posts once early on, so every user has a voice to cluster on
        order = list(range(len(self.users)))
        rng.shuffle(order)
        for i in order:
            self.now += max(1, int(rng.expovariate(1.0) * mean_gap / 4))
            self.do(i, "post")
        remaining = max(0, n_events - len(order))
        for _ in range(remaining):
            self.now += max(1, int(rng.expovariate(1.0) * mean_gap))
            if rng.random() < cfg.noise_rate:
                self.noise()
                continue
            u = rng.choices(range(len(self.users)), cum_weights=self.user_cum)[0]
            action = rng.choices(ACTIONS, cum_weights=self.action_cum[self.users[u].persona])[0]
            self.do(u, action)


# --- corruption ---------------------------------------------------------------


def _corrupt(rng: random.Random, line: _Line, world: _World) -> list[_Line]:
    """Malformed lines to insert after ``line``; the valid stream is never altered."""
    kind = rng.choice(CORRUPTIONS)
    raw = orjson.dumps(line.event) if line.event is not None else b"{}"
    t = line.time_us
    if kind == "truncated":
        out = [raw[: rng.randint(1, len(raw) - 1)]]
    elif kind == "invalid_utf8":
        cut = rng.randint(1, len(raw) - 2)
        out = [raw[:cut] + b"\xff\xfe" + raw[cut:]]
    elif kind == "missing_field":
        event = orjson.loads(raw)
        if event.get("kind") == "commit" and rng.random() < 0.5:
            del event["commit"][rng.choice(["collection", "rkey", "operation"])]
        else:
            del event[rng.choice(["did", "time_us", "kind"])]
        out = [orjson.dumps(event)]
    elif kind == "mistyped_field":
        event = orjson.loads(raw)
        choice = rng.random()
        if choice < 0.4:
            event["time_us"] = str(event["time_us"])
        elif choice < 0.7 and event.get("kind") == "commit":
            event["commit"] = [event["commit"]]
        else:
            event["did"] = 12345
        out = [orjson.dumps(event)]
    elif kind == "not_json":
        out = [rng.choice((b"<html>502 Bad Gateway</html>", b"null", b"[1, 2, 3]", b"\x00\x01\x02", b"{{}"))]
    elif kind == "self_reply":
        user = world.users[rng.randrange(len(world.users))]
        rkey = tid(t - 1, 1023)
        uri = f"at://{user.did}/{POST}/{rkey}"
        ref = {"cid": cid_of(uri), "uri": uri}
        record = {"$type": POST, "createdAt": _iso(t), "langs": ["en"], "text": "Replying to myself.",
                  "reply": {"parent": ref, "root": ref}}
        event = {"did": user.did, "time_us": t, "kind": "commit",
                 "commit": {"rev": tid(t, 1023), "operation": "create", "collection": POST, "rkey": rkey,
                            "record": record, "cid": ref["cid"]}}
        out = [orjson.dumps(event)]
    else:  # reply_cycle: two posts, each the other's parent
        user = world.users[rng.randrange(len(world.users))]
        rkeys = [tid(t - 2, 1022), tid(t - 3, 1022)]
        uris = [f"at://{user.did}/{POST}/{r}" for r in rkeys]
        out = []
        for i in (0, 1):
            ref = {"cid": cid_of(uris[1 - i]), "uri": uris[1 - i]}
            record = {"$type": POST, "createdAt": _iso(t), "langs": ["en"], "text": "Round and round.",
                      "reply": {"parent": ref, "root": ref}}
            event = {"did": user.did, "time_us": t, "kind": "commit",
                     "commit": {"rev": tid(t, 1022 - i), "operation": "create", "collection": POST,
                                "rkey": rkeys[i], "record": record, "cid": cid_of(uris[i])}}
            out.append(orjson.dumps(event))
    return [_Line(t, None, raw=r, corruption=kind) for r in out]


# --- writing -----------------------------------------------------------------


def _open_out(path: Path, compress: str | None):
    if compress == "gz":
        return gzip.GzipFile(filename="", mode="wb", fileobj=open(path, "wb"), mtime=0)
    if compress == "zst":
        import zstandard

        return zstandard.ZstdCompressor(level=3).stream_writer(open(path, "wb"), closefd=True)
    return open(path, "wb")


def synthesize(out_dir: str | Path, config: SynthConfig | None = None, *, force: bool = False) -> SynthResult:
    """Write a synthetic corpus to ``out_dir`` and return what it holds.

    The directory appears whole or not at all: everything is written to a
    temporary sibling and renamed at the end. An existing ``out_dir`` made with
    the same config is reused as is; any other existing ``out_dir`` is an error
    unless ``force`` is set.
    """
    cfg = config or SynthConfig()
    out_dir = Path(out_dir)
    manifest_path = out_dir / META_DIR / "synth.json"
    if out_dir.exists():
        if manifest_path.is_file():
            old = orjson.loads(manifest_path.read_bytes())
            if old.get("config") == asdict(cfg) and old.get("format_version") == FORMAT_VERSION:
                log.info("synth: %s already holds this corpus; reusing it", out_dir)
                return SynthResult(out_dir, old["files"], old["counts"])
        if not force and any(out_dir.iterdir()):
            raise BadInputError("exists and holds something else; pass --force to replace it", path=out_dir)

    world = _World(cfg)
    world.run()
    lines = _shuffle_locally(world)
    crng = random.Random(cfg.seed ^ 0x5EED)

    with atomic_dir(out_dir) as tmp:
        files, pii_rows, corrupt_rows, line_count = _write_lines(tmp, lines, cfg, crng, world)
        users_rows = [{"did": u.did, "handle": u.handle, "persona": world.personas[u.persona].name}
                      for u in world.users]
        counts = {
            "lines": line_count,
            "valid_events": len(lines),
            "actions": {a: world.action_counts.get(a, 0) for a in ACTIONS},
            "personas": dict(sorted(Counter(r["persona"] for r in users_rows).items())),
            "pii": dict(sorted(Counter(r["type"] for r in pii_rows).items())),
            "corrupt": dict(sorted(Counter(r["kind"] for r in corrupt_rows).items())),
            "users": len(users_rows),
        }
        meta = tmp / META_DIR
        write_jsonl(meta / "planted_pii.jsonl", pii_rows)
        write_jsonl(meta / "corrupt_lines.jsonl", corrupt_rows)
        write_jsonl(meta / "users.jsonl", users_rows)
        write_json(meta / "synth.json", {"config": asdict(cfg), "format_version": FORMAT_VERSION,
                                         "files": files, "counts": counts})
    log.info("synth: %d lines in %d files, %d users", line_count, len(files), len(users_rows))
    return SynthResult(out_dir, files, counts)


def _shuffle_locally(world: _World) -> list[_Line]:
    """Jetstream delivers events nearly, not exactly, in time order: swap neighbours a little."""
    rng = random.Random(world.cfg.seed ^ 0xA5A5)
    lines = list(world.lines)
    for i in range(len(lines) - 1):
        if rng.random() < 0.05:
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return lines


def _write_lines(root: Path, lines: list[_Line], cfg: SynthConfig, rng: random.Random, world: _World):
    suffix = {None: "", "gz": ".gz", "zst": ".zst"}[cfg.compress]
    files: list[str] = []
    pii_rows: list[dict] = []
    corrupt_rows: list[dict] = []
    total = 0
    current_hour = None
    fh = None
    lineno = 0
    rel = ""
    try:
        for line in lines:
            hour = line.time_us // _HOUR_US
            if hour != current_hour:
                if fh is not None:
                    fh.close()
                stamp = datetime.fromtimestamp(hour * 3600, tz=timezone.utc)
                rel = f"bluesky-{stamp:%Y-%m}/{stamp:%d}/{stamp:%H}/jetstream.jsonl{suffix}"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                # a later line may fall back into an hour already written: start a second file
                while rel in files:
                    rel = rel.replace("jetstream", f"jetstream-{len(files)}", 1)
                files.append(rel)
                fh = _open_out(root / rel, cfg.compress)
                current_hour, lineno = hour, 0
            batch = [line]
            if cfg.corrupt_rate and rng.random() < cfg.corrupt_rate:
                batch += _corrupt(rng, line, world)
            for item in batch:
                lineno += 1
                total += 1
                fh.write((item.raw if item.raw is not None else orjson.dumps(item.event)) + b"\n")
                if item.corruption is not None:
                    corrupt_rows.append({"file": rel, "line": lineno, "kind": item.corruption})
                for kind, start, end, value in item.spans:
                    pii_rows.append({"file": rel, "line": lineno, "uri": item.uri, "type": kind,
                                     "start": start, "end": end, "value": value})
    finally:
        if fh is not None:
            fh.close()
    return files, pii_rows, corrupt_rows, total
