"""The replay: the thread rules applied to the events in time order, over integer ids only.

Its input is the slim stream of :func:`.sql.slim_events`: per event its order, action
and the integer ids of its post, reply parent, subject post, actor, subject user and
record key, with its scope, language, topic and text flags. Its state is a few bytes
per post, user and record key (``array``/``bytearray``), never an event or a text.

Each kind of event has its method: :meth:`Replay._post` (post, reply, quote),
:meth:`Replay._edit` (post_update, post_delete) and :meth:`Replay._record` (likes,
reposts, follows, blocks and their deletes). Each returns why the event is no example
(None when it is one), whether its key carries ``#action@time``, and its context:
the (creating event, text-holding event) of each context post, oldest first.

Outputs are integers too: ``ex`` (seq, suffix flag), ``ctx`` (example seq, position,
the post's creating event, the event holding its text then), ``texts`` (seqs of the
posts that are their authors' own voice) and ``bad`` (seq, reason).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import pyarrow as pa

from blueprint.actions import ACTIONS

if TYPE_CHECKING:
    from blueprint.simpact.threads.stage import ThreadReport

_A = {a: i for i, a in enumerate(ACTIONS)}
_REPLY, _QUOTE = _A["reply"], _A["quote"]
_UPDATE, _DELETE = _A["post_update"], _A["post_delete"]
_LAST_POST_KIND = max(_A["post"], _REPLY, _QUOTE)  # post, reply and quote come first in ACTIONS
_LAST_EDIT_KIND = max(_UPDATE, _DELETE)  # then the edits; every later action is a record
_CREATES = {_A[a] for a in ("like", "repost", "follow", "block")}
_REACTIONS = {_A[a] for a in ("like", "unlike", "repost", "unrepost")}  # their subject is a post
_BAD = ("reply_self_reference", "reply_cycle")  # reasons that quarantine instead of skipping
_ABSENT = -2  # a record key with no live record

Outcome = tuple["str | None", bool, "list[tuple[int, int]] | None"]
"""(why the event is no example or None, whether its key carries ``#action@time``, its context)."""


class Replay:
    """The events' rules over integer ids. Each call of :meth:`run` takes one batch of the slim stream."""

    def __init__(self, max_depth: int, n_posts: int, n_users: int, n_records: int, report: ThreadReport) -> None:
        self.depth = max_depth
        self.reg = bytearray(n_posts)  # the post was created (and is known)
        self.lang = bytearray(n_posts)
        self.topic = bytearray(n_posts)
        self.deleted = bytearray(n_posts)
        self.parent = array("q", [-1]) * n_posts
        self.created = array("q", [0]) * n_posts  # the event that created the post
        self.version = array("q", [0]) * n_posts  # the event that holds its current text
        self.latest = array("q", [-1]) * n_users  # each user's latest standing post
        self.records = array("q", [_ABSENT]) * n_records  # each record key's subject while it stands
        self.texts: list[int] = []  # this batch's persona texts (their seqs)
        self.report = report

    def run(self, batch: pa.RecordBatch) -> dict[str, tuple]:
        """The rules over one batch of events; returns what it produced, by output table."""
        ex_seq: list[int] = []
        ex_suffix: list[bool] = []
        ctx_ex: list[int] = []
        ctx_pos: list[int] = []
        ctx_created: list[int] = []
        ctx_version: list[int] = []
        bad_seq: list[int] = []
        bad_reason: list[str] = []
        texts: list[int] = []
        self.texts = texts  # filled by _post
        examples, skipped, quarantined = self.report.examples, self.report.skipped, self.report.quarantined
        # each action's handler, by action index: posts first, then edits, then records (ACTIONS' order)
        handlers = [self._post if a <= _LAST_POST_KIND else self._edit if a <= _LAST_EDIT_KIND else self._record
                    for a in range(len(ACTIONS))]
        cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for event in zip(*cols):
            a = event[1]
            why, suffix, ctx = handlers[a](event)
            if why is None:
                seq = event[0]
                if ctx is not None:
                    for pos, (created, version) in enumerate(ctx):
                        ctx_ex.append(seq)
                        ctx_pos.append(pos)
                        ctx_created.append(created)
                        ctx_version.append(version)
                ex_seq.append(seq)
                ex_suffix.append(suffix)
                examples[ACTIONS[a]] += 1
            elif why in _BAD:
                quarantined[why] += 1
                bad_seq.append(event[0])
                bad_reason.append(why)
            else:
                skipped[why] += 1
        return {"ex": (ex_seq, ex_suffix), "ctx": (ctx_ex, ctx_pos, ctx_created, ctx_version), "texts": (texts,),
                "bad": (bad_seq, bad_reason)}

    def _post(self, event: tuple) -> Outcome:
        """A post, reply or quote: its reply chain (at most ``max_depth`` messages) or its quoted post."""
        seq, a, uid, parent, subj, actor, subj_did, rid, in_scope, ev_lang, ev_topic, has_text, self_ref = event
        reg, lang, topic = self.reg, self.lang, self.topic
        if reg[uid]:
            return "duplicate_record", False, None
        if self_ref:
            return "reply_self_reference", False, None
        chain = [uid]
        if a == _REPLY:
            parent_of, depth = self.parent, self.depth
            p = parent
            while p != -1:
                if p == uid or p in chain:
                    return "reply_cycle", False, None
                if not reg[p] or len(chain) >= depth or not lang[p]:
                    break
                chain.append(p)
                p = parent_of[p]
        reg[uid], self.parent[uid], lang[uid], topic[uid] = 1, parent, ev_lang, ev_topic
        self.created[uid] = self.version[uid] = seq
        self.latest[actor] = uid
        if in_scope and has_text and ev_lang and ev_topic:
            self.texts.append(seq)
        if not in_scope:
            return "actor_out_of_scope", False, None
        if a == _REPLY and len(chain) < 2:
            return ("language" if not ev_lang or (parent != -1 and reg[parent]) else "reply_parent_unseen"), \
                False, None
        if a == _QUOTE:
            if subj == -1 or not reg[subj] or self.deleted[subj]:
                return "target_unseen", False, None
            chain = [uid, subj]
        if not all(lang[p] for p in chain):
            return "language", False, None
        if not any(topic[p] for p in chain):
            return "off_topic", False, None
        created, version = self.created, self.version
        return None, False, [(created[p], version[p]) for p in chain[:0:-1]]

    def _edit(self, event: tuple) -> Outcome:
        """A post_update or post_delete: the post as it stood before is the context."""
        seq, a, uid, parent, subj, actor, subj_did, rid, in_scope, ev_lang, ev_topic, has_text, self_ref = event
        if uid == -1 or not self.reg[uid] or self.deleted[uid]:
            return ("post_update_unseen" if a == _UPDATE else "post_delete_unseen"), False, None
        lang, topic = self.lang, self.topic
        before = (self.created[uid], self.version[uid])
        before_lang, before_topic = lang[uid], topic[uid]
        if a == _UPDATE:
            self.version[uid], lang[uid], topic[uid] = seq, ev_lang, ev_topic
            actor_lang, actor_topic = ev_lang, ev_topic
        else:
            self.deleted[uid] = 1
            if actor != -1 and self.latest[actor] == uid:
                self.latest[actor] = -1
            actor_lang, actor_topic = True, False
        if not in_scope:
            return "actor_out_of_scope", False, None
        if not (before_lang and actor_lang):
            return "language", False, None
        if not (before_topic or actor_topic):
            return "off_topic", False, None
        return None, True, [before]

    def _record(self, event: tuple) -> Outcome:
        """A like, repost, follow or block, or the delete of one (resolved to its subject by its record key)."""
        seq, a, uid, parent, subj, actor, subj_did, rid, in_scope, ev_lang, ev_topic, has_text, self_ref = event
        records = self.records
        suffix = False
        if a in _CREATES:
            if records[rid] != _ABSENT:
                return "duplicate_record", False, None
            subject = subj if a in _REACTIONS else subj_did
            records[rid] = subject
        else:
            suffix = True
            subject = records[rid]
            records[rid] = _ABSENT
            if subject == _ABSENT:
                return ACTIONS[a] + "_unresolved", True, None
        if not in_scope:
            return "actor_out_of_scope", suffix, None
        if a in _REACTIONS:
            target = subject
            if target == -1 or not self.reg[target] or self.deleted[target]:
                return "target_unseen", suffix, None
        else:
            target = self.latest[subject] if subject != -1 else -1
            if target == -1:
                return "target_has_no_post", suffix, None
        if not self.lang[target]:
            return "language", suffix, None
        if not self.topic[target]:
            return "off_topic", suffix, None
        return None, suffix, [(self.created[target], self.version[target])]

