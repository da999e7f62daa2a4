"""Every setting of a build, one frozen dataclass per stage, checked when made.

:class:`BuildConfig` holds the stage configs; its JSON form (``dataclasses.asdict``)
goes into each stage's fingerprint, so a changed setting redoes the stages it
touches and no other. The command line takes its defaults from here. This module
imports nothing heavy: the stages import it, not the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from blueprint.data import DEFAULT_FRACTIONS
from blueprint.embedding import BACKENDS, DEFAULT_MODEL
from blueprint.errors import BadInputError
from blueprint.validation import check_choice, check_fractions, check_scalar

if TYPE_CHECKING:
    from blueprint.embedding import Encoder

MAX_PER_CLUSTER_K = 100
"""Partitions with at most this many clusters get one config per cluster."""


def _default_keywords() -> tuple[str, ...]:
    from blueprint.simpact.threads.topics import default_keywords

    return default_keywords()


@dataclass(frozen=True)
class IngestConfig:
    """How to ingest.

    ``chunk_rows`` bounds memory: a Parquet row group per chunk. Plain Jetstream files
    are cut into segments of about ``segment_bytes`` at line boundaries; each segment
    is one part, the unit of resuming and of parallel work. ``workers`` processes
    read segments at once (0: one per CPU); the output does not depend on it.
    """

    chunk_rows: int = 100_000
    segment_bytes: int = 16 << 20
    workers: int = 0

    def __post_init__(self) -> None:
        check_scalar(self.chunk_rows, "chunk_rows", int, min_val=1)
        check_scalar(self.segment_bytes, "segment_bytes", int, min_val=1)
        check_scalar(self.workers, "workers", int, min_val=0)  # 0: one per CPU

    def fingerprint(self) -> dict:
        """What decides the parts' bytes: everything but the number of workers."""
        from blueprint.simpact.ingest.records import PART_VERSION

        return {"chunk_rows": self.chunk_rows, "segment_bytes": self.segment_bytes, "version": PART_VERSION}


@dataclass(frozen=True)
class ThreadConfig:
    """How threads are rebuilt, and the filters that decide scope."""

    max_depth: int = 5
    langs: tuple[str, ...] | None = ("en",)
    topics: tuple[str, ...] | None = field(default_factory=_default_keywords)
    min_user_posts: int = 2

    def __post_init__(self) -> None:
        check_scalar(self.max_depth, "max_depth", int, min_val=2)  # a reply and its parent
        check_scalar(self.min_user_posts, "min_user_posts", int, min_val=0)
        if self.topics is not None and not self.topics:
            raise BadInputError("give at least one keyword, or None to keep every topic", field="topics")


@dataclass(frozen=True)
class EmbedConfig:
    """Which model embeds the users' texts, and how."""

    model: str = DEFAULT_MODEL
    pooling: str = "auto"
    max_length: int = 128
    batch_size: int = 64
    include_quotes: bool = False
    prefix: str = ""
    cache_dir: str | None = "default"  # "default": $BLUEPRINT_CACHE or ~/.cache/blueprint; None: no cache
    backend: str = "torch"  # blueprint.embedding.BACKENDS

    def __post_init__(self) -> None:
        check_choice(self.pooling, "pooling", ("auto", "cls", "mean"))
        check_scalar(self.max_length, "max_length", int, min_val=2)
        check_scalar(self.batch_size, "batch_size", int, min_val=1)
        check_choice(self.backend, "backend", BACKENDS)

    def encoder(self) -> Encoder:
        """The encoder these settings describe (its model resolved and verified)."""
        from blueprint.embedding import Encoder

        return Encoder(self.model, pooling=self.pooling, max_length=self.max_length, batch_size=self.batch_size,
                       prefix=self.prefix, backend=self.backend)

    def cache_root(self) -> str | None:
        """The cache folder, or None when caching is off."""
        from blueprint.embedding import default_cache_dir

        if self.cache_dir is None:
            return None
        return str(default_cache_dir() if self.cache_dir == "default" else self.cache_dir)


@dataclass(frozen=True)
class ClusterConfig:
    """Which partitions to build and under which constraints."""

    partitions: tuple[int, ...] = (2, 25)
    size_min: int = 10
    size_max: int | None = None
    method: str = "auto"
    seed: int = 0
    n_init: int = 3
    max_iter: int = 300
    personas_from: str | None = None  # a previous build's work folder: keep its personas (simpact/carry.py)

    def __post_init__(self) -> None:
        if not self.partitions:
            raise BadInputError("give at least one partition", field="partitions")
        for k in self.partitions:
            check_scalar(k, "partitions", int, min_val=1, max_val=1000)
        if len(set(self.partitions)) != len(self.partitions):
            raise BadInputError(f"repeated k in {list(self.partitions)}", field="partitions")
        check_scalar(self.size_min, "size_min", int, min_val=1)
        check_scalar(self.size_max, "size_max", int, min_val=self.size_min, allow_none=True)
        check_scalar(self.n_init, "n_init", int, min_val=1)
        check_scalar(self.max_iter, "max_iter", int, min_val=1)
        check_scalar(self.seed, "seed", int)
        check_choice(self.method, "method", ("auto", "exact", "fast"))
        if self.method == "fast" and self.size_max is not None:
            raise BadInputError("the fast path handles size_min only; use method='exact' with size_max",
                                field="method")


@dataclass(frozen=True)
class ExportConfig:
    """How the dataset directory is laid out, and how time is released.

    ``time_mode``: ``global`` ranks messages over the whole dataset (the paper);
    ``cluster`` ranks them inside each persona cluster of each partition. Ids and
    splits use the global ranks either way, so they do not depend on the mode.
    """

    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    shard_rows: int = 200_000
    per_cluster_max_k: int = MAX_PER_CLUSTER_K
    time_mode: str = "global"

    def __post_init__(self) -> None:
        check_fractions(self.fractions, "fractions", n=3)
        check_scalar(self.shard_rows, "shard_rows", int, min_val=1)
        check_scalar(self.per_cluster_max_k, "per_cluster_max_k", int, min_val=0)
        check_choice(self.time_mode, "time_mode", ("global", "cluster"))


@dataclass(frozen=True)
class BuildConfig:
    """Every setting of a build. Its JSON form goes into the stage fingerprints."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    threads: ThreadConfig = field(default_factory=ThreadConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    pii_region: str = "CA"
    title: str = "BluePrint"
    source: str = "public Bluesky records"  # what the card says the data was built from
    remove_dids: tuple[str, ...] = ()  # removal requests: their threads go, their words elsewhere read <REMOVED>
    hold_out_labels: str | None = None  # a file outside the dataset: the test split is released without labels
