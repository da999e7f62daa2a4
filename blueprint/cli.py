"""The ``blueprint`` command.

Exit codes: 0 ok; 2 bad input, with a one-line message naming the file, line and
field; 1 internal error; 3 ``audit`` found a privacy problem.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from blueprint import __version__
from blueprint.errors import BadInputError

log = logging.getLogger("blueprint")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInputError(f"{message} (see: {self.prog} --help)")


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


# Help for options shared by several commands, by destination; a command's own wording is given where it is defined.
_SHARED_HELP = {
    "dataset": "the exported dataset directory (a folder with README.md and data/)",
    "config": "the config: a partition such as 25_clusters, or one persona such as 25_clusters_c6",
    "split": "train, validation or test (default: %(default)s)",
    "seed": "random seed (default: %(default)s)",
    "predictions": "the predictions file (JSONL: id, action, text)",
}
_OWN_HELP = {
    ("synth", "out"): "the folder to write the corpus to (bluesky-YYYY-MM/DD/HH/ files and _meta/)",
    ("synth", "users"): "synthetic users (default: %(default)s)",
    ("synth", "events_per_user"): "mean events per user (default: %(default)s)",
    ("synth", "days"): "days the corpus spans (default: %(default)s)",
    ("synth", "compress"): "compress each hourly file with gzip or zstd",
    ("build", "partitions"): "cluster counts, e.g. 2,25 (default: 2,25)",
    ("build", "size_min"): "the fewest users a persona may have (default: %(default)s, as the paper)",
    ("build", "size_max"): "the most users a persona may have (default: none; setting it uses the exact solver)",
    ("build", "cluster_method"): "exact (k-means-constrained), fast (k-means plus repair) or auto (default)",
    ("build", "pooling"): "sentence pooling of the embedding model (default: what the model declares)",
    ("build", "max_length"): "tokens per text for the embedding model (default: %(default)s)",
    ("build", "batch_size"): "texts per embedding batch (default: %(default)s)",
    ("build", "title"): "the dataset's title on its card (default: %(default)s)",
    ("baseline", "name"): "majority, cluster_majority, random, persona_prior, retrieval or gbdt",
    ("baseline", "out"): "the predictions file to write (JSONL)",
    ("predict", "out"): "the predictions file to write (PRED.jsonl; PRED.raw.jsonl and PRED.report.json beside it)",
    ("predict", "engine"): "transformers (a model run here, default) or openai (an OpenAI-compatible server)",
    ("predict", "max_new_tokens"): "the longest answer, in tokens (default: %(default)s)",
    ("predict", "top_p"): "nucleus sampling (with --temperature > 0; default: %(default)s)",
    ("predict", "dtype"): "weights' type: auto is bfloat16 on a GPU that has it, float32 otherwise",
    ("finetune", "loss"): "ce (cross-entropy, default) or focal (the paper's variant)",
    ("finetune", "lora_r"): "LoRA rank (default: %(default)s)",
    ("finetune", "lora_alpha"): "LoRA alpha (default: %(default)s)",
    ("finetune", "lora_dropout"): "LoRA dropout (default: %(default)s)",
    ("finetune", "learning_rate"): "peak learning rate (default: %(default)s)",
    ("finetune", "epochs"): "passes over the train split (default: %(default)s)",
    ("finetune", "batch_size"): "rows per device step (default: %(default)s)",
    ("finetune", "grad_accum"): "steps accumulated per optimizer step (default: %(default)s)",
    ("finetune", "max_length"): "tokens per training example at most (default: %(default)s)",
    ("finetune", "style"): "chat (the model's chat template, default) or plain (one prompt string)",
    ("finetune", "save_steps"): "a checkpoint every N optimizer steps, to resume from (default: %(default)s)",
    ("finetune", "logging_steps"): "log the training loss every N steps (default: %(default)s)",
    ("finetune", "gradient_checkpointing"): "trade compute for memory on large models",
    ("leaderboard", "results_dir"): "a folder of results files written by blueprint score",
    ("leaderboard", "out"): "the folder to write leaderboard.md and index.html to",
    ("audit", "dataset"): "the exported dataset directory",
    ("stats", "dataset"): "the exported dataset directory",
    ("scrub", "region"): "default region for phone numbers without a country code (default: %(default)s)",
}


def _fill_help(sub: argparse._SubParsersAction) -> None:
    """Give every option without its own help the shared wording; a missing one is a bug (tested)."""
    for command, parser in sub.choices.items():
        for action in parser._actions:
            if action.help is None and not isinstance(action, argparse._HelpAction):
                action.help = _OWN_HELP.get((command, action.dest), _SHARED_HELP.get(action.dest))


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="blueprint", description="BluePrint: persona datasets from Bluesky, and a next-action "
                                              "benchmark for LLM social-media agents.")
    p.add_argument("--version", action="version", version=f"blueprint {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, no progress bars")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("demo", help="the main job on the embedded default: synthetic corpus -> dataset -> "
                                    "baseline -> score -> leaderboard")
    d.add_argument("--out", required=True, type=Path, help="output folder")
    d.add_argument("--users", type=int, default=600, help="synthetic users (default 600)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--partitions", type=_ints, default=(2, 25), help="cluster counts, e.g. 2,25 (default)")
    d.add_argument("--model", default="default", help="embedding model: 'default', a local folder or a Hub id")
    d.add_argument("--resume", action="store_true", help="reuse finished stages of an earlier run")

    s = sub.add_parser("synth", help="write a synthetic Jetstream corpus with personas and planted PII")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--users", type=int, default=1000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--personas", type=int, default=None, help="latent personas (default: all 8)")
    s.add_argument("--events-per-user", type=float, default=30.0)
    s.add_argument("--pii-rate", type=float, default=0.1, help="share of texts with planted PII (default 0.1)")
    s.add_argument("--corrupt-rate", type=float, default=0.0, help="share of lines followed by a malformed line")
    s.add_argument("--days", type=float, default=5.0)
    s.add_argument("--compress", choices=("gz", "zst"), default=None)
    s.add_argument("--force", action="store_true", help="replace an existing output folder")

    co = sub.add_parser("collect", help="capture Bluesky from a Jetstream instance into hourly files that build reads",
                        description="Writes every event verbatim into OUT/YYYY-MM/DD/HH/jetstream.jsonl (zstd once the "
                                    "hour is over); resumes from OUT/_cursor.json. Ctrl-C or SIGTERM stops cleanly.")
    co.add_argument("--out", required=True, type=Path, help="the capture folder (RAW_DIR for blueprint build)")
    co.add_argument("--endpoint", default="wss://jetstream2.us-east.bsky.network/subscribe",
                    help="a Jetstream subscribe URL, ws:// or wss:// (default: %(default)s)")
    co.add_argument("--collections", nargs="+", default=None, metavar="NSID",
                    help="collections to ask for (default: the five behind the 13 actions: post, like, repost, "
                         "follow, block)")
    co.add_argument("--dids", type=Path, default=None, metavar="FILE", help="only these users (one DID per line)")
    stop = co.add_mutually_exclusive_group()
    stop.add_argument("--until", default=None, metavar="TIME",
                      help="stop at the first event at or after TIME (ISO 8601, or unix microseconds)")
    stop.add_argument("--max-events", type=int, default=None, metavar="N",
                      help="stop once the capture holds N events (counted over restarts)")
    co.add_argument("--window-s", type=float, default=5.0,
                    help="a reconnection asks for events from the cursor minus this many seconds (default 5)")
    co.add_argument("--flush-s", type=float, default=1.0,
                    help="flush the files and write the cursor at least this often (default 1 s)")

    b = sub.add_parser("build", help="run the SIMPACT pipeline on raw records")
    b.add_argument("inputs", nargs="+", type=Path,
                   help="Jetstream JSONL (.jsonl, .gz, .zst), repository exports (.car), getPostThread "
                        "responses (.json), or folders of them")
    b.add_argument("--out", required=True, type=Path, help="dataset directory to write")
    b.add_argument("--work-dir", type=Path, default=None, help="intermediate results (default: <out>-work)")
    b.add_argument("--partitions", type=_ints, default=(2, 25))
    b.add_argument("--size-min", type=int, default=10)
    b.add_argument("--size-max", type=int, default=None)
    b.add_argument("--cluster-method", choices=("auto", "exact", "fast"), default="auto")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--secret-file", type=Path, default=None, help="pseudonym secret (at least 32 bytes)")
    b.add_argument("--model", default="default", help="embedding model: 'default', a local folder or a Hub id")
    b.add_argument("--pooling", choices=("auto", "cls", "mean"), default="auto")
    b.add_argument("--max-length", type=int, default=128)
    b.add_argument("--batch-size", type=int, default=64)
    b.add_argument("--embed-backend", choices=("torch", "onnx", "onnx-int8", "openvino", "openvino-bf16"),
                   default="torch",
                   help="how the embedding model runs: torch (default); onnx (ONNX Runtime); onnx-int8; openvino; "
                        "openvino-bf16 (the fastest on a CPU with bfloat16 instructions, cosine >= 0.999 to torch: "
                        "see benchmarks/bench_embed.py). All but torch need pip install -e \".[fast-embed]\"")
    b.add_argument("--include-quotes", action="store_true", help="quotes count towards a user's embedding too")
    b.add_argument("--embed-cache", default="default",
                   help="embedding cache folder; 'default' is $BLUEPRINT_CACHE/embeddings, 'none' disables it")
    b.add_argument("--n-init", type=int, default=3, help="k-means starts per partition (default 3)")
    b.add_argument("--langs", default="en", help="kept post languages, comma-separated; 'any' keeps all")
    b.add_argument("--topics", nargs="+", default=["default"], metavar="FILE",
                   help="topic keyword list files (one keyword per line); 'default' is the shipped 2025 "
                        "Canadian federal election list, 'none' keeps every topic")
    b.add_argument("--min-user-posts", type=int, default=2, help="kept posts and replies a user needs (default 2)")
    b.add_argument("--max-depth", type=int, default=5, help="messages per thread at most")
    b.add_argument("--splits", type=_floats, default=(0.9, 0.05, 0.05), help="train,validation,test fractions")
    b.add_argument("--pii-region", default="CA", help="default region for phone numbers without country code")
    b.add_argument("--remove-dids", type=Path, default=None, metavar="FILE",
                   help="removal requests, one DID per line: their threads are dropped and their messages in "
                        "other threads read <REMOVED>")
    b.add_argument("--hold-out-labels", type=Path, default=None, metavar="FILE",
                   help="release the test split without labels and write them to FILE (outside the dataset)")
    b.add_argument("--time-mode", choices=("global", "cluster"), default="global",
                   help="relative_integer_time ranks over the whole dataset (default, as the paper) or per cluster")
    b.add_argument("--title", default="BluePrint")
    b.add_argument("--workers", type=int, default=0,
                   help="worker processes for ingest and for the export's PII scrubbing (default 0: one per CPU)")
    b.add_argument("--resume", action="store_true", help="skip finished stages, continue a killed one")
    b.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (this machine, default) or ray (a local Ray instance, or the cluster at "
                        "--ray-address); the dataset is the same bytes either way")
    b.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --engine ray: join this Ray cluster (e.g. ray://head:10001 or auto)")
    b.add_argument("--num-gpus", type=float, default=0,
                   help="with --engine ray: GPUs for the embedding actors (one actor per GPU)")
    b.add_argument("--embed-actors", type=int, default=None,
                   help="with --engine ray: embedding actors (default: one per GPU, else one)")

    bl = sub.add_parser("baseline", help="run a baseline and write its predictions",
                        description="Baselines: majority, cluster_majority, random, persona_prior, retrieval, gbdt. "
                                    "Each fits on the train split and writes a valid submission.")
    bl.add_argument("name")
    bl.add_argument("--dataset", required=True, type=Path)
    bl.add_argument("--config", required=True)
    bl.add_argument("--split", default="test")
    bl.add_argument("--out", required=True, type=Path)
    bl.add_argument("--seed", type=int, default=None, help="random, persona_prior (sample), retrieval, gbdt")
    bl.add_argument("--mode", choices=("argmax", "sample"), default=None, help="persona_prior: argmax (default) "
                                                                              "or sampled from the cluster's mix")
    bl.add_argument("--engine", choices=("auto", "lightgbm", "sklearn"), default=None,
                    help="gbdt: LightGBM when installed (auto), or scikit-learn's HistGradientBoosting")
    bl.add_argument("--model", default=None, help="retrieval, gbdt: the context embedding model (default: the "
                                                  "packaged all-MiniLM-L6-v2)")

    pr = sub.add_parser("predict", help="a causal LM (or an OpenAI-compatible server) answers a split: a submission",
                        description="Writes PRED.jsonl (a valid submission), PRED.raw.jsonl (the raw answers, "
                                    "kept so that --reparse can parse them again without the model) and "
                                    "PRED.report.json (repairs, parse errors and fallbacks).")
    pr.add_argument("--model", required=True, help="a local folder, a Hub id, or a folder holding a LoRA adapter; "
                                                   "with --engine openai, the model name the server serves")
    pr.add_argument("--dataset", required=True, type=Path)
    pr.add_argument("--config", required=True)
    pr.add_argument("--split", default="test")
    pr.add_argument("--out", required=True, type=Path)
    pr.add_argument("--engine", choices=("transformers", "openai"), default="transformers")
    pr.add_argument("--endpoint", default=None, help="openai: the server's base URL, e.g. http://127.0.0.1:8000/v1")
    pr.add_argument("--api-key-env", default=None, metavar="VAR",
                    help="openai: the environment variable that holds the API key (never pass a key itself)")
    pr.add_argument("--style", choices=("chat", "plain"), default="chat",
                    help="chat: the model's chat template (default); plain: one prompt string for base models")
    pr.add_argument("--persona", action="store_true", help="describe the row's persona in the system message")
    pr.add_argument("--max-new-tokens", type=int, default=128)
    pr.add_argument("--temperature", type=float, default=0.0, help="0 (default) is greedy decoding")
    pr.add_argument("--top-p", type=float, default=1.0)
    pr.add_argument("--seed", type=int, default=0, help="for sampling (--temperature > 0)")
    pr.add_argument("--batch-size", type=int, default=8, help="transformers: prompts per generate call")
    pr.add_argument("--device", default=None, help="transformers: cpu, cuda, cuda:1 (default: cuda when there)")
    pr.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    pr.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight")
    pr.add_argument("--retries", type=int, default=4, help="openai: retries per request, with backoff")
    pr.add_argument("--fallback", default=None, metavar="ACTION",
                    help="the action of rows whose answer is unusable (default: the train split's most common)")
    pr.add_argument("--resume", action="store_true", help="keep the rows already answered in PRED.raw.jsonl")
    pr.add_argument("--reparse", action="store_true", help="parse PRED.raw.jsonl again; run no model")

    ft = sub.add_parser("finetune", help="fine-tune a causal LM on a config's train split (TRL SFTTrainer, LoRA)",
                        description="Supervised fine-tuning with the paper's settings by default: LoRA r=16, "
                                    "alpha=16, dropout 0.1, learning rate 3e-4, 3 epochs, batch 2 with gradient "
                                    "accumulation 16. The output folder is what predict --model takes.")
    ft.add_argument("--model", required=True, help="a local folder or a Hub id")
    ft.add_argument("--dataset", required=True, type=Path)
    ft.add_argument("--config", required=True)
    ft.add_argument("--out", required=True, type=Path, help="the adapter folder (checkpoints in OUT/checkpoints)")
    ft.add_argument("--loss", choices=("ce", "focal"), default="ce")
    ft.add_argument("--gamma", type=float, default=1.0, help="focal loss exponent (default 1, as the paper)")
    ft.add_argument("--no-lora", action="store_true", help="train every weight instead of a LoRA adapter")
    ft.add_argument("--lora-r", type=int, default=16)
    ft.add_argument("--lora-alpha", type=int, default=16)
    ft.add_argument("--lora-dropout", type=float, default=0.1)
    ft.add_argument("--target-modules", default="auto",
                    help="comma-separated module names, 'all-linear', or auto: q/k/v/o projections (default)")
    ft.add_argument("--learning-rate", type=float, default=3e-4)
    ft.add_argument("--epochs", type=float, default=3.0)
    ft.add_argument("--batch-size", type=int, default=2)
    ft.add_argument("--grad-accum", type=int, default=16)
    ft.add_argument("--max-steps", type=int, default=-1, help="stop after N optimizer steps (a quick run)")
    ft.add_argument("--limit", type=int, default=None, help="train on N rows (a seeded sample)")
    ft.add_argument("--eval-limit", type=int, default=1000, help="validation rows (default 1000)")
    ft.add_argument("--max-length", type=int, default=2048)
    ft.add_argument("--style", choices=("chat", "plain"), default="chat")
    ft.add_argument("--persona", action="store_true", help="describe the row's persona in the system message")
    ft.add_argument("--save-steps", type=int, default=200)
    ft.add_argument("--logging-steps", type=int, default=10)
    ft.add_argument("--gradient-checkpointing", action="store_true")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--no-resume", action="store_true", help="start over instead of resuming from a checkpoint")

    v = sub.add_parser("validate", help="check a predictions file before scoring",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="""A predictions file is JSONL, one line per evaluated row:

  {"id": "<row id>", "action": "<one of the 13 actions>", "text": "<text>" or null}

