"""The simulated world: users of latent personas acting on each other's posts, as Jetstream events.

:class:`World` holds the users, their posts and what each has liked, reposted,
followed and blocked, and emits one event per action in time order. Each of the 13
actions is one ``do_<action>`` method, called by name.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from blueprint.actions import ACTIONS, BLOCK, FOLLOW, LIKE, POST, REPOST
from blueprint.atproto import cid_of, tid
from blueprint.synth import pii as pii_gen
from blueprint.synth.config import SynthConfig
from blueprint.synth.personas import PERSONAS, QUOTE_OPENERS, REPLY_OPENERS, Persona
from blueprint.synth.texts import compose


def iso_time(time_us: int) -> str:
    """A ``createdAt`` time: ISO 8601 in UTC, milliseconds, ``Z``."""
    return datetime.fromtimestamp(time_us / 1e6, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"



@dataclass
class _User:
    did: str
    handle: str
    persona: int
    activity: float
    posts: list[int] = field(default_factory=list)  # indices into World.posts
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
class Line:
    time_us: int
    event: dict | None  # None for a corrupt line carried as raw bytes
    raw: bytes | None = None
    spans: list[tuple[str, int, int, str]] = field(default_factory=list)
    uri: str | None = None
    corruption: str | None = None


class World:
    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.personas: tuple[Persona, ...] = PERSONAS[: cfg.personas]
        self.t0 = int(datetime.fromisoformat(cfg.start).astimezone(UTC).timestamp() * 1e6)
        self.now = self.t0
        self.users: list[_User] = []
        self.posts: list[_Post] = []
        self.live_recent: list[int] = []  # recent post indices, targets for reactions
        self.recent_replies: list[int] = []
        self.lines: list[Line] = []
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
        return created, iso_time(created)

    def _emit(self, event: dict, spans=(), uri: str | None = None, action: str | None = None) -> None:
        self.lines.append(Line(self.now, event, spans=list(spans), uri=uri))
        if action:
            self.action_counts[action] += 1

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
        """User ``user_idx`` takes ``action``: the ``do_<action>`` method. An action that finds nothing to act
        on (no post to reply to, no like to undo) falls back to a post or to the action it would undo."""
        getattr(self, "do_" + action)(user_idx)

    # -- one method per action --

    def do_post(self, user_idx: int) -> None:
        text, spans, lang = compose(self.rng, self._persona(user_idx), self.cfg.pii_rate)
        self._record_post(user_idx, text, spans, lang)

    def do_reply(self, user_idx: int) -> None:
        rng = self.rng
        parent = self._pick_post(user_idx, replies=rng.random() < 0.5, own_ok=rng.random() < 0.1)
        if parent is None:
            return self.do_post(user_idx)
        mention = self.users[parent.author].handle if rng.random() < 0.3 else None
        text, spans, lang = compose(self.rng, self._persona(user_idx), self.cfg.pii_rate,
                                    lead=rng.choice(REPLY_OPENERS), mention=mention)
        self._record_post(user_idx, text, spans, lang, reply_to=parent)

    def do_quote(self, user_idx: int) -> None:
        rng = self.rng
        target = self._pick_post(user_idx)
        if target is None:
            return self.do_post(user_idx)
        text, spans, lang = compose(self.rng, self._persona(user_idx), self.cfg.pii_rate,
                                    lead=rng.choice(QUOTE_OPENERS))
        self._record_post(user_idx, text, spans, lang, quote_of={"cid": target.cid, "uri": target.uri},
                          media=rng.random() < 0.3)

    def do_post_update(self, user_idx: int) -> None:
        post = self._own_post(user_idx)
        if post is None:
            return self.do_post(user_idx)
        user = self.users[user_idx]
        extra, extra_spans, _ = compose(self.rng, self._persona(user_idx), self.cfg.pii_rate)
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
        self._emit(event, spans, post.uri, "post_update")

    def do_post_delete(self, user_idx: int) -> None:
        post = self._own_post(user_idx)
        if post is None:
            return self.do_post(user_idx)
        post.deleted = True
        self._emit(self._commit(self.users[user_idx], "delete", POST, post.rkey, None), (), post.uri, "post_delete")

    def do_like(self, user_idx: int) -> None:
        self._react(user_idx, "like", LIKE, self.users[user_idx].likes)

    def do_repost(self, user_idx: int) -> None:
        self._react(user_idx, "repost", REPOST, self.users[user_idx].reposts)

    def do_unlike(self, user_idx: int) -> None:
        self._undo(user_idx, "unlike", LIKE, self.users[user_idx].likes, or_else=self.do_like)

    def do_unrepost(self, user_idx: int) -> None:
        self._undo(user_idx, "unrepost", REPOST, self.users[user_idx].reposts, or_else=self.do_repost)

    def do_follow(self, user_idx: int) -> None:
        self._link(user_idx, "follow", FOLLOW, self.users[user_idx].follows, same_persona=True)

    def do_block(self, user_idx: int) -> None:
        self._link(user_idx, "block", BLOCK, self.users[user_idx].blocks, same_persona=False)

    def do_unfollow(self, user_idx: int) -> None:
        self._undo(user_idx, "unfollow", FOLLOW, self.users[user_idx].follows, or_else=self.do_follow)

    def do_unblock(self, user_idx: int) -> None:
        self._undo(user_idx, "unblock", BLOCK, self.users[user_idx].blocks, or_else=self.do_block)

    # -- what the actions share --

    def _persona(self, user_idx: int) -> Persona:
        return self.personas[self.users[user_idx].persona]

    def _own_post(self, user_idx: int) -> _Post | None:
        """One of the user's 20 latest posts that still stands, or None."""
        mine = [i for i in self.users[user_idx].posts[-20:] if not self.posts[i].deleted]
        return self.posts[self.rng.choice(mine)] if mine else None

    def _react(self, user_idx: int, action: str, collection: str, store: dict[str, dict]) -> None:
        """A like or a repost of a recent post (or of a post from outside the corpus)."""
        if self.rng.random() < self.cfg.foreign_rate:
            ref = self._foreign_ref()
        else:
            target = self._pick_post(user_idx)
            if target is None:
                return self.do_post(user_idx)
            ref = {"cid": target.cid, "uri": target.uri}
        created_us, created = self._created()
        rkey = tid(created_us, self._next_clock())
        record = {"$type": collection, "createdAt": created, "subject": ref}
        store[rkey] = ref
        self._emit(self._commit(self.users[user_idx], "create", collection, rkey, record), (), None, action)

    def _link(self, user_idx: int, action: str, collection: str, store: dict[str, str], *,
              same_persona: bool) -> None:
        """A follow or a block of another user, not already followed or blocked."""
        other = self._pick_user(user_idx, same_persona=same_persona)
        if other is None or self.users[other].did in store.values():
            return self.do_post(user_idx)
        created_us, created = self._created()
        rkey = tid(created_us, self._next_clock())
        store[rkey] = self.users[other].did
        record = {"$type": collection, "createdAt": created, "subject": self.users[other].did}
        self._emit(self._commit(self.users[user_idx], "create", collection, rkey, record), (), None, action)

    def _undo(self, user_idx: int, action: str, collection: str, store: dict, *,
              or_else: Callable[[int], None]) -> None:
        """The delete of one of the user's likes, reposts, follows or blocks; with none, ``or_else`` instead."""
        if not store:
            return or_else(user_idx)
        rkey = self.rng.choice(list(store))
        del store[rkey]
        self._emit(self._commit(self.users[user_idx], "delete", collection, rkey, None), (), None, action)

    def noise(self) -> None:
        """An event that carries no action: identity, account, profile, or another app's record."""
        rng = self.rng
        user = self.users[rng.randrange(len(self.users))]
        kind = rng.random()
        if kind < 0.25:
            event = {"did": user.did, "time_us": self.now, "kind": "identity",
                     "identity": {"did": user.did, "handle": user.handle, "seq": self.now // 1000,
                                  "time": iso_time(self.now)}}
        elif kind < 0.5:
            event = {"did": user.did, "time_us": self.now, "kind": "account",
                     "account": {"active": True, "did": user.did, "seq": self.now // 1000, "time": iso_time(self.now)}}
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

