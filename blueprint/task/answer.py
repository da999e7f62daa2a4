"""The answer: its schema, and :func:`parse_output`, which reads any model answer into one label.

The schema is ``{"action": "<one of the 13>", "text": "<text or null>"}``: a text of at
most :data:`MAX_TEXT` characters for post, reply, quote and post_update, null for every
other action. Models write it (:func:`format_answer` gives the gold answers they are
trained on), and submissions are checked against it
(:mod:`blueprint.leaderboard.submission`), both through this module.

:func:`parse_output` reads that schema, the paper's own and the usual damage of real
model answers, and never raises; see its docstring for the rules that turn any answer
into one label.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blueprint.actions import ACTIONS, TEXT_ACTIONS

MAX_TEXT = 3000
"""The longest text an answer may carry, in characters (a Bluesky post holds 300 graphemes)."""


def format_answer(action: str, text: str | None) -> str:
    """An answer in the schema, as JSON: the text kept only for a text action."""
    return json.dumps({"action": action, "text": text if action in TEXT_ACTIONS else None}, ensure_ascii=False)


def text_problem(action: str, text: str | None) -> str | None:
    """What is wrong with ``text`` as the text of ``action``, or None when it is fine.

    A text action needs a non-empty text of at most :data:`MAX_TEXT` characters; any
    other action carries no text, and one that has a text is not wrong here (the text is
    ignored, with a warning, where that matters).
    """
    if action not in TEXT_ACTIONS:
        return None
    if text is None or not text.strip():
        return f"a {action} needs a non-empty text"
    if len(text) > MAX_TEXT:
        return f"{len(text):,} characters, over the {MAX_TEXT:,} allowed"
    return None


PAPER_KEYS: tuple[str, ...] = ("like", "unlike", "repost", "unrepost", "follow", "unfollow", "block", "unblock",
                               "post_update", "post_delete", "quote", "ignore", "profile_update")
"""The keys of the paper's ``actions`` object; ``ignore`` and ``profile_update`` are not among the 13."""

PRECEDENCE: tuple[str, ...] = ("quote", "post_update", "post", "reply", "post_delete", "block", "unblock",
                               "unfollow", "follow", "unrepost", "repost", "unlike", "like")
"""How several chosen actions become one label: the first of this order that was chosen.

A written text comes first (the text metrics need it): ``quote`` and ``post_update``
when their flag is set, otherwise the text is a ``reply`` (``post`` without context).
Then the rarer, more deliberate actions before the common ones: deleting, blocking and
unfollowing before following, undoing before doing, and ``like`` last, since a like is
the cheapest signal and most often rides along with another action.
"""

_ALIASES: dict[str, str] = {
    "retweet": "repost", "boost": "repost", "share": "repost", "unretweet": "unrepost", "unboost": "unrepost",
    "favorite": "like", "favourite": "like", "heart": "like", "comment": "reply", "respond": "reply",
    "response": "reply", "answer": "reply", "tweet": "post", "write": "post", "new_post": "post",
    "quote_post": "quote", "quote_tweet": "quote", "edit": "post_update", "update": "post_update",
    "delete": "post_delete", "remove": "post_delete", "delete_post": "post_delete", "edit_post": "post_update",
    "update_post": "post_update", "subscribe": "follow", "unsubscribe": "unfollow", "mute": "block",
}
_NO_ACTION = frozenset({"ignore", "none", "skip", "nothing", "no_action", "pass", "no_op", "noop"})
_NOT_OURS = frozenset({"profile_update"})
_ROLE_PREFIX = re.compile(r"^\s*(?:<\|?(?:assistant|im_start)\|?>\s*)?(?:assistant|model|you|answer|output|response|"
                          r"bot|ai)\s*[:>\-]\s*", re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|$)", re.DOTALL)
MAX_ANSWER_CHARS = 50_000


@dataclass
class ParsedOutput:
    """What a model answered, as one of the 13 actions (or None), with its text and what was repaired.

    ``actions`` holds every action the answer chose (the multi-label answer of the
    paper's schema, ``ignore`` and ``profile_update`` included); ``action`` is the one
    label :data:`PRECEDENCE` picks from them. ``error`` says why ``action`` is None.
    """

    action: str | None = None
    text: str | None = None
    actions: tuple[str, ...] = ()
    repairs: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.action is not None


def _norm_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().strip("\"'`.!").lower())


def _canonical(name: str, repairs: list[str]) -> str | None:
    """A name of the 13 (or ``ignore``/``profile_update``), through aliases; None for an unknown name."""
    n = _norm_name(name)
    if n in ACTIONS or n in _NOT_OURS:
        return n
    if n in _NO_ACTION:
        return "ignore"
    if n.rstrip("s") in ACTIONS:  # "likes", "follows"
        repairs.append("action_alias")
        return n.rstrip("s")
    if n in _ALIASES:
        repairs.append("action_alias")
        return _ALIASES[n]
    return None


