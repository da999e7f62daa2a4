"""``blueprint predict``: a causal LM, or an OpenAI-compatible server, answers a split: a valid submission."""

from __future__ import annotations

import argparse
from pathlib import Path

from blueprint.cli._args import option
from blueprint.cli._common import dataset_options
from blueprint.errors import BadInputError
from blueprint.models.engine import GenerationConfig
from blueprint.models.openai_engine import OpenAIEngine
from blueprint.models.transformers_engine import TransformersEngine


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="a causal LM (or an OpenAI-compatible server) answers a split: a submission",
                       description="Writes PRED.jsonl (a valid submission), PRED.raw.jsonl (the raw answers, "
                                   "kept so that --reparse can parse them again without the model) and "
                                   "PRED.report.json (repairs, parse errors and fallbacks).")
    p.add_argument("--model", required=True,
                   help="smollm2-135m-instruct (the packaged real model), a .gguf file, a local folder, a Hub id, or "
                        "a folder holding a LoRA adapter; with --engine openai, the model name the server serves")
    dataset_options(p)
    p.add_argument("--out", required=True, type=Path,
                   help="the predictions file to write (PRED.jsonl; PRED.raw.jsonl and PRED.report.json beside it)")
    p.add_argument("--engine", choices=("transformers", "openai"), default="transformers",
                   help="transformers (a model run here, default) or openai (an OpenAI-compatible server)")
    p.add_argument("--endpoint", default=None, help="openai: the server's base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="openai: the environment variable that holds the API key (never pass a key itself)")
    option(p, "--style", choices=("chat", "plain"), source=TransformersEngine,
           help="chat: the model's chat template (default); plain: one prompt string for base models")
    p.add_argument("--persona", action="store_true", help="describe the row's persona in the system message")
    option(p, "--max-new-tokens", type=int, source=GenerationConfig, help="the longest answer, in tokens "
                                                                          "(default: %(default)s)")
    option(p, "--temperature", type=float, source=GenerationConfig, help="0 (default) is greedy decoding")
    option(p, "--top-p", type=float, source=GenerationConfig,
           help="nucleus sampling (with --temperature > 0; default: %(default)s)")
    option(p, "--seed", type=int, source=GenerationConfig,
           help="for sampling (--temperature > 0) and for the --limit sample (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="answer only N rows, a sample stratified by persona cluster and drawn with --seed (the same "
                        "rows on every run); their ids go to PRED.subset.txt, for score --subset (default: every "
                        "row)")
    option(p, "--batch-size", type=int, source=GenerationConfig, help="transformers: prompts per generate call")
    p.add_argument("--device", default=None, help="transformers: cpu, cuda, cuda:1 (default: cuda when there)")
    option(p, "--dtype", choices=("auto", "float32", "bfloat16", "float16"), source=TransformersEngine,
           help="weights' type: auto is bfloat16 on a GPU that has it, float32 otherwise")
    option(p, "--concurrency", type=int, source=OpenAIEngine, help="openai: requests in flight")
    option(p, "--retries", type=int, source=OpenAIEngine, help="openai: retries per request, with backoff")
    p.add_argument("--fallback", default=None, metavar="ACTION",
                   help="the action of rows whose answer is unusable (default: the train split's most common)")
    p.add_argument("--resume", action="store_true", help="keep the rows already answered in PRED.raw.jsonl")
    p.add_argument("--reparse", action="store_true", help="parse PRED.raw.jsonl again; run no model")


def run(a: argparse.Namespace) -> None:
    from blueprint.models.predict import predict, reparse, report_path_for

    if a.reparse:
        r = reparse(a.dataset, a.config, a.out, split=a.split, fallback=a.fallback)
    else:
        gen = GenerationConfig(max_new_tokens=a.max_new_tokens, temperature=a.temperature, top_p=a.top_p,
                               seed=a.seed, batch_size=a.batch_size)
        if a.engine == "openai":
            if not a.endpoint:
                raise BadInputError("--engine openai needs --endpoint URL", field="endpoint")
            engine: OpenAIEngine | TransformersEngine = OpenAIEngine(
                a.endpoint, a.model, style=a.style, generation=gen, api_key_env=a.api_key_env,
                concurrency=a.concurrency, retries=a.retries)
        else:
            engine = TransformersEngine(a.model, style=a.style, generation=gen, device=a.device, dtype=a.dtype)
        r = predict(engine, a.dataset, a.config, a.out, split=a.split, persona=a.persona, fallback=a.fallback,
                    resume=a.resume, progress=not a.quiet, limit=a.limit, seed=a.seed)
    fb = r["fallback"]
    print(f"{a.out}: {r['rows']} predictions ({a.config}/{a.split}); parsed {r['parsed']}, fallback "
          f"{r['fallbacks']} ({r['fallback_rate']:.1%}, action {fb['action']})")
    if r["repairs"]:
        print("  repairs: " + ", ".join(f"{k} {v}" for k, v in r["repairs"].items()))
    if r["errors"]:
        print("  unusable: " + "; ".join(f"{k}: {v}" for k, v in r["errors"].items()))
    print(f"  raw answers {r['raw_answers']}; report {report_path_for(a.out)}")
    if r.get("subset"):
        sub = r["subset"]
        print(f"  a subset of {sub['rows']} of {sub['original']} rows (--limit {sub['limit']}, seed {sub['seed']}); "
              f"its ids: {sub['file']} (score it with --subset {sub['file']})")
