"""``blueprint import-release``: hand-written files in the public release's row format, through every command."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.cli import main
from blueprint.data import SPLITS, content_id, read_split, split_of

WORDS = {0: "carbon tax pipeline climate emissions energy".split(),
         1: "housing rent mortgage zoning renters affordability".split(),
         2: "hockey playoffs goalie trade season arena".split()}


def _thread(rng: random.Random, t: int, cluster: int, action: str) -> dict:
    """One line of processed_{k}_clusters/cluster_{i}.jsonl, as the release writes it."""
    words = WORDS[cluster % 3]
    context = {"user_id": f"{rng.getrandbits(64):016x}", "text": " ".join(rng.choices(words, k=8)),
               "relative_integer_time": t, "actions": None}
    text = " ".join(rng.choices(words, k=6)) if action in TEXT_ACTIONS else None
    last = {"user_id": f"{rng.getrandbits(64):016x}", "text": text, "relative_integer_time": t + 1,
            "actions": {a: a == action for a in ACTIONS}}
    return {"thread": [last] if action == "post" else [context, last], "cluster_id": cluster}


def write_release(root: Path, n: int = 700, ks=(2, 3)) -> Path:
    """The same ``n`` threads in each partition of ``ks``; in partition k a thread's cluster is its index mod k."""
    rng = random.Random(0)
    weights = [6, 8, 3, 1, 1, 14, 1, 6, 1, 3, 1, 1, 1]  # like and reply common, the rest rare
    threads = [_thread(rng, 2 * i, i % 3, rng.choices(ACTIONS, weights)[0]) for i in range(n)]
    for k in ks:
        folder = root / f"processed_{k}_clusters"
        folder.mkdir(parents=True)
        for c in range(k):
            lines = [{**t, "cluster_id": c} for i, t in enumerate(threads) if i % k == c]
            (folder / f"cluster_{c}.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("release")
    release = write_release(root / "BluePrint")
    assert main(["-q", "import-release", str(release), "--out", str(root / "ds")]) == 0
    return root / "ds"


def test_the_import_keeps_every_thread_with_its_id_cluster_and_split(imported):
    lines = {}
    for f in sorted((imported.parent / "BluePrint" / "processed_3_clusters").glob("*.jsonl")):
        for raw in f.read_bytes().splitlines():
            obj = orjson.loads(raw)
            last = obj["thread"][-1]
            action = next(a for a in ACTIONS if last["actions"][a])
            rid = content_id(action, [(m["relative_integer_time"], m["text"]) for m in obj["thread"]])
            lines[rid] = (obj, action)
    seen = 0
    for split in SPLITS:
        table = read_split(imported, "3_clusters", split).to_pylist()
        for row in table:
            obj, action = lines[row["id"]]
            assert split_of(row["id"]) == split and row["cluster_id"] == obj["cluster_id"]
            assert row["thread"] == obj["thread"] and ACTIONS[row["action"]] == action
            assert row["target_text"] == (obj["thread"][-1]["text"] if action in TEXT_ACTIONS else None)
        seen += len(table)
        persona = read_split(imported, "3_clusters_c1", split, columns=["id", "cluster_id"]).to_pylist()
        assert {r["id"] for r in persona} == {r["id"] for r in table if r["cluster_id"] == 1}
    assert seen == len(lines) == 700
    card = (imported / "README.md").read_text()
    assert "https://huggingface.co/datasets/ComplexDataLab/BluePrint" in card and "arXiv:2510.02343" in card
    assert "Test rows per config" in card and "HMAC" not in card
    manifest = orjson.loads((imported / "blueprint_manifest.json").read_bytes())
    assert manifest["source"]["kind"] == "release" and len(manifest["source"]["files"]) == 5


def test_the_builder_reads_the_same_rows_from_the_release(imported, tmp_path):
    from blueprint.builder import BluePrint

    b = BluePrint(config_name="2_clusters", data_dir=str(imported.parent / "BluePrint"),
                  cache_dir=str(tmp_path / "cache"), dataset_name="blueprint")
    b.download_and_prepare()
    for split in SPLITS:
        assert sorted(b.as_dataset(split=split)["id"]) == sorted(read_split(imported, "2_clusters", split)["id"]
                                                                 .to_pylist())


def test_every_command_takes_the_imported_folder(imported, tiny_model, tmp_path, capsys):
    from datasets import load_dataset

    import blueprint

    ds = str(imported)
    assert load_dataset(ds, "3_clusters_c2", split="test").num_rows == len(
        blueprint.load_dataset("3_clusters_c2", "test", data_dir=imported))
    assert main(["stats", ds]) == 0
    assert "unknown (pseudonymous ids)" in capsys.readouterr().out
    results = tmp_path / "results"
    for name in ("majority", "persona_prior", "gbdt"):
        preds = tmp_path / f"{name}.jsonl"
        extra = ["--model", str(tiny_model)] if name == "gbdt" else []
        assert main(["-q", "baseline", name, "--dataset", ds, "--config", "3_clusters", "--out", str(preds),
                     *extra]) == 0
        assert main(["-q", "validate", str(preds), "--dataset", ds, "--config", "3_clusters"]) == 0
        assert main(["-q", "score", str(preds), "--dataset", ds, "--config", "3_clusters", "--out",
                     str(results / f"{name}.json"), "--model", str(tiny_model), "--bootstrap", "10",
                     "--no-bertscore", "--name", name]) == 0
    assert main(["-q", "leaderboard", str(results), "--out", str(tmp_path / "site"), "--strict"]) == 0
    # a language model with the persona description (from the import's persona report), fine-tuned and run
    from blueprint.models.tiny import make_tiny_causal_lm
    from blueprint.task import SYSTEM_PROMPT, load_personas

    assert load_personas(imported, 3)[0].top_terms  # words of the cluster's texts
    train = read_split(imported, "3_clusters_c0", "train").to_pylist()
    lm = make_tiny_causal_lm(tmp_path / "lm", [SYSTEM_PROMPT] + [m["text"] or "" for r in train for m in r["thread"]])
    assert main(["-q", "finetune", "--model", str(lm), "--dataset", ds, "--config", "3_clusters_c0", "--out",
                 str(tmp_path / "adapter"), "--max-steps", "2", "--limit", "16", "--batch-size", "4",
                 "--grad-accum", "1", "--eval-limit", "4"]) == 0
    preds = tmp_path / "lm.jsonl"
    assert main(["-q", "predict", "--model", str(tmp_path / "adapter"), "--dataset", ds, "--config", "3_clusters_c0",
                 "--out", str(preds), "--persona", "--limit", "6", "--max-new-tokens", "8"]) == 0
    assert main(["-q", "score", str(preds), "--dataset", ds, "--config", "3_clusters_c0", "--out",
                 str(tmp_path / "lm-results.json"), "--subset", str(tmp_path / "lm.subset.txt"), "--model",
                 str(tiny_model), "--bootstrap", "5", "--no-bertscore"]) == 0


def _broken(tmp_path: Path, line: int, edit) -> Path:
    release = write_release(tmp_path / "rel", n=40, ks=(2,))
    f = release / "processed_2_clusters" / "cluster_1.jsonl"
    lines = f.read_bytes().splitlines()
    obj = orjson.loads(lines[line - 1])
    edit(obj)
    lines[line - 1] = orjson.dumps(obj)
    f.write_bytes(b"\n".join(lines) + b"\n")
    return release


def _set_last_action(obj, action):
    obj["thread"][-1]["actions"] = {a: a == action for a in ACTIONS}


@pytest.mark.parametrize(("edit", "field", "message"), [
    (lambda o: o.pop("thread"), "thread", "non-empty list"),
    (lambda o: o["thread"][-1].pop("relative_integer_time"), "thread[-1].relative_integer_time", "missing"),
    (lambda o: o["thread"][-1].update(relative_integer_time="7"), "relative_integer_time", "non-negative integer"),
    (lambda o: o["thread"][-1].update(user_id=None), "user_id", "non-empty string"),
    (lambda o: o["thread"][-1].update(text=5), "text", "a string or null"),
    (lambda o: o["thread"][-1]["actions"].pop("unblock"), "actions", "missing ['unblock']"),
    (lambda o: o["thread"][-1]["actions"].update(like="yes"), "actions.like", "true or false"),
    (lambda o: o["thread"][-1]["actions"].update(like=True, follow=True), "actions", "exactly one flag"),
    (lambda o: o["thread"][-1].update(actions=None), "actions", "13 action flags"),
    (lambda o: o.update(cluster_id=0), "cluster_id", "not this file's cluster"),
    (lambda o: (_set_last_action(o, "reply"), o["thread"][-1].update(text=None)), "text", "a reply needs its text"),
    (lambda o: (_set_last_action(o, "like"), o["thread"][-1].update(text="x")), "text", "carries no text"),
])
def test_a_bad_field_is_named_with_its_file_and_line(tmp_path, capsys, edit, field, message):
    release = _broken(tmp_path, 3, edit)
    assert main(["-q", "import-release", str(release), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "processed_2_clusters/cluster_1.jsonl:3: field '" in err and field.split(".")[-1] in err, err
    assert message in err and not (tmp_path / "ds").exists()


def test_a_release_copy_missing_a_cluster_or_a_folder_is_refused(tmp_path, capsys):
    release = write_release(tmp_path / "rel", n=20, ks=(3,))
    (release / "processed_3_clusters" / "cluster_2.jsonl").unlink()
    assert main(["import-release", str(release), "--out", str(tmp_path / "ds")]) == 2
    assert "no file for clusters [2]" in capsys.readouterr().err
    assert main(["import-release", str(tmp_path), "--out", str(tmp_path / "ds")]) == 2
    assert "no processed_{k}_clusters/" in capsys.readouterr().err


def test_the_builder_checks_the_release_as_import_release_does(tmp_path):
    """One reader of the release's rows: the datasets builder names a bad field by file, line and field too."""
    from blueprint.builder import BluePrint
    from blueprint.errors import BadInputError

    release = _broken(tmp_path, 3, lambda o: o["thread"][-1]["actions"].update(like="yes"))
    b = BluePrint(config_name="2_clusters", data_dir=str(release), cache_dir=str(tmp_path / "cache"),
                  dataset_name="blueprint")
    with pytest.raises(Exception) as err:
        b.download_and_prepare()
    cause = err.value if isinstance(err.value, BadInputError) else err.value.__cause__ or err.value.__context__
    assert isinstance(cause, BadInputError) and cause.line == 3 and cause.field.endswith("].actions.like")