def _strings(s: str, start: int = 0) -> tuple[list[tuple[int, int]], str | None]:
    """The string literals of ``s[start:]`` as ``[begin, end)`` spans (quotes included), and the quote left open.

    Both quote kinds open a string, except an apostrophe inside a word (``don't``).
    """
    spans: list[tuple[int, int]] = []
    quote, escape, begin = None, False, 0
    for i in range(start, len(s)):
        ch = s[i]
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                spans.append((begin, i + 1))
                quote = None
        elif ch in "\"'" and not (ch == "'" and i > 0 and s[i - 1].isalnum()):
            quote, begin = ch, i
    if quote:
        spans.append((begin, len(s)))
    return spans, quote


def _outside(s: str, start: int = 0):
    """``(index, char)`` for each character of ``s[start:]`` outside string literals, and the quote left open."""
    spans, open_quote = _strings(s, start)
    chars: list[tuple[int, str]] = []
    pos = start
    for a, b in spans + [(len(s), len(s))]:
        chars.extend((i, s[i]) for i in range(pos, a))
        pos = b
    return chars, open_quote


def _balanced_object(s: str, start: int) -> int | None:
    """The index after the bracket closing the one that opens at ``s[start]``, or None when it never closes."""
    depth = 0
    for i, ch in _outside(s, start)[0]:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _close_truncated(s: str) -> str:
    """Close the strings, arrays and objects that a cut-off answer left open."""
    chars, quote = _outside(s)
    stack = []
    for _, ch in chars:
        if ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    out = s[:-1] if (quote and s.endswith("\\")) else s
    if quote:
        out += quote
    out = out.rstrip()
    if out.endswith(","):
        out = out[:-1]
    elif out.endswith(":"):
        out += " null"
    elif re.search(r"[{,]\s*(\"[^\"]*\"|'[^']*')$", out):  # a key with no value yet
        out += ": null"
    return out + "".join(reversed(stack))


def _outside_strings(s: str, fn) -> str:
    """Apply ``fn`` to the stretches of ``s`` outside string literals."""
    parts, pos = [], 0
    for a, b in _strings(s)[0]:
        parts += [fn(s[pos:a]), s[a:b]]
        pos = b
    return "".join(parts) + fn(s[pos:])


def _loads_lenient(s: str, repairs: list[str]) -> Any:
    """JSON, else a Python-style literal (single quotes, trailing commas, True/None); raises ValueError."""
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        pass
    py = _outside_strings(s, lambda chunk: re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False",
                                                                             re.sub(r"\bnull\b", "None", chunk))))
    try:
        value = ast.literal_eval(py)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("not a JSON object") from None
    outside: list[str] = []

    def keep(chunk: str) -> str:
        outside.append(chunk)
        return chunk

    _outside_strings(s, keep)
    bare = " ".join(outside)
    if re.search(r"(^|[{\[,:]\s*)'", s.strip()) and re.search(r"'\s*:", s):
        repairs.append("single_quotes")
    if re.search(r",\s*[}\]]", bare):
        repairs.append("trailing_comma")
    if re.search(r"\b(True|False|None)\b", bare):
        repairs.append("python_literals")
    return value


def _extract(raw: str, repairs: list[str]) -> tuple[Any, bool]:
    """The answer's JSON value, repaired; ``(value, found)`` where ``found`` is False when there is no object."""
    s = raw
    fence = _FENCE.search(s)
    if fence:
        repairs.append("code_fence")
        before, after = s[: fence.start()].strip(), s[fence.end():].strip()
        s = fence.group(1)
        if before or after:
            repairs.append("surrounding_prose")
    m = _ROLE_PREFIX.match(s)
    if m:
        repairs.append("role_prefix")
        s = s[m.end():]
    if s.lstrip().startswith('"'):  # an object encoded twice, as a JSON string
        try:
            inner = json.loads(s)
        except ValueError:
            inner = None
        if isinstance(inner, str) and inner.lstrip().startswith("{"):
            repairs.append("double_encoded")
            s = inner
    start = s.find("{")
    if start < 0:
        return s.strip(), False
    bracket = s.find("[")
    if 0 <= bracket < start and not s[:bracket].strip():  # a list of answers
        start = bracket
    end = _balanced_object(s, start)
    if end is None:
        candidate = _close_truncated(s[start:])
        repairs.append("truncated")
    else:
        candidate = s[start:end]
        if (s[:start].strip() or s[end:].strip()) and "surrounding_prose" not in repairs:
            repairs.append("surrounding_prose")
    return _loads_lenient(candidate, repairs), True


