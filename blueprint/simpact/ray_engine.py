"""The Ray engine: the same build, its work spread over a Ray cluster.

``blueprint build --engine ray`` starts a local Ray instance, or joins a running
cluster with ``--ray-address``. The stages and their fingerprints are the local
engine's, so ``--resume`` works across engines, and the dataset is byte-identical
to the local engine's for the same inputs, secret and seed:

- ingest: one Ray Data task per segment (the unit of resuming), the same
  :func:`~blueprint.simpact.ingest.ingest_segment` as the local worker processes;
- threads and cluster: one Ray task each. The threads stage's joins run out of core
  in DuckDB on one node; its replay is sequential by nature (an event's outcome
  depends on every earlier one), so it is not split across nodes;
- embedding: batched inference on a pool of Ray actors (one per GPU with
  ``--num-gpus``), fed the stage's own chunks in order. Ray Data's ``map_batches``
  would cut batches at block boundaries, and a vector's last bits depend on the
  padding of the batch it was encoded in, so identical bytes need identical batches;
- export: the privacy transforms (PII scrubbing, pseudonyms) of each batch of
  threads as a Ray task, a bounded number in flight, the results taken in order;
  the layout of the dataset directory stays with the driver.

A task whose worker dies is retried by Ray (``max_retries``), and an actor is
restarted; each task's work is a pure function of its inputs, so a retry gives the
same result. ``BLUEPRINT_FAULT_ONCE=STAGE:FILE[,STAGE:FILE...]`` makes the first task
of each ``STAGE`` (ingest, threads, embed, cluster, export) kill its own worker
process, once (``FILE`` records that it did): the tests use it to check that retried
work leaves the output unchanged.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from blueprint.errors import BadInputError
from blueprint.validation import check_scalar

log = logging.getLogger(__name__)

INSTALL_HINT = 'the Ray engine needs Ray: pip install -e ".[ray]" (or pip install "ray[data]")'
RETRIES = 3


def _fault(stage: str) -> None:
    """Kill this worker process the first time ``stage`` runs, when the test hook asks for it."""
    specs = dict(item.split(":", 1) for item in os.environ.get("BLUEPRINT_FAULT_ONCE", "").split(",") if ":" in item)
    if stage not in specs:
        return
    marker = Path(specs[stage])
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(17)  # as a killed worker: no cleanup, no exception


def _call(stage: str, fn: Callable, args: tuple, kwargs: dict) -> Any:
    _fault(stage)
    return fn(*args, **kwargs)


def _ingest_one(row: dict, todo: list, parts_dir: str, config) -> dict:
    from blueprint.simpact.ingest import ingest_segment

    _fault("ingest")
    rep = ingest_segment(todo[row["i"]], Path(parts_dir), config)
    import orjson

    return {"i": row["i"], "report": orjson.dumps(rep)}


class _EmbedActor:
    """Holds one encoder; encodes one chunk of texts per call, as the local engine does."""

    def __init__(self, encoder_kwargs: dict, cache_root: str | None, snapshot: list[str] | None,
                 threads: int) -> None:
        import torch

        from blueprint.embedding import ChunkEncoder, Encoder

        torch.set_num_threads(threads)  # Ray workers start with one thread; the driver's count gives its bits
        self.chunks = ChunkEncoder(Encoder(**encoder_kwargs), cache_root, snapshot)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, dict]:
        _fault("embed")
        return next(self.chunks(iter([texts])))


def _prepare_one(threads, ranks, job):
    from blueprint.simpact.privacy import prepare_batch

    _fault("export")
    return prepare_batch(threads, ranks, job)


class RayEngine:
    """An :class:`~blueprint.simpact.engine.Engine` on Ray; use as a context manager (it shuts down a Ray it
    started)."""

    def __init__(self, address: str | None = None, *, num_gpus: float = 0, embed_actors: int | None = None,
                 in_flight: int | None = None) -> None:
        try:
            import ray  # noqa: F401
            import ray.data  # noqa: F401
        except ImportError:
            raise BadInputError(INSTALL_HINT, field="engine") from None
        check_scalar(num_gpus, "num_gpus", min_val=0)
        check_scalar(embed_actors, "embed_actors", int, min_val=1, allow_none=True)
        self.address = address
        self.num_gpus = num_gpus
        self.embed_actors = embed_actors
        self.in_flight = in_flight
        self._started = False

    # -- lifecycle --

    def __enter__(self) -> RayEngine:
        import ray

        if not ray.is_initialized():
            env = {"env_vars": {k: v for k, v in os.environ.items()
                                if k.startswith(("BLUEPRINT_", "HF_", "TRANSFORMERS_"))}}
            if self.address:
                log.info("ray: joining the cluster at %s", self.address)
            else:
                log.info("ray: starting a local instance")
            ray.init(address=self.address or None, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env=env)
            self._started = True
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        return self

    def __exit__(self, *exc) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _cpus(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    # -- the hooks the pipeline calls --

    def call(self, stage: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` as one Ray task (retried if its worker dies)."""
        import ray

        task = ray.remote(_call).options(max_retries=RETRIES, num_cpus=1)
        return ray.get(task.remote(stage, fn, args, kwargs))

    def ingest_runner(self, todo: list, parts_dir: Path, config) -> Iterator[tuple[Any, dict]]:
        """Each segment still to do as one Ray Data task; yields (segment, report) as the tasks finish."""
        if not todo:
            return
        import orjson
        import ray.data

        items = ray.data.from_items([{"i": i} for i in range(len(todo))], override_num_blocks=len(todo))
        done = items.map(_ingest_one,  # type: ignore[arg-type]  # Ray passes fn_kwargs after the row
                         fn_kwargs={"todo": todo, "parts_dir": str(parts_dir), "config": config},
                         num_cpus=1, max_retries=RETRIES)
        for row in done.iter_rows():
            yield todo[row["i"]], orjson.loads(row["report"])

    def chunk_encoder(self, encoder, cache_root: str | None, snapshot: list[str] | None, progress: bool = False):
        """An :data:`~blueprint.simpact.engine.EncodeChunks` on a pool of Ray actors, results in order."""
        import ray
        import torch

        n = self.embed_actors or (int(self.num_gpus) if self.num_gpus >= 1 else 1)
        per_actor_gpus = self.num_gpus / n if self.num_gpus else 0
        threads = torch.get_num_threads()
        kwargs = {"model": encoder.model, "pooling": encoder.pooling, "max_length": encoder.max_length,
                  "batch_size": encoder.batch_size, "normalize": encoder.normalize, "prefix": encoder.prefix,
                  "backend": encoder.backend, "device": "cuda" if per_actor_gpus else encoder.device}
        actor_cls = ray.remote(_EmbedActor).options(num_gpus=per_actor_gpus, num_cpus=min(threads, self._cpus()),
                                                   max_restarts=RETRIES, max_task_retries=RETRIES)
        actors: list[Any] = [actor_cls.remote(kwargs, cache_root, snapshot, threads) for _ in range(n)]

        def encode(chunks: Iterator[list[str]]) -> Iterator[tuple[np.ndarray, dict]]:
            try:
                yield from _in_order(chunks, lambda i, texts: actors[i % n].encode.remote(texts), 2 * n)
            finally:
                for a in actors:
                    ray.kill(a)

        return encode

    def batch_mapper(self, work, job) -> Iterator:
        """The export's per-batch transforms as Ray tasks, a few in flight, results in order."""
        import ray

        task = ray.remote(_prepare_one).options(max_retries=RETRIES, num_cpus=1)
        job_ref = ray.put(job)
        window = self.in_flight or self._cpus() + 1
        yield from _in_order(work, lambda i, item: task.remote(item[0], item[1], job_ref), window)


def _in_order(items: Iterator, submit: Callable[[int, Any], Any], window: int) -> Iterator:
    """Submit ``items`` as Ray work, at most ``window`` unfinished at once; yield the results in order."""
    import ray

    pending: deque = deque()
    for i, item in enumerate(items):
        pending.append(submit(i, item))
        if len(pending) >= window:
            yield ray.get(pending.popleft())
    while pending:
        yield ray.get(pending.popleft())
