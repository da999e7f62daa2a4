"""What runs the stages' work: an :class:`Engine`, here (:class:`LocalEngine`) or on Ray (``ray_engine``).

:func:`blueprint.simpact.pipeline.build` never asks which engine it holds. It hands
each stage's work to four hooks, and the stages' results, fingerprints and bytes do
not depend on the engine:

- :meth:`Engine.call`: one stage's whole work as one task (threads, cluster);
- :meth:`Engine.ingest_runner`: the ingest segments still to read, each with its report;
- :meth:`Engine.chunk_encoder`: the embedding stage's chunks of texts, encoded in order;
- :meth:`Engine.batch_mapper`: the export's per-batch privacy transforms, in order.

A new engine implements these four and is passed to ``build(..., engine=...)``;
ARCHITECTURE.md says where it goes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from blueprint.embedding import ChunkEncoder, Encoder

if TYPE_CHECKING:
    import pyarrow as pa

    from blueprint.simpact.config import IngestConfig
    from blueprint.simpact.ingest import Segment
    from blueprint.simpact.privacy import BatchCounts, BatchJob, Work

T = TypeVar("T")

EncodeChunks = Callable[[Iterator[list[str]]], Iterator[tuple[np.ndarray, dict]]]
"""Chunks of texts in, (vectors, counts) per chunk out, in order."""


class Engine(Protocol):
    """Runs the pipeline's stages. Every hook must give the results the local engine gives, in the same order."""

    def call(self, stage: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``: the whole work of ``stage``."""
        ...

    def ingest_runner(self, todo: list[Segment], parts_dir: Path, config: IngestConfig
                      ) -> Iterator[tuple[Segment, dict]]:
        """Read each segment into its part; yield (segment, report) in any order."""
        ...

    def chunk_encoder(self, encoder: Encoder, cache_root: str | None, snapshot: list[str] | None,
                      progress: bool = False) -> EncodeChunks:
        """An :data:`EncodeChunks` for the embedding stage (see :class:`~blueprint.embedding.ChunkEncoder`)."""
        ...

    def batch_mapper(self, work: Work, job: BatchJob) -> Iterator[tuple[pa.Table, BatchCounts]]:
        """Each batch of threads through the privacy transforms, yielded in input order."""
        ...


class LocalEngine:
    """This machine: worker processes for ingest and for the export's transforms, the rest in this process."""

    def __init__(self, workers: int = 0) -> None:
        """``workers``: processes for ingest and export (0: one per CPU)."""
        self.workers = workers or os.cpu_count() or 1

    def call(self, stage: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)

    def ingest_runner(self, todo: list[Segment], parts_dir: Path, config: IngestConfig
                      ) -> Iterator[tuple[Segment, dict]]:
        from blueprint.simpact.ingest import read_segments

        return read_segments(todo, parts_dir, config, self.workers)

    def chunk_encoder(self, encoder: Encoder, cache_root: str | None, snapshot: list[str] | None,
                      progress: bool = False) -> EncodeChunks:
        return ChunkEncoder(encoder, cache_root, snapshot, progress)

    def batch_mapper(self, work: Work, job: BatchJob) -> Iterator[tuple[pa.Table, BatchCounts]]:
        from blueprint.simpact.privacy import process_batches

        return process_batches(self.workers)(work, job)