def _true(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v == 1
    if isinstance(v, str):
        return v.strip().lower() in ("true", "yes", "1")
    return False


def _chosen_from_actions(value: Any, repairs: list[str]) -> tuple[list[str], list[str]]:
    """The names an ``actions`` field chose, and the names it held that are not actions."""
    if isinstance(value, str):
        try:
            value = _loads_lenient(value, repairs)
            repairs.append("actions_as_string")
        except ValueError:
            value = [value]  # a bare action name
    if value is None:
        return [], []
    if isinstance(value, Mapping):
        names = [k for k, v in value.items() if _true(v)]
    elif isinstance(value, (list, tuple)):
        names = [v for v in value if isinstance(v, str)]
    else:
        return [], [repr(value)[:40]]
    chosen: list[str] = []
    unknown: list[str] = []
    for n in names:
        c = _canonical(str(n), repairs)
        (chosen if c else unknown).append(c or str(n))
    return chosen, unknown


def _clean_text(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        v = str(v)
    return v if v.strip() else None


def _decide(chosen: list[str], text: str | None, has_context: bool, out: ParsedOutput,
            text_is_message: bool = True) -> ParsedOutput:
    chosen = list(dict.fromkeys(chosen))
    out.actions = tuple(chosen)
    ours = [a for a in chosen if a in ACTIONS]
    if text is not None and text_is_message and not any(a in TEXT_ACTIONS for a in ours):
        ours.append("reply" if has_context else "post")
        if chosen:
            out.repairs.append("text_with_actions")
        else:
            out.repairs.append("text_only")
    if not ours:
        if "profile_update" in chosen:
            out.error = "the answer chose profile_update, which is not one of the 13 actions"
        else:
            out.error = "the answer chose none of the 13 actions" + (" (ignore)" if "ignore" in chosen else "")
        return out
    if len(ours) > 1:
        out.repairs.append("multi_action")
    out.action = min(ours, key=PRECEDENCE.index)
    if out.action in TEXT_ACTIONS:
        out.text = text
        if text is None:
            out.repairs.append("missing_text")
    elif text is not None:
        out.repairs.append("dropped_text")
    return out


def parse_output(raw: str | None, *, has_context: bool = True) -> ParsedOutput:
    """Read a model's answer into one of the 13 actions, its text, and what had to be repaired. Never raises.

    It reads this project's schema ``{"action": ..., "text": ...}`` and the paper's
    ``{"actions": {<name>: bool, ...}, "text": ...}`` (``actions`` may also be that object
    as a JSON string, a list of names, or null with a text), and repairs code fences,
    prose around the object, a role prefix (``assistant:``), single quotes, trailing
    commas, Python literals, an object cut off part-way, and action aliases (``retweet``).

    The rules that make one label:

    - the chosen actions are the ``action`` field and every true key of ``actions``;
    - in the paper's schema, a text with no text action among the chosen ones is a
      written message: a ``reply`` when ``has_context`` (the thread had messages
      before), else a ``post``; in this project's schema, a text beside a non-text
      ``action`` is dropped (repair ``dropped_text``);
    - of several, the first in :data:`PRECEDENCE` wins;
    - ``ignore`` alone, ``profile_update`` alone, or nothing chosen and no text, is a
      valid answer that chose none of the 13: ``action`` is None and ``error`` says so;
    - an answer with no JSON object is taken whole as the text (repair ``plain_text``),
      unless it is just an action name (``bare_action``).
    """
    out = ParsedOutput()
    try:
        return _parse(raw, has_context, out)
    except Exception as exc:  # noqa: BLE001 - the contract is that parsing never raises
        out.action, out.text = None, None
        out.error = f"unparseable answer ({type(exc).__name__})"
        return out


def _parse(raw: str | None, has_context: bool, out: ParsedOutput) -> ParsedOutput:
    if raw is None:
        out.error = "no answer (the call failed or was refused)"
        return out
    if not isinstance(raw, str):
        out.error = f"the answer is a {type(raw).__name__}, not a string"
        return out
    if not raw.strip():
        out.error = "empty answer"
        return out
    if len(raw) > MAX_ANSWER_CHARS:
        raw = raw[:MAX_ANSWER_CHARS]
        out.repairs.append("cut_long_answer")
    try:
        value, found = _extract(raw, out.repairs)
    except ValueError:
        out.error = "the answer holds an object that could not be read as JSON"
        return out
    if not found:
        text = value
        name = _canonical(text, out.repairs) if len(text) <= 40 else None
        if name is not None:
            out.repairs.append("bare_action")
            return _decide([name], None, has_context, out)
        out.repairs.append("plain_text")
        return _decide([], _clean_text(text), has_context, out)
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, Mapping)), None)
        out.repairs.append("list_of_objects")
    if not isinstance(value, Mapping):
        out.error = "the answer's JSON is not an object"
        return out
    obj = {str(k).strip().lower(): v for k, v in value.items()}
    chosen: list[str] = []
    unknown: list[str] = []
    single = None  # this project's schema: one named action, whose text counts only for a text action
    if "action" in obj and obj["action"] is not None:
        if isinstance(obj["action"], str):
            c = _canonical(obj["action"], out.repairs)
            (chosen if c else unknown).append(c or obj["action"])
            single = c
        else:
            more, bad = _chosen_from_actions(obj["action"], out.repairs)
            chosen += more
            unknown += bad
    if "actions" in obj:
        more, bad = _chosen_from_actions(obj["actions"], out.repairs)
        chosen += more
        unknown += bad
    text = _clean_text(obj.get("text", obj.get("content", obj.get("message"))))
    text_is_message = not (single in ACTIONS and "actions" not in obj)
    out = _decide(chosen, text, has_context, out, text_is_message)
    if unknown and out.action is None:
        out.error = "the answer names an action that is not one of the 13"
    elif unknown:
        out.repairs.append("unknown_action_ignored")
    return out

