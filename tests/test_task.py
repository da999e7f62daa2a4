"""Task formatting and answer parsing: prompts as in the paper, no leak of the answer, a parser that never raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blueprint.actions import ACTIONS
from blueprint.data import read_split
from blueprint.task import (
    PRECEDENCE,
    SYSTEM_PROMPT,
    Persona,
    chat_dataset,
    load_personas,
    parse_output,
    to_messages,
    to_target,
)


def _msg(uid, text, t, action=None):
    return {"user_id": uid, "text": text, "relative_integer_time": t,
            "actions": None if action is None else {a: a == action for a in ACTIONS}}


EXAMPLE = {
    "id": "x1",
    "cluster_id": 2,
    "action": ACTIONS.index("reply"),
    "target_text": "Agreed, the carbon tax is a mess.",
    "thread": [
        _msg("alice", "Carbon tax debate tonight", 1),
        _msg("me", "Watching it now", 2),
        _msg("bob", "Who won?", 3),
        _msg("alice", "Nobody", 4),
        _msg("me", "Agreed, the carbon tax is a mess.", 5, "reply"),
    ],
}


def test_chat_prompt_labels_speakers_and_leaves_the_answer_out():
    msgs = to_messages(EXAMPLE)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "user"]
    assert msgs[0]["content"] == SYSTEM_PROMPT
    # other authors are user0, user1 in order of first appearance; the same author keeps the label
    assert json.loads(msgs[1]["content"]) == {"user": "user0", "text": "Carbon tax debate tonight"}
    assert json.loads(msgs[3]["content"]) == {"user": "user1", "text": "Who won?"}
    assert json.loads(msgs[4]["content"]) == {"user": "user0", "text": "Nobody"}
    # the target's own earlier message is written in the answer schema
    assert json.loads(msgs[2]["content"]) == {"action": "reply", "text": "Watching it now"}
    blob = "\n".join(m["content"] for m in msgs)
    assert "Agreed, the carbon tax" not in blob and '"actions"' not in blob
    for a in ACTIONS:  # the system message lists all 13 actions
        assert f"- {a}:" in msgs[0]["content"]


def test_plain_prompt_and_target():
    prompt = to_messages(EXAMPLE, style="plain")
    assert isinstance(prompt, str) and prompt.startswith(SYSTEM_PROMPT)
    lines = prompt.splitlines()
    assert lines[-1] == "you:"
    assert lines[-5].startswith("user0: ") and lines[-4].startswith("you: ") and lines[-3].startswith("user1: ")
    assert json.loads(to_target(EXAMPLE)) == {"action": "reply", "text": "Agreed, the carbon tax is a mess."}
    like = {**EXAMPLE, "action": ACTIONS.index("like"), "target_text": None}
    assert json.loads(to_target(like)) == {"action": "like", "text": None}
    with pytest.raises(ValueError, match="hidden"):
        to_target({**EXAMPLE, "action": -1})
    with pytest.raises(ValueError, match="style"):
        to_messages(EXAMPLE, style="markdown")


def test_a_new_post_has_no_context_and_an_empty_thread_note():
    post = {**EXAMPLE, "thread": [_msg("me", "Hello", 9, "post")], "action": 0, "target_text": "Hello"}
    assert to_messages(post) == [{"role": "system", "content": SYSTEM_PROMPT}]
    assert "Thread: (empty)" in to_messages(post, style="plain")


def test_persona_from_the_cluster_report(small_dataset):
    personas = load_personas(small_dataset, 5)
    assert sorted(personas) == [0, 1, 2, 3, 4]
    p = personas[2]
    msgs = to_messages(EXAMPLE, persona=p)
    system = msgs[0]["content"]
    assert system.startswith(SYSTEM_PROMPT) and "persona 2 of 5" in system
    assert all(t in system for t in p.top_terms[:10])
    top = max(p.action_share, key=p.action_share.get)
    assert f"{top} {p.action_share[top]:.0%}" in system
    # a report entry works as well as a Persona
    entry = {"cluster": 1, "top_terms": ["housing", "rent"], "action_share": {"like": 0.5, "reply": 0.25}}
    d = Persona.from_report(entry).describe()
    assert "housing, rent" in d and "like 50%, reply 25%" in d


def test_no_prompt_contains_its_answer_over_a_whole_split(small_dataset):
    rows = read_split(small_dataset, "5_clusters", "train").to_pylist()
    personas = load_personas(small_dataset, 5)
    assert len(rows) > 500
    for ex in rows:
        for style in ("chat", "plain"):
            prompt = to_messages(ex, persona=personas[ex["cluster_id"]], style=style)
            blob = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
            target = ex["target_text"]
            seen_before = any(m["text"] and target and target in m["text"] for m in ex["thread"][:-1])
            if target and not seen_before:
                assert json.dumps(target, ensure_ascii=False)[1:-1] not in blob, ex["id"]
            assert '"actions"' not in blob
            if style == "chat":
                assert len(prompt) == len(ex["thread"])  # system + thread[:-1]
        # deterministic, byte for byte
        assert json.dumps(to_messages(ex)) == json.dumps(to_messages(ex))


def test_chat_dataset_feeds_sft(small_dataset):
    import datasets

    ds = datasets.load_dataset(str(small_dataset), "5_clusters", split="validation")
    chat = chat_dataset(ds)
    row = chat[0]
    assert row["messages"][-1]["role"] == "assistant"
    assert row["messages"][:-1] == to_messages(ds[0])
    assert row["messages"][-1]["content"] == to_target(ds[0])
    pc = chat_dataset(ds, prompt_completion=True, remove_columns=True)
    assert pc.column_names == ["prompt", "completion"]
    plain = chat_dataset(ds, style="plain")
    assert plain[0]["text"] == to_messages(ds[0], style="plain") + " " + to_target(ds[0])


# --- the parser ----------------------------------------------------------------------------------------------

# (answer, has_context, expected action, expected text, repairs that must be reported)
TABLE = [
    ('{"action": "like", "text": null}', True, "like", None, []),
    ('{"action": "reply", "text": "Fair point."}', True, "reply", "Fair point.", []),
    ('{"action": "post", "text": "New post"}', False, "post", "New post", []),
    # the paper's schema
    ('{"actions": {"like": true, "follow": false, "repost": false}, "text": null}', True, "like", None, []),
    ('{"actions": {"like": true, "follow": true}, "text": null}', True, "follow", None, ["multi_action"]),
    ('{"actions": {"like": true, "repost": true}}', True, "repost", None, ["multi_action"]),
    ('{"actions": {"block": true, "unfollow": true}}', True, "block", None, ["multi_action"]),
    ('{"actions": "{\\"repost\\": true}", "text": null}', True, "repost", None, ["actions_as_string"]),
    ('{"actions": null, "text": "Well said"}', True, "reply", "Well said", ["text_only"]),
    ('{"actions": null, "text": "Hello world"}', False, "post", "Hello world", ["text_only"]),
    ('{"actions": {"like": true}, "text": "So true"}', True, "reply", "So true", ["text_with_actions"]),
    ('{"actions": {"quote": true, "like": true}, "text": "Look at this"}', True, "quote", "Look at this",
     ["multi_action"]),
    ('{"actions": {"post_update": true}, "text": "fixed typo"}', True, "post_update", "fixed typo", []),
    ('{"actions": {"post_delete": true}}', True, "post_delete", None, []),
    ('{"actions": {"unlike": true, "unrepost": true}}', True, "unrepost", None, ["multi_action"]),
    ('{"actions": {"ignore": true}}', True, None, None, []),
    ('{"actions": {"profile_update": true}}', True, None, None, []),
    ('{"actions": {"like": false, "ignore": false}, "text": null}', True, None, None, []),
    # answers in the wild
    ('```json\n{"action": "repost", "text": null}\n```', True, "repost", None, ["code_fence"]),
    ('Here is my answer:\n{"action": "like", "text": null}\nHope that helps!', True, "like", None,
     ["surrounding_prose"]),
    ("{'action': 'reply', 'text': 'nope'}", True, "reply", "nope", ["single_quotes"]),
    ('{"action": "follow", "text": null,}', True, "follow", None, ["trailing_comma"]),
    ("{'action': 'unfollow', 'text': None}", True, "unfollow", None, ["python_literals"]),
    ('assistant: {"action": "block", "text": null}', True, "block", None, ["role_prefix"]),
    ('{"action": "reply", "text": "I was saying that the', True, "reply", "I was saying that the", ["truncated"]),
    ('{"action": "qu', True, None, None, ["truncated"]),
    ('{"action": "retweet", "text": null}', True, "repost", None, ["action_alias"]),
    ('{"action": "Like"}', True, "like", None, []),
    ('{"action": "like", "text": "ignored"}', True, "like", None, ["dropped_text"]),
    ('{"action": "reply", "text": ""}', True, "reply", None, ["missing_text"]),
    ('like', True, "like", None, ["bare_action"]),
    ('Totally agree with this take.', True, "reply", "Totally agree with this take.", ["plain_text"]),
    ('"{\\"action\\": \\"like\\"}"', True, "like", None, ["double_encoded"]),
    ('[{"action": "repost", "text": null}]', True, "repost", None, ["list_of_objects"]),
    ('{"action": "dance", "text": null}', True, None, None, []),
    ("", True, None, None, []),
    ("   \n ", True, None, None, []),
    (None, True, None, None, []),
]


@pytest.mark.parametrize("raw,has_context,action,text,repairs", TABLE)
def test_parser_table(raw, has_context, action, text, repairs):
    out = parse_output(raw, has_context=has_context)
    assert out.action == action, out
    assert out.text == text, out
    assert set(repairs) <= set(out.repairs), out
    assert (out.error is None) == (action is not None), out
    assert out.ok == (action is not None)


def test_parser_reports_the_multi_label_answer_and_why_none():
    out = parse_output('{"actions": {"like": true, "follow": true, "ignore": false}, "text": null}')
    assert set(out.actions) == {"like", "follow"}
    assert "ignore" in parse_output('{"actions": {"ignore": true}}').error
    assert "profile_update" in parse_output('{"actions": {"profile_update": true}}').error
    assert parse_output(None).error.startswith("no answer")


def test_precedence_orders_all_13_actions():
    assert sorted(PRECEDENCE) == sorted(ACTIONS)
    # every pair of reaction or graph flags resolves to the earlier one in PRECEDENCE
    silent = [a for a in PRECEDENCE if a not in ("post", "reply", "quote", "post_update")]
    for i, a in enumerate(silent):
        for b in silent[i + 1:]:
            raw = json.dumps({"actions": {b: True, a: True}, "text": None})
            assert parse_output(raw).action == a


JSONISH = st.text(alphabet=st.sampled_from(list('{}[]":,\'\\ actionlikereplytxnu0123456789`\n')), max_size=80)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), JSONISH, st.none()), st.booleans())
def test_parser_never_raises(raw, has_context):
    out = parse_output(raw, has_context=has_context)
    assert out.action is None or out.action in ACTIONS
    assert out.text is None or isinstance(out.text, str)
    assert (out.action is None) == (out.error is not None)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ACTIONS), st.one_of(st.none(), st.text(min_size=1, max_size=60).filter(str.strip)))
def test_parser_reads_back_every_target(action, text):
    example = {"action": action, "target_text": text, "thread": [_msg("u", text, 0)]}
    out = parse_output(to_target(example))
    assert out.action == action
    assert out.text == (text if action in ("post", "reply", "quote", "post_update") else None)


def test_hypothesis_writes_nothing_into_the_checkout():
    from pathlib import Path

    from hypothesis.configuration import storage_directory

    repo = Path(__file__).resolve().parents[1]
    where = storage_directory("constants", intent_to_write=False).path.resolve()
    assert repo not in where.parents, where
