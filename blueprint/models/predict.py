"""``blueprint predict``: an engine answers every row of a split, and the answers become a valid submission.

The engine (:mod:`blueprint.models.engine`: a transformers model run here, or an
OpenAI-compatible server) answers the prompts of :func:`blueprint.task.to_messages`.
The driver writes each raw answer as soon as it arrives to ``<out stem>.raw.jsonl``
(so ``--resume`` keeps finished rows after a kill, and parsing can be re-run without
the model), then parses every answer with :func:`blueprint.task.parse_output`. An
unusable answer gets the fallback action (by default the train split's most common
one), so the predictions file always covers the split. The counts of repairs, parse
errors and fallbacks go to ``<out stem>.report.json``, with ``in_schema``: the answers that
were the answer schema exactly, parsed without a repair.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from blueprint._io import write_json, write_jsonl
from blueprint.actions import ACTIONS, TEXT_ACTIONS
from blueprint.errors import BadInputError
from blueprint.models.engine import Engine, GenerationConfig
from blueprint.models.openai_engine import OpenAIEngine
from blueprint.models.transformers_engine import TransformersEngine, load_causal_lm
from blueprint.subset import read_ids, stratified_sample, subset_path_for, write_ids
from blueprint.task import (
    MAX_TEXT,
    Persona,
    load_personas,
    parse_output,
    text_problem,
    to_messages,
)
from blueprint.validation import check_choice

log = logging.getLogger(__name__)

__all__ = ["Fallback", "GenerationConfig", "OpenAIEngine", "TransformersEngine", "default_fallback", "finalize",
           "load_causal_lm", "predict", "raw_path_for", "reparse", "report_path_for"]


def raw_path_for(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".raw.jsonl")


def report_path_for(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".report.json")


@dataclass(frozen=True)
class Fallback:
    """What an unusable answer becomes: an action, and a text when that action carries one."""

    action: str
    text: str | None = None
    source: str = "given"


def default_fallback(dataset_dir, config: str, action: str | None = None) -> Fallback:
    """The fallback: ``action`` when given, else the train split's most common action (and text)."""
    from blueprint.baselines.majority import MajorityBaseline
    from blueprint.data import read_split

    if action is not None:
        check_choice(action, "fallback", ACTIONS)
    m = MajorityBaseline().fit(read_split(dataset_dir, config, "train", columns=["action", "target_text"]))
    chosen, source = (m.action, "train majority") if action is None else (action, "given")
    assert chosen is not None  # a fitted majority baseline has its action
    if chosen in TEXT_ACTIONS and not m.text:
        raise BadInputError(f"the fallback {chosen!r} needs a text and the train split has none; choose a fallback "
                            "without text (--fallback like)", field="fallback")
    return Fallback(chosen, m.text if chosen in TEXT_ACTIONS else None, source)


def _read_raw_and_trim(path: Path) -> dict[str, dict]:
    """The answers already in a raw file. A last line cut off by a kill is dropped, and the file is truncated
    to its whole lines, so that appending goes on from a line boundary."""
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    good = 0
    with open(path, "rb") as fh:
        data = fh.read()
    for line in data.splitlines(keepends=True):
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            break
        if not line.endswith(b"\n"):
            break
        done[row["id"]] = row
        good += len(line)
    if good < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good)
    return done


def _meta_path(raw: Path) -> Path:
    return raw.with_name(raw.name.replace(".raw.jsonl", ".raw.meta.json"))


def predict(engine: Engine, dataset_dir: str | os.PathLike[str], config: str, out: str | os.PathLike[str], *,
            split: str = "test", persona: bool = False, fallback: str | None = None, resume: bool = False,
            progress: bool = True, limit: int | None = None, seed: int = 0) -> dict:
    """Answer every row of ``config``/``split`` with ``engine`` and write a valid predictions file to ``out``.

    With ``limit``, only a sample of that many rows, stratified by cluster and drawn with ``seed``
    (:func:`blueprint.subset.stratified_sample`); its ids go to ``<out stem>.subset.txt``, which
    ``score --subset`` takes. Returns the report (also written to ``<out stem>.report.json``).
    """
    from blueprint.data import parse_config_name, read_split

    t0 = time.perf_counter()
    out = Path(out)
    rows = read_split(dataset_dir, config, split, columns=["id", "thread", "cluster_id"]).to_pylist()
    original = len(rows)
    rows = _limited(rows, out, limit, seed)
    personas: dict[int, Persona] = load_personas(dataset_dir, parse_config_name(config)[0]) if persona else {}
    fb = default_fallback(dataset_dir, config, fallback)
    raw = raw_path_for(out)
    meta = {"dataset_config": config, "split": split, "persona": persona, **engine.describe()}
    if limit is not None:
        meta.update(limit=limit, subset_seed=seed)
    if resume and raw.is_file():
        old = orjson.loads(_meta_path(raw).read_bytes()) if _meta_path(raw).is_file() else None
        if old != orjson.loads(orjson.dumps(meta)):
            raise BadInputError("the raw answers there were made with other settings (model, split, prompt or "
                                "generation); use another --out, or drop --resume to start over", path=raw)
        done = _read_raw_and_trim(raw)
    else:
        done = {}
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_bytes(b"")
        write_json(_meta_path(raw), meta)
    todo = [i for i, r in enumerate(rows) if r["id"] not in done]
    log.info("predict: %d rows of %s/%s, %d already answered, %d to go (%s)", len(rows), config, split,
             len(rows) - len(todo), len(todo), engine.name)
    if todo:
        prompts = [to_messages(rows[i], persona=personas.get(rows[i]["cluster_id"]), style=engine.style)
                   for i in todo]
        lock = threading.Lock()
        with open(raw, "ab") as fh:
            def on_done(j: int, answer: str | None, error: str | None) -> None:
                line = orjson.dumps({"id": rows[todo[j]]["id"], "raw": answer, "call_error": error}) + b"\n"
                with lock:
                    fh.write(line)
                    fh.flush()

            engine.generate(prompts, on_done, progress=progress)
    report = finalize(rows, raw, out, fb)
    report.update(engine=engine.describe(), dataset_config=config, split=split, persona=persona,
                  seconds=round(time.perf_counter() - t0, 3), generated=len(todo))
    if limit is not None:
        report.update(subset={"file": str(subset_path_for(out)), "limit": limit, "seed": seed, "rows": len(rows),
                              "original": original})
    report.update(engine.stats())
    write_json(report_path_for(out), report)
    return report


