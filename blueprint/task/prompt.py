"""The prompt: an example becomes chat messages (or one plain string), and its gold answer.

As in the paper, a system message describes the task, the 13 actions and the output
schema, and, when one is given, the persona (the cluster report's top terms and action
mix: aggregates, never a raw text). The thread's context follows, ``thread[:-1]``:
each other author speaks as a ``user`` message labelled ``user0``, ``user1``, ... in
order of first appearance, and the target user's own earlier messages are
``assistant`` messages written in the output schema, as the model would have written
them. The last message, ``thread[-1]``, is the answer and never appears in the prompt.

Everything here is deterministic: the same example gives the same prompt, byte for byte.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.errors import BadInputError
from blueprint.task.answer import format_answer
from blueprint.validation import check_choice

STYLES = ("chat", "plain")

_ACTION_HELP: dict[str, str] = {
    "post": "write a new post (text required)",
    "reply": "reply to the thread (text required)",
    "quote": "quote the last post with a comment of your own (text required)",
    "post_update": "edit your own earlier post (text required: the new text)",
    "post_delete": "delete your own earlier post",
    "like": "like the last post",
    "unlike": "remove an earlier like of the last post",
    "repost": "repost the last post",
    "unrepost": "undo an earlier repost of the last post",
    "follow": "follow the author of the last post",
    "unfollow": "stop following the author of the last post",
    "block": "block the author of the last post",
    "unblock": "unblock the author of the last post",
}

SYSTEM_PROMPT = (
    "You are a user of Bluesky, a social media platform. You read a thread and take your next action.\n"
    "\n"
    "In the thread, other users appear as user0, user1, ... in order of first appearance; your own earlier "
    "messages appear as your answers. An empty thread means you are about to write a new post.\n"
    "\n"
    "Choose exactly one of these 13 actions:\n"
    + "\n".join(f"- {a}: {_ACTION_HELP[a]}" for a in ACTIONS)
    + "\n\n"
    "Answer with one JSON object and nothing else:\n"
    '{"action": "<one of the 13 actions>", "text": "<your text, or null>"}\n'
    "text is required for post, reply, quote and post_update, and null for every other action."
)
"""The task description at the head of every prompt (the persona, when given, follows it)."""


# --- persona ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    """What the prompt says of a persona cluster: aggregates from the cluster report, never raw text."""

    cluster: int
    k: int | None = None
    top_terms: tuple[str, ...] = ()
    action_share: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_report(cls, entry: Mapping[str, Any], k: int | None = None) -> Persona:
        """A persona from one entry of ``reports/clusters_{k}.json`` (``cluster``, ``top_terms``, ``action_share``)."""
        share = entry.get("action_share") or {}
        return cls(cluster=int(entry["cluster"]), k=k, top_terms=tuple(entry.get("top_terms") or ()),
                   action_share={a: float(share.get(a, 0.0)) for a in ACTIONS})

    def describe(self, n_terms: int = 10, n_actions: int = 6) -> str:
        of = f" of {self.k}" if self.k else ""
        lines = [f"You act as persona {self.cluster}{of}: a cluster of Bluesky users who write and act alike."]
        if self.top_terms:
            lines.append("Words that set this persona apart: " + ", ".join(self.top_terms[:n_terms]) + ".")
        shares = sorted(((v, a) for a, v in self.action_share.items() if v > 0), key=lambda va: (-va[0], va[1]))
        if shares:
            lines.append("How this persona acts: " + ", ".join(f"{a} {v:.0%}" for v, a in shares[:n_actions]) + ".")
        return "\n".join(lines)


def load_personas(dataset_dir: str | os.PathLike[str], k: int) -> dict[int, Persona]:
    """The personas of partition ``k`` from an exported dataset's cluster report (``reports/clusters_{k}.json``)."""
    from blueprint._io import read_json

    path = Path(dataset_dir) / "reports" / f"clusters_{k}.json"
    report = read_json(path)
    try:
        return {int(e["cluster"]): Persona.from_report(e, k) for e in report["clusters"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"not a cluster report ({type(exc).__name__}: {exc})", path=path,
                            field="clusters") from None


# --- the context ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One message of the context as the model sees it."""

    role: str  # "user" (another author) or "assistant" (the target user's own earlier message)
    speaker: str  # "user0", "user1", ... or "you"
    text: str | None
    time: int | None


def context(example: Mapping[str, Any]) -> list[Turn]:
    """The model's view of an example: ``thread[:-1]``, speakers labelled, the target user as ``you``."""
    thread = example["thread"]
    if not thread:
        raise BadInputError("an example needs a non-empty thread", field="thread")
    target = thread[-1]["user_id"]
    labels: dict[str, str] = {}
    turns = []
    for m in thread[:-1]:
        uid = m["user_id"]
        if uid == target:
            turns.append(Turn("assistant", "you", m.get("text"), m.get("relative_integer_time")))
            continue
        if uid not in labels:
            labels[uid] = f"user{len(labels)}"
        turns.append(Turn("user", labels[uid], m.get("text"), m.get("relative_integer_time")))
    return turns


def _turn_content(turn: Turn, position: int) -> str:
    if turn.role == "user":
        return _json({"user": turn.speaker, "text": turn.text})
    # the target's own earlier message, in the answer schema: a thread's first message is a post, later ones replies
    return format_answer("post" if position == 0 else "reply", turn.text)


def _as_persona(persona: Persona | Mapping[str, Any] | None) -> Persona | None:
    if persona is None or isinstance(persona, Persona):
        return persona
    return Persona.from_report(persona)


def system_message(persona: Persona | Mapping[str, Any] | None = None) -> str:
    p = _as_persona(persona)
    return SYSTEM_PROMPT if p is None else SYSTEM_PROMPT + "\n\n" + p.describe()


def to_messages(example: Mapping[str, Any], *, persona: Persona | Mapping[str, Any] | None = None,
                style: str = "chat") -> list[dict[str, str]] | str:
    """The prompt of one example.

    ``style="chat"`` gives chat messages (``[{"role", "content"}, ...]``): the system
    message, then one message per context message; the model's turn comes next.
    ``style="plain"`` gives one prompt string for base models without a chat template,
    ending with ``you:`` for the model to continue.

    ``persona`` is a :class:`Persona` or an entry of the cluster report.
    """
    check_choice(style, "style", STYLES)
    system = system_message(persona)
    turns = context(example)
    if style == "chat":
        return [{"role": "system", "content": system}] + [
            {"role": t.role, "content": _turn_content(t, i)} for i, t in enumerate(turns)]
    lines = [system, "", "Thread:" if turns else "Thread: (empty)"]
    lines += [f"{t.speaker}: {_turn_content(t, i)}" for i, t in enumerate(turns)]
    lines.append("you:")
    return "\n".join(lines)


def _action_name(example: Mapping[str, Any]) -> str:
    a = example["action"]
    if isinstance(a, str):
        return check_choice(a, "action", ACTIONS)
    if not 0 <= int(a) < len(ACTIONS):
        raise BadInputError(f"the example has no label (action {a}): a test split with hidden labels?", field="action")
    return ACTIONS[int(a)]


def to_target(example: Mapping[str, Any]) -> str:
    """The gold answer of an example in the output schema, e.g. ``{"action": "like", "text": null}``."""
    action = _action_name(example)
    text = example.get("target_text")
    if text is None and action in TEXT_ACTIONS:
        text = example["thread"][-1].get("text")
    return format_answer(action, text)


def chat_dataset(ds, *, personas: Mapping[int, Persona] | None = None, style: str = "chat",
                 prompt_completion: bool = False, remove_columns: bool = False, num_proc: int | None = None):
    """Add the training columns that TRL's ``SFTTrainer`` reads to a ``datasets.Dataset`` of BluePrint rows.

    By default one column, ``messages``: the prompt of :func:`to_messages` plus the gold
    answer as the last ``assistant`` message (``style="plain"``: one ``text`` column,
    prompt and answer). With ``prompt_completion=True`` the columns are ``prompt`` and
    ``completion`` instead, so the trainer puts the loss on the answer alone.
    ``personas`` (cluster id -> :class:`Persona`, e.g. from :func:`load_personas`)
    describes each row's persona in its system message.
    """
    check_choice(style, "style", STYLES)

    def add(example: dict) -> dict:
        persona = personas.get(example["cluster_id"]) if personas else None
        prompt = to_messages(example, persona=persona, style=style)
        target = to_target(example)
        if isinstance(prompt, list):  # chat
            answer = [{"role": "assistant", "content": target}]
            return {"prompt": prompt, "completion": answer} if prompt_completion else {"messages": prompt + answer}
        return {"prompt": prompt, "completion": " " + target} if prompt_completion else {"text": f"{prompt} {target}"}

    drop = list(ds.column_names) if remove_columns else None
    return ds.map(add, remove_columns=drop, num_proc=num_proc, desc="prompts")




def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