text is required (non-empty, at most 3,000 characters) for post, reply, quote and
post_update, and null or absent for every other action (a text there is ignored,
with a warning). Every row of the split has exactly one line; no other key is allowed.

The optional meta file (--meta META.json) is an object with some of: model_name,
revision, parameters (int), trained_on, saw_train_split (bool), contact, link.

Every problem is reported at once, with its line and field. Exit 2 on any error,
0 when the file is valid (warnings are printed). Nothing is written.""")
    v.add_argument("predictions", type=Path)
    v.add_argument("--dataset", required=True, type=Path)
    v.add_argument("--config", required=True)
    v.add_argument("--split", default="test")
    v.add_argument("--meta", type=Path, default=None, help="the submission's meta file (JSON)")
    v.add_argument("--max-bytes", type=int, default=200 * 1024 * 1024,
                   help="refuse a predictions file larger than this, before reading it (default: 200 MB)")

    sc = sub.add_parser("score", help="score a predictions file into a results JSON (and a per-sample JSONL)")
    sc.add_argument("predictions", type=Path, nargs="?")
    sc.add_argument("--dataset", type=Path)
    sc.add_argument("--config")
    sc.add_argument("--split", default="test")
    sc.add_argument("--out", type=Path, help="the results file to write (JSON); OUT.samples.jsonl goes beside it")
    sc.add_argument("--meta", type=Path, default=None, help="the submission's meta file (JSON), kept in the results")
    sc.add_argument("--schema", action="store_true", help="print the JSON Schema of a results file and exit")
    sc.add_argument("--name", default=None, help="model name on the leaderboard (default: the model blueprint "
                                                 "predict ran, else the file's stem)")
    sc.add_argument("--labels", type=Path, default=None,
                    help="the hidden test labels written by build --hold-out-labels")
    sc.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for intervals (default 200)")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--model", default="default", help="embedding model for the text metrics and BERTScore")
    sc.add_argument("--no-bertscore", action="store_true", help="skip BERTScore")
    sc.add_argument("--rare", default=None, help="comma-separated rare actions (default: the seven rarest kinds)")
    sc.add_argument("--rare-from-train", action="store_true",
                    help="rare actions are those under 5%% of the config's train split")

    lb = sub.add_parser("leaderboard", help="render results files as a leaderboard page")
    lb.add_argument("results_dir", type=Path)
    lb.add_argument("--out", required=True, type=Path)

    au = sub.add_parser("audit", help="privacy audit of a built dataset; exit code 3 when a hard check fails")
    au.add_argument("dataset", type=Path)
    au.add_argument("--raw", nargs="+", type=Path, default=(), help="the raw input, to find leaked DIDs and handles")
    au.add_argument("--out", type=Path, default=None, help="report folder (default: <dataset>-audit)")
    au.add_argument("--min-cluster", type=int, default=10, help="smallest persona size allowed (default 10)")

    st = sub.add_parser("stats", help="threads, users, and counts per action and per cluster")
    st.add_argument("dataset", type=Path)
    st.add_argument("--json", action="store_true", help="print JSON instead of tables")

    sr = sub.add_parser("scrub", help="PII-scrub text lines from stdin to stdout")
    sr.add_argument("--json", action="store_true", help="write the spans found, one JSON object per line")
    sr.add_argument("--region", default="CA")
    _fill_help(sub)
    return p


def _cmd_demo(a: argparse.Namespace) -> None:
    from blueprint.demo import run_demo

    r = run_demo(a.out, users=a.users, seed=a.seed, partitions=a.partitions, model=a.model, resume=a.resume,
                 progress=not a.quiet)
    m = r.manifest
    print(f"\nBluePrint demo finished in {r.seconds:.0f} s.")
    print(f"  dataset      {r.dataset_dir}  ({m['rows']} threads)")
    for k in m["partitions"]:
        name = f"{k}_clusters"
        counts = m["configs"][name]
        print(f"    {name}: " + ", ".join(f"{s} {counts[s]}" for s in ("train", "validation", "test")))
    print(f"  results      {r.results}/")
    for name, sc in r.scores.items():
        print(f"    {name}: accuracy {sc['accuracy']:.4f}, macro-F1 {sc['macro_f1']:.4f}, "
              f"action JS {sc['action_js']:.4f}")
    print(f"  leaderboard  {r.leaderboard['markdown']}  and  {r.leaderboard['html']}")


def _cmd_synth(a: argparse.Namespace) -> None:
    from blueprint.synth import SynthConfig, synthesize
    from blueprint.synth.personas import PERSONAS

    cfg = SynthConfig(users=a.users, seed=a.seed, personas=a.personas or len(PERSONAS),
                      events_per_user=a.events_per_user, pii_rate=a.pii_rate, corrupt_rate=a.corrupt_rate,
                      days=a.days, compress=a.compress)
    r = synthesize(a.out, cfg, force=a.force)
    c = r.counts
    print(f"{a.out}: {c['lines']} lines in {len(r.files)} files, {c['users']} users; "
          f"planted PII spans {sum(c['pii'].values())}; malformed lines {sum(c['corrupt'].values())}")


def _cmd_collect(a: argparse.Namespace) -> int:
    from blueprint.actions import COLLECTIONS
    from blueprint.collect import CollectConfig, collect, parse_time, read_dids

    cfg = CollectConfig(endpoint=a.endpoint, collections=tuple(a.collections or sorted(COLLECTIONS)),
                        dids=read_dids(a.dids) if a.dids else (), until_us=parse_time(a.until) if a.until else None,
                        max_events=a.max_events, window_s=a.window_s, flush_s=a.flush_s)
    r = collect(a.out, cfg, progress=not a.quiet)
    by = ", ".join(f"{k.rsplit('.', 1)[-1]} {v}" for k, v in sorted(r.by_collection.items())) or "none"
    print(f"{a.out}: {r.written} events written ({by}); {r.duplicates} duplicates dropped; "
          f"{sum(r.quarantined.values())} frames quarantined; {r.reconnects} reconnections; "
          f"stopped by {r.stopped or 'signal'}; cursor {r.cursor}")
    return 0


def _cmd_build(a: argparse.Namespace) -> None:
    from blueprint.simpact.cluster import ClusterConfig
    from blueprint.simpact.export import ExportConfig
    from blueprint.simpact.ingest import IngestConfig
    from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build
    from blueprint.simpact.privacy import read_removal_list
    from blueprint.simpact.threads import ThreadConfig

    langs = None if a.langs.strip().lower() == "any" else tuple(x.strip() for x in a.langs.split(",") if x.strip())
    cfg = BuildConfig(
        ingest=IngestConfig(workers=a.workers),
        threads=ThreadConfig(max_depth=a.max_depth, langs=langs, topics=_topics(a.topics),
                             min_user_posts=a.min_user_posts),
        embed=EmbedConfig(model=a.model, pooling=a.pooling, max_length=a.max_length, batch_size=a.batch_size,
                          include_quotes=a.include_quotes, backend=a.embed_backend,
                          cache_dir=None if a.embed_cache == "none" else a.embed_cache),
        cluster=ClusterConfig(partitions=a.partitions, size_min=a.size_min, size_max=a.size_max,
                              method=a.cluster_method, seed=a.seed, n_init=a.n_init),
        export=ExportConfig(fractions=a.splits, time_mode=a.time_mode),
        pii_region=a.pii_region, title=a.title,
        remove_dids=read_removal_list(a.remove_dids) if a.remove_dids else (),
        hold_out_labels=str(a.hold_out_labels) if a.hold_out_labels else None)
    if a.engine == "ray":
        from blueprint.simpact.ray_engine import RayEngine

        with RayEngine(a.ray_address, num_gpus=a.num_gpus, embed_actors=a.embed_actors) as engine:
            r = build(a.inputs, a.out, cfg, work_dir=a.work_dir, secret_file=a.secret_file, resume=a.resume,
                      progress=not a.quiet, engine=engine)
    else:
        if a.ray_address or a.num_gpus or a.embed_actors:
            raise BadInputError("--ray-address, --num-gpus and --embed-actors need --engine ray", field="--engine")
        r = build(a.inputs, a.out, cfg, work_dir=a.work_dir, secret_file=a.secret_file, resume=a.resume,
                  progress=not a.quiet)
    e = r.reports["export"]
    print(f"dataset: {r.dataset_dir} ({e['rows']} threads, {len(e['configs'])} configs)")
    if cfg.remove_dids:
        print(f"removal: {len(cfg.remove_dids)} DIDs listed; {e['dropped'].get('removal_request', 0)} threads "
              f"dropped; {e['removed_messages']} messages replaced by <REMOVED>")
    print(f"work:    {r.work_dir} (reports per stage; raw data, keep it private)")
    print(f"secret:  {r.secret_file}")


def _topics(values: list[str]) -> tuple[str, ...] | None:
    from blueprint.simpact.threads import default_keywords, read_keywords

    if [v.lower() for v in values] == ["none"]:
        return None
    words: list[str] = []
    for v in values:
        words.extend(default_keywords() if v == "default" else read_keywords(v))
    return tuple(dict.fromkeys(words))


def _cmd_baseline(a: argparse.Namespace) -> None:
    from blueprint.baselines import run_baseline

    options = {k: v for k, v in (("seed", a.seed), ("mode", a.mode), ("engine", a.engine), ("model", a.model))
               if v is not None}
    n = run_baseline(a.name, a.dataset, a.config, a.split, a.out, **options)
    print(f"{a.out}: {n} predictions ({a.name} on {a.config}/{a.split})")


def _cmd_predict(a: argparse.Namespace) -> None:
    from blueprint.models.predict import GenerationConfig, OpenAIEngine, TransformersEngine, predict, reparse

    if a.reparse:
        r = reparse(a.dataset, a.config, a.out, split=a.split, fallback=a.fallback)
    else:
        gen = GenerationConfig(max_new_tokens=a.max_new_tokens, temperature=a.temperature, top_p=a.top_p,
                               seed=a.seed, batch_size=a.batch_size)
        if a.engine == "openai":
            if not a.endpoint:
                raise BadInputError("--engine openai needs --endpoint URL", field="endpoint")
            engine = OpenAIEngine(a.endpoint, a.model, style=a.style, generation=gen, api_key_env=a.api_key_env,
                                  concurrency=a.concurrency, retries=a.retries)
        else:
            engine = TransformersEngine(a.model, style=a.style, generation=gen, device=a.device, dtype=a.dtype)
        r = predict(engine, a.dataset, a.config, a.out, split=a.split, persona=a.persona, fallback=a.fallback,
                    resume=a.resume, progress=not a.quiet)
    fb = r["fallback"]
    print(f"{a.out}: {r['rows']} predictions ({a.config}/{a.split}); parsed {r['parsed']}, fallback "
          f"{r['fallbacks']} ({r['fallback_rate']:.1%}, action {fb['action']})")
    if r["repairs"]:
        print("  repairs: " + ", ".join(f"{k} {v}" for k, v in r["repairs"].items()))
    if r["errors"]:
        print("  unusable: " + "; ".join(f"{k}: {v}" for k, v in r["errors"].items()))
    print(f"  raw answers {r['raw_answers']}; report {Path(a.out).with_name(Path(a.out).stem + '.report.json')}")


def _cmd_finetune(a: argparse.Namespace) -> None:
    from blueprint.models.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(lora=not a.no_lora, lora_r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout,
                         target_modules=a.target_modules, learning_rate=a.learning_rate, epochs=a.epochs,
                         batch_size=a.batch_size, grad_accum=a.grad_accum, loss=a.loss, gamma=a.gamma,
                         max_steps=a.max_steps, limit=a.limit, eval_limit=a.eval_limit, max_length=a.max_length,
                         style=a.style, persona=a.persona, seed=a.seed, save_steps=a.save_steps,
                         logging_steps=a.logging_steps, gradient_checkpointing=a.gradient_checkpointing)
    s = finetune(a.model, a.dataset, a.config, a.out, cfg, resume=not a.no_resume, progress=not a.quiet)
    first = s["train_loss"][0]["loss"] if s["train_loss"] else float("nan")
    last = s["train_loss"][-1]["loss"] if s["train_loss"] else float("nan")
    val = s["final_eval_loss"]
    print(f"{a.out}: {s['steps']} steps on {s['train_rows']} rows in {s['seconds']:.0f} s; training loss "
          f"{first:.4f} -> {last:.4f}; validation loss " + ("none (empty split)" if val is None else f"{val:.4f}"))


def _cmd_validate(a: argparse.Namespace) -> None:
    from blueprint.leaderboard.score import check

    n, warnings = check(a.predictions, a.dataset, a.config, a.split, max_bytes=a.max_bytes, meta=a.meta)
    for w in warnings[:50]:
        print(f"{a.predictions}: warning: {w}", file=sys.stderr)
    if len(warnings) > 50:
        print(f"{a.predictions}: ... and {len(warnings) - 50:,} more warnings", file=sys.stderr)
    print(f"{a.predictions}: OK, {n} predictions cover {a.config}/{a.split}"
          + (f" ({len(warnings):,} warnings)" if warnings else ""))


def _cmd_score(a: argparse.Namespace) -> None:
    from blueprint.leaderboard.score import results_schema, score, write_results

    if a.schema:
        import orjson

        print(orjson.dumps(results_schema(), option=orjson.OPT_INDENT_2).decode())
        return
    missing = [f for f in ("predictions", "dataset", "config", "out") if getattr(a, f) is None]
    if missing:
        raise BadInputError(f"score needs {', '.join('--' + m if m != 'predictions' else 'PREDICTIONS' for m in missing)}"
                            " (or --schema)")

    from blueprint.data import read_split
    from blueprint.metrics.suite import DEFAULT_RARE, ScoreConfig, rare_actions_from

    rare = DEFAULT_RARE
    if a.rare_from_train:
        train = read_split(a.dataset, a.config, "train", columns=["action"])["action"].to_pylist()
        rare = rare_actions_from(train)
    elif a.rare:
        rare = tuple(x.strip() for x in a.rare.split(",") if x.strip())
    try:
        cfg = ScoreConfig(bootstrap=a.bootstrap, seed=a.seed, model=a.model, bertscore=not a.no_bertscore, rare=rare,
                          progress=not a.quiet)
    except ValueError as exc:
        raise BadInputError(str(exc)) from None
    res = score(a.predictions, a.dataset, a.config, a.split, model_name=a.name or _model_name(a.predictions, a.meta),
                labels=a.labels, score_config=cfg, meta=a.meta)
    write_results(res, a.out)
    r = res["results"]
    print(f"{a.out}: accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}, rare macro-F1 "
          f"{r['rare_macro_f1']:.4f}, cluster macro-F1 {r['cluster_macro_f1']:.4f}, action JS {r['action_js']:.4f}")


def _model_name(predictions: Path, meta: Path | None = None) -> str | None:
    """The leaderboard name when --name is not given: the meta file's, the model blueprint predict ran, else the
    file's stem."""
    from blueprint.models.predict import report_path_for

    if meta is not None:
        return None  # score takes model_name from the meta file (or the stem when it has none)
    report = report_path_for(predictions)
    if report.is_file():
        import orjson

        try:
            model = orjson.loads(report.read_bytes()).get("engine", {}).get("model")
        except (orjson.JSONDecodeError, AttributeError):
            model = None
        if model:
            return Path(str(model).rstrip("/")).name if Path(str(model)).exists() else str(model)
    log.warning("score: no --name given; the leaderboard will call this submission %r (the file's name)",
                predictions.stem)
    return predictions.stem