def reparse(dataset_dir: str | os.PathLike[str], config: str, out: str | os.PathLike[str], *, split: str = "test",
            fallback: str | None = None) -> dict:
    """Parse the kept raw answers again (after a parser change, or with another fallback) without the model."""
    from blueprint.data import read_split

    raw = raw_path_for(out)
    if not raw.is_file():
        raise BadInputError("no raw answers to parse (run blueprint predict first)", path=raw)
    rows = read_split(dataset_dir, config, split, columns=["id", "thread"]).to_pylist()
    if subset_path_for(out).is_file():  # a --limit run: its rows only
        keep = set(read_ids(subset_path_for(out), [r["id"] for r in rows]))
        rows = [r for r in rows if r["id"] in keep]
    report = finalize(rows, raw, Path(out), default_fallback(dataset_dir, config, fallback))
    report.update(dataset_config=config, split=split, reparsed=True)
    write_json(report_path_for(out), report)
    return report


def _limited(rows: list[dict], out: Path, limit: int | None, seed: int) -> list[dict]:
    """The rows a run answers: all of them, or with ``limit`` a stratified sample whose ids are written beside
    ``out`` (a full run removes the id file a former ``--limit`` run left there)."""
    path = subset_path_for(out)
    if limit is None:
        path.unlink(missing_ok=True)
        return rows
    keep = set(stratified_sample([r["id"] for r in rows], [r["cluster_id"] for r in rows], limit, seed))
    rows = [r for r in rows if r["id"] in keep]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_ids(path, [r["id"] for r in rows])
    log.info("predict: a subset of %d rows (--limit %d, seed %d), its ids in %s", len(rows), limit, seed, path)
    return rows


def finalize(rows: list[dict], raw: Path, out: Path, fb: Fallback) -> dict:
    """Parse the raw answers of ``rows`` into ``out`` (atomically), with the fallback where unusable."""
    answers = _read_raw_and_trim(raw)
    missing = [r["id"] for r in rows if r["id"] not in answers]
    if missing:
        raise BadInputError(f"{len(missing)} rows have no raw answer (e.g. {missing[0]}); run predict with --resume",
                            path=raw)
    repairs: Counter = Counter()
    errors: Counter = Counter()
    preds, fallbacks, in_schema = [], 0, 0
    for r in rows:
        a = answers[r["id"]]
        parsed = parse_output(a["raw"], has_context=len(r["thread"]) > 1)
        repairs.update(parsed.repairs)
        in_schema += parsed.action is not None and not parsed.repairs and not parsed.error
        if a.get("call_error"):
            errors[f"call failed: {a['call_error']}"] += 1
        elif parsed.error:
            errors[parsed.error] += 1
        text = parsed.text
        if parsed.action in TEXT_ACTIONS and text is not None and len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
            repairs["cut_long_text"] += 1
        if parsed.action in TEXT_ACTIONS and text_problem(parsed.action, text) is not None:
            if not (a.get("call_error") or parsed.error):
                errors[f"a {parsed.action} without its text"] += 1
            preds.append({"id": r["id"], "action": fb.action, "text": fb.text})
            fallbacks += 1
        elif parsed.action is None:
            fallbacks += 1
            preds.append({"id": r["id"], "action": fb.action, "text": fb.text})
        else:
            preds.append({"id": r["id"], "action": parsed.action, "text": text})
    write_jsonl(out, preds)
    n = len(rows)
    actions = Counter(p["action"] for p in preds)
    return {"rows": n, "parsed": n - fallbacks, "in_schema": in_schema, "fallbacks": fallbacks,
            "fallback_rate": round(fallbacks / n, 6) if n else 0.0,
            "fallback": asdict(fb), "repairs": dict(sorted(repairs.items())), "errors": dict(sorted(errors.items())),
            "predicted_actions": {a: actions.get(a, 0) for a in ACTIONS},
            "predictions": str(out), "raw_answers": str(raw)}

