"""Models in the loop, for real on CPU: a tiny Llama made here, fine-tuned with TRL + peft, then predicting;
and the OpenAI-compatible engine against a server started on 127.0.0.1 by the test."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from blueprint.cli import main
from blueprint.data import read_split
from blueprint.leaderboard.score import check, score
from blueprint.metrics.suite import ScoreConfig
from blueprint.models.predict import (
    GenerationConfig,
    OpenAIEngine,
    TransformersEngine,
    predict,
    raw_path_for,
    report_path_for,
)
from blueprint.models.tiny import make_tiny_causal_lm
from blueprint.models.transformers_engine import alternating
from blueprint.task import SYSTEM_PROMPT, to_messages, to_target

CONFIG = "5_clusters"


@pytest.fixture(scope="module")
def tiny_lm(small_dataset, tmp_path_factory):
    rows = read_split(small_dataset, CONFIG, "train").to_pylist()
    texts = [SYSTEM_PROMPT] + [to_target(r) for r in rows] + [m["text"] or "" for r in rows for m in r["thread"]]
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"), texts)


@pytest.fixture(scope="module")
def adapter(tiny_lm, small_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "adapter"
    rc = main(["-q", "finetune", "--model", str(tiny_lm), "--dataset", str(small_dataset), "--config", CONFIG,
               "--out", str(out), "--max-steps", "40", "--limit", "160", "--eval-limit", "24", "--batch-size", "4",
               "--grad-accum", "1", "--learning-rate", "1e-2", "--logging-steps", "1", "--save-steps", "20",
               "--target-modules", "all-linear"])
    assert rc == 0
    return out


def _read(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_finetune_lowers_the_training_loss_and_writes_an_adapter(adapter):
    s = orjson.loads((adapter / "blueprint_finetune.json").read_bytes())
    losses = [x["loss"] for x in s["train_loss"]]
    assert s["steps"] == 40 and len(losses) >= 40
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3, losses
    assert s["eval_loss"] and s["final_eval_loss"] is not None
    assert s["config"]["lora_r"] == 16 and s["config"]["lora_alpha"] == 16 and s["config"]["lora_dropout"] == 0.1
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["r"] == 16 and cfg["peft_type"] == "LORA"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "tokenizer_config.json").is_file()


def test_predict_with_the_adapter_is_a_valid_submission_that_scores(adapter, small_dataset, tiny_model, tmp_path):
    out = tmp_path / "pred.jsonl"
    rc = main(["-q", "predict", "--model", str(adapter), "--dataset", str(small_dataset), "--config", CONFIG,
               "--out", str(out), "--max-new-tokens", "24", "--batch-size", "16"])
    assert rc == 0
    n, _ = check(out, small_dataset, CONFIG, "test")
    rep = orjson.loads(report_path_for(out).read_bytes())
    assert rep["rows"] == n == rep["parsed"] + rep["fallbacks"]
    assert len(_read(raw_path_for(out))) == n
    res = score(out, small_dataset, CONFIG, score_config=ScoreConfig(bootstrap=0, bertscore=False,
                                                                      model=str(tiny_model)))
    assert 0 <= res["results"]["accuracy"] <= 1


def test_finetune_resumes_from_its_last_checkpoint(tiny_lm, small_dataset, tmp_path):
    from blueprint.models.finetune import FinetuneConfig, finetune

    base = dict(limit=32, eval_limit=8, batch_size=4, grad_accum=1, save_steps=2, logging_steps=1)
    first = finetune(str(tiny_lm), small_dataset, CONFIG, tmp_path / "a", FinetuneConfig(max_steps=4, **base),
                     progress=False)
    assert first["resumed_from"] is None
    second = finetune(str(tiny_lm), small_dataset, CONFIG, tmp_path / "a", FinetuneConfig(max_steps=6, **base),
                      progress=False)
    assert second["resumed_from"].endswith("checkpoint-4") and second["steps"] == 6
    # only steps 5 and 6 ran in the resumed run
    assert [x["step"] for x in second["train_loss"]][-2:] == [5, 6]


def test_focal_loss_matches_an_independent_computation(tiny_lm, small_dataset, tmp_path):
    import torch
    import torch.nn.functional as F

    from blueprint.models.finetune import FinetuneConfig, finetune

    s = finetune(str(tiny_lm), small_dataset, CONFIG, tmp_path / "f",
                 FinetuneConfig(max_steps=2, limit=16, eval_limit=4, batch_size=4, grad_accum=1, loss="focal",
                                gamma=2.0, logging_steps=1), progress=False)
    assert s["steps"] == 2 and s["config"]["loss"] == "focal"
    # the trainer's focal loss on one batch against cross-entropy weighted by (1 - p)^gamma, by hand
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from blueprint.models.finetune import _focal_trainer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    net = AutoModelForCausalLM.from_pretrained(tiny_lm)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": "hello there"}],
                             "completion": [{"role": "assistant", "content": '{"action": "like", "text": null}'}]}] * 2)
    args = SFTConfig(output_dir=str(tmp_path / "x"), report_to="none", use_cpu=True, per_device_train_batch_size=2)
    trainer = _focal_trainer(2.0)(model=net, args=args, train_dataset=ds, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        ours = trainer.compute_loss(trainer.model, dict(batch)).item()
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels.reshape(-1), reduction="none",
                         ignore_index=-100)
    mask = labels.reshape(-1) != -100
    p = torch.exp(-ce)
    expected = (((1 - p) ** 2) * ce)[mask].mean().item()
    assert ours == pytest.approx(expected, rel=1e-4)


def test_predict_resumes_after_a_kill(tiny_lm, small_dataset, tmp_path):
    engine = TransformersEngine(str(tiny_lm), generation=GenerationConfig(max_new_tokens=8, batch_size=8))
    full = tmp_path / "full.jsonl"
    predict(engine, small_dataset, CONFIG, full, progress=False)
    part = tmp_path / "part.jsonl"
    predict(engine, small_dataset, CONFIG, part, progress=False)
    raw = raw_path_for(part)
    lines = raw.read_bytes().splitlines(keepends=True)
    keep = len(lines) // 2
    raw.write_bytes(b"".join(lines[:keep]) + lines[keep][:10])  # a kill in the middle of a line
    rep = predict(engine, small_dataset, CONFIG, part, resume=True, progress=False)
    assert rep["generated"] == len(lines) - keep
    assert sorted(_read(part), key=lambda r: r["id"]) == sorted(_read(full), key=lambda r: r["id"])
    # other settings cannot resume into the same file
    other = TransformersEngine(str(tiny_lm), generation=GenerationConfig(max_new_tokens=9))
    with pytest.raises(Exception, match="other settings"):
        predict(other, small_dataset, CONFIG, part, resume=True, progress=False)


def test_batched_generation_gives_the_sequential_answers(tiny_lm, small_dataset):
    rows = read_split(small_dataset, CONFIG, "test").to_pylist()[:24]
    prompts = [to_messages(r) for r in rows]
    got = {}
    # one at a time, plainly; batched and length-sorted, with and without the shared prefix cache
    for name, bs, sort, share in (("single", 1, False, False), ("batched", 8, True, False),
                                  ("shared", 8, True, True)):
        eng = TransformersEngine(str(tiny_lm), generation=GenerationConfig(max_new_tokens=12, batch_size=bs),
                                 sort_by_length=sort, share_prefix=share)
        answers: dict[int, str | None] = {}
        eng.generate(prompts, lambda i, a, e, into=answers: into.__setitem__(i, a))
        got[name] = answers
    assert len(set(got["single"].values())) > 5  # the model says different things to different threads
    assert got["single"] == got["batched"] == got["shared"]


def test_plain_style_and_strict_templates(tiny_lm, small_dataset, tmp_path):
    out = tmp_path / "plain.jsonl"
    rc = main(["-q", "predict", "--model", str(tiny_lm), "--dataset", str(small_dataset), "--config", CONFIG,
               "--out", str(out), "--style", "plain", "--max-new-tokens", "4"])
    assert rc == 0 and check(out, small_dataset, CONFIG, "test")[0] > 0
    msgs = [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"},
            {"role": "user", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    roles = [m["role"] for m in alternating(msgs)]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert alternating(msgs)[3]["content"] == "b\nc"


# --- the OpenAI-compatible engine against a local server -------------------------------------------------------

ANSWERS = ['{"action": "like", "text": null}', '```json\n{"actions": {"repost": true}, "text": null}\n```',
           '{"actions": null, "text": "Fair point"}', "I would rather not answer.", '{"actions": {"ignore": true}}']


class _Server:
    """A chat-completions server on 127.0.0.1: replays ANSWERS, or answers with a real model; can fail first."""

    def __init__(self, fail_first: int = 0, model=None):
        self.fail_first = fail_first
        self.model = model
        self.requests: list[dict] = []
        self.auth: set[str] = set()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, **body})
                    server.auth.add(self.headers.get("Authorization", ""))
                    n = len(server.requests)
                if n <= server.fail_first:
                    self.send_response(503)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                text = server.answer(body, n)
                key = "message" if self.path.endswith("/chat/completions") else "text"
                choice = {"message": {"role": "assistant", "content": text}} if key == "message" else {"text": text}
                payload = json.dumps({"choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, body, n):
        if self.model is None:
            thread_len = len(body.get("messages", []))
            return ANSWERS[thread_len % len(ANSWERS)]
        torch, tok, net = self.model
        with self.lock, torch.inference_mode():
            text = tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
            out = net.generate(**enc, max_new_tokens=body["max_tokens"], do_sample=False,
                               pad_token_id=tok.pad_token_id)
        return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_openai_engine_retries_a_failing_server_and_keeps_the_key_secret(small_dataset, tmp_path, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("BLUEPRINT_TEST_KEY", secret)
    out = tmp_path / "api.jsonl"
    with _Server(fail_first=2) as srv:
        rc = main(["-q", "predict", "--engine", "openai", "--endpoint", srv.url, "--model", "served-model",
                   "--api-key-env", "BLUEPRINT_TEST_KEY", "--dataset", str(small_dataset), "--config", CONFIG,
                   "--out", str(out), "--concurrency", "1", "--retries", "3"])
    assert rc == 0
    n, _ = check(out, small_dataset, CONFIG, "test")
    rep = orjson.loads(report_path_for(out).read_bytes())
    assert rep["calls"]["ok"] == n and rep["calls"]["retries"] == 2 and rep["calls"].get("failed", 0) == 0
    assert len(srv.requests) == n + 2
    assert srv.auth == {f"Bearer {secret}"}
    assert all(r["model"] == "served-model" and r["path"] == "/v1/chat/completions" for r in srv.requests)
    # what the replayed answers parse to, counted
    rows = read_split(small_dataset, CONFIG, "test").to_pylist()
    ignored = sum(1 for r in rows if len(r["thread"]) % len(ANSWERS) == 4)
    assert rep["errors"].get("the answer chose none of the 13 actions (ignore)", 0) == ignored
    assert rep["fallbacks"] == ignored
    assert rep["repairs"].get("code_fence", 0) == sum(1 for r in rows if len(r["thread"]) % len(ANSWERS) == 1)
    for f in tmp_path.iterdir():
        assert secret.encode() not in f.read_bytes(), f


def test_openai_engine_with_a_real_model_behind_the_server(tiny_lm, small_dataset, tmp_path):
    from blueprint.models.predict import load_causal_lm

    model = load_causal_lm(str(tiny_lm))
    with _Server(model=model) as srv:
        api = OpenAIEngine(srv.url, "tiny", generation=GenerationConfig(max_new_tokens=6), concurrency=4)
        rep = predict(api, small_dataset, CONFIG, tmp_path / "api.jsonl", progress=False)
    local = TransformersEngine(str(tiny_lm), generation=GenerationConfig(max_new_tokens=6, batch_size=1))
    rep_local = predict(local, small_dataset, CONFIG, tmp_path / "local.jsonl", progress=False)
    assert rep["calls"]["ok"] == rep["rows"]
    raw_api = {r["id"]: r["raw"].strip() for r in _read(raw_path_for(tmp_path / "api.jsonl"))}
    raw_local = {r["id"]: r["raw"] for r in _read(raw_path_for(tmp_path / "local.jsonl"))}
    assert raw_api == raw_local and rep_local["rows"] == rep["rows"]


def test_openai_engine_gives_up_and_falls_back(small_dataset, tmp_path):
    with _Server(fail_first=10_000) as srv:
        api = OpenAIEngine(srv.url, "m", retries=1, backoff=0.0, concurrency=2)
        rep = predict(api, small_dataset, CONFIG, tmp_path / "down.jsonl", progress=False)
    assert rep["fallbacks"] == rep["rows"] and rep["calls"]["failed"] == rep["rows"]
    assert check(tmp_path / "down.jsonl", small_dataset, CONFIG, "test")[0] == rep["rows"]
    assert list(rep["errors"]) == ["call failed: HTTP 503"]


def test_bad_predict_input_exits_2(small_dataset, tmp_path):
    base = ["predict", "--dataset", str(small_dataset), "--config", CONFIG, "--out", str(tmp_path / "p.jsonl")]
    assert main(base + ["--model", "m", "--engine", "openai"]) == 2  # no endpoint
    assert main(base + ["--model", "m", "--engine", "openai", "--endpoint", "http://127.0.0.1:9/v1",
                        "--api-key-env", "BLUEPRINT_UNSET_VAR"]) == 2
    assert main(base + ["--model", str(tmp_path / "missing-model")]) == 2
    assert main(base + ["--model", "m", "--reparse"]) == 2  # no raw answers yet


def test_finetune_with_an_empty_validation_split(tiny_lm, small_dataset, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    ds = tmp_path / "ds"
    shutil.copytree(small_dataset, ds)
    for f in (ds / "data" / CONFIG).glob("validation-*.parquet"):
        t = pq.read_table(f)
        pq.write_table(t.slice(0, 0), f)
    rc = main(["-q", "finetune", "--model", str(tiny_lm), "--dataset", str(ds), "--config", CONFIG, "--out",
               str(tmp_path / "a"), "--max-steps", "2", "--limit", "8", "--batch-size", "4", "--grad-accum", "1"])
    assert rc == 0
    s = orjson.loads((tmp_path / "a" / "blueprint_finetune.json").read_bytes())
    assert s["validation_rows"] == 0 and s["final_eval_loss"] is None and s["steps"] == 2


def test_finetune_says_so_when_max_length_cuts_every_answer(tiny_lm, small_dataset, tmp_path, capsys):
    # the system prompt alone is longer than 16 tokens: TRL would drop every row and torch fail on an empty sampler
    rc = main(["-q", "finetune", "--model", str(tiny_lm), "--dataset", str(small_dataset), "--config", CONFIG,
               "--out", str(tmp_path / "a"), "--max-steps", "2", "--limit", "8", "--max-length", "16"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "max_length" in err and "raise --max-length" in err


def test_a_short_run_logs_enough_losses_to_show_the_change(tiny_lm, small_dataset, tmp_path, capsys):
    """8 steps with the default --logging-steps 10: the loss is logged every step (at least ten times a run, or
    every step of a shorter one), so the summary shows it move instead of one value twice."""
    from blueprint.models.finetune import logging_steps

    assert [logging_steps(10, t) for t in (8, 25, 100, 1000)] == [1, 2, 10, 10]
    out = tmp_path / "adapter"
    assert main(["finetune", "--model", str(tiny_lm), "--dataset", str(small_dataset), "--config", CONFIG,
                 "--out", str(out), "--max-steps", "8", "--limit", "32", "--batch-size", "4", "--grad-accum", "1",
                 "--eval-limit", "4", "--learning-rate", "1e-2"]) == 0
    from blueprint.models.finetune import SUMMARY

    summary = orjson.loads((out / SUMMARY).read_bytes())
    line = capsys.readouterr().out
    first, last = re.search(r"training loss (\S+) -> (\S+) \((\d+) values logged", line).groups()[:2]
    assert first != last and "8 values logged, steps 1..8" in line, line
    assert [h["step"] for h in summary["train_loss"]] == list(range(1, 9))


@pytest.mark.full  # three predictions and three scorings
def test_the_experiment_runs_its_three_predictions_and_resumes(tiny_lm, small_dataset, tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["-q", "experiment", "--model", str(tiny_lm), "--dataset", str(small_dataset), "--config", f"{CONFIG}_c0",
            "--out", str(out), "--max-steps", "2", "--limit", "8", "--max-new-tokens", "8", "--train-limit", "16"]
    assert main(args) == 0
    report = json.loads((out / "experiment.json").read_text())
    assert list(report["runs"]) == ["base", "base_persona", "finetuned"]
    for name, run in report["runs"].items():
        assert run["rows"] == 8 and run["persona"] == (name != "base")
        assert check(out / "predictions" / f"{name}.jsonl", small_dataset, f"{CONFIG}_c0", "test",
                     subset=out / "predictions" / f"{name}.subset.txt")[0] == 8
        results = json.loads((out / "results" / f"{name}.json").read_text())
        assert run["scores"]["accuracy"] == results["results"]["accuracy"]
    assert report["runs"]["finetuned"]["training"]["steps"] == 2
    table = (out / "experiment.md").read_text()
    assert "| accuracy |" in table and table.count("|---") == 4
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.jsonl")}
    assert main(args) == 0  # every stage is there: nothing runs again
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    capsys.readouterr()
    assert main(args[:-1] + ["32"]) == 2  # other settings in the same folder
    assert "other settings" in capsys.readouterr().err


def test_bfloat16_autocast_only_where_the_processor_computes_in_it():
    from pathlib import Path

    from blueprint.errors import BadInputError
    from blueprint.models.finetune import training_precision

    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    native = bool(flags & {"amx_bf16", "avx512_bf16"})
    on, why = training_precision("auto")
    assert on is native and why.startswith("bfloat16 autocast" if native else "float32")
    assert training_precision("float32") == (False, "float32 (asked for)")
    assert training_precision("bfloat16")[0] is True
    with pytest.raises(BadInputError):
        training_precision("fp8")