def _cmd_leaderboard(a: argparse.Namespace) -> None:
    from blueprint.leaderboard.render import render

    paths = render(a.results_dir, a.out)
    print(f"leaderboard: {paths['markdown']} and {paths['html']}")


def _cmd_scrub(a: argparse.Namespace) -> None:
    import orjson

    from blueprint.pii import Scrubber, replace_spans

    scrubber = Scrubber(region=a.region)
    out = sys.stdout
    for line in sys.stdin:
        text = line.rstrip("\n")
        spans = scrubber.spans(text)
        if a.json:
            out.write(orjson.dumps({"text": text, "spans": [s.to_dict(text) for s in spans]}).decode() + "\n")
        else:
            out.write(replace_spans(text, spans) + "\n")


def _cmd_audit(a: argparse.Namespace) -> int:
    from blueprint.simpact.audit import audit, write_audit

    report = audit(a.dataset, raw=a.raw, min_cluster=a.min_cluster)
    out = a.out or a.dataset.parent / f"{a.dataset.name}-audit"
    paths = write_audit(report, out)
    for c in report["checks"]:
        print(f"  {c['status']:>7}  {c['name']:<16} {c['value']}")
    print(f"audit {'passed' if report['ok'] else 'FAILED'}: {paths['markdown']} and {paths['json']}")
    return 0 if report["ok"] else 3


def _cmd_stats(a: argparse.Namespace) -> None:
    import orjson

    from blueprint.stats import dataset_stats, format_stats

    s = dataset_stats(a.dataset)
    print(orjson.dumps(s, option=orjson.OPT_INDENT_2).decode() if a.json else format_stats(s), end="\n" if a.json else "")


COMMANDS = {
    "demo": _cmd_demo,
    "synth": _cmd_synth,
    "collect": _cmd_collect,
    "build": _cmd_build,
    "baseline": _cmd_baseline,
    "predict": _cmd_predict,
    "finetune": _cmd_finetune,
    "validate": _cmd_validate,
    "score": _cmd_score,
    "leaderboard": _cmd_leaderboard,
    "scrub": _cmd_scrub,
    "audit": _cmd_audit,
    "stats": _cmd_stats,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except BadInputError as exc:
        print(f"blueprint: error: {exc}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="blueprint: %(message)s", stream=sys.stderr)
    logging.getLogger("blueprint").setLevel(level)
    try:
        rc = COMMANDS[args.command](args)
    except BadInputError as exc:
        print(f"blueprint: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("blueprint: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a write that failed (a full disk, a read-only folder): nothing was left half-written
        print(f"blueprint: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return rc or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
