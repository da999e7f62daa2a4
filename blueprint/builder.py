"""The ``datasets`` builder of BluePrint: ``blueprint.py`` (datasets <= 3.6) and direct use on any version.

``BluePrint(config_name=..., data_dir=..., dataset_name="blueprint")`` reads an exported
dataset directory, or a local copy of the public release (``processed_{k}_clusters/``)
to which it applies the benchmark's splits. Importing this module imports ``datasets``;
:mod:`blueprint.data` hands its names on without doing so until they are asked for.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import datasets
import orjson

from blueprint.data import DEFAULT_FRACTIONS, SPLITS, config_name, features, parse_config_name, split_of
from blueprint.errors import BadInputError
from blueprint.release_format import release_row
from blueprint.validation import check_fractions

PUBLIC_PARTITIONS: tuple[int, ...] = (2, 25, 100, 1000)
"""The partitions of the public release; each has a config, and those up to 100 clusters one per cluster."""


@dataclasses.dataclass
class BluePrintConfig(datasets.BuilderConfig):
    """One partition (``{k}_clusters``) or one persona (``{k}_clusters_c{i}``); splits by a hash of the id."""

    k: int = 25
    cluster: int | None = None
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS

    def __post_init__(self) -> None:
        super().__post_init__()
        k, c = parse_config_name(self.name)
        if (k, c) != (self.k, self.cluster):
            raise BadInputError(f"config {self.name!r} does not match k={self.k}, cluster={self.cluster}",
                                field="name")
        if c is not None and not 0 <= c < k:
            raise BadInputError(f"cluster {c} is outside 0..{k - 1}", field="name")
        check_fractions(self.fractions, "fractions", n=3)


def _config(name: str) -> BluePrintConfig:
    k, c = parse_config_name(name)
    return BluePrintConfig(name=name, k=k, cluster=c, description=f"{k} persona clusters"
                           + ("" if c is None else f", cluster {c} only"))


class BluePrint(datasets.GeneratorBasedBuilder):
    """BluePrint: next-action prediction threads with persona clusters.

    ``data_dir`` is an exported dataset directory (``data/<config>/<split>-*.parquet``)
    or a local copy of the public release (``processed_{k}_clusters/cluster_{i}.jsonl``,
    one split ``full``); for the release, the benchmark splits are applied by a hash of
    each thread's id.
    """

    BUILDER_CONFIG_CLASS = BluePrintConfig
    BUILDER_CONFIGS = [_config(config_name(k)) for k in PUBLIC_PARTITIONS] + [
        _config(config_name(k, c)) for k in PUBLIC_PARTITIONS if k <= 100 for c in range(k)]
    DEFAULT_CONFIG_NAME = "25_clusters"
    VERSION = datasets.Version("1.0.0")

    def _info(self):
        return datasets.DatasetInfo(
            description="Threads and next actions of persona clusters of Bluesky users (BluePrint).",
            features=features(),
            citation="@article{blueprint2025, title={BluePrint: A Social Media User Dataset for LLM Persona "
                     "Evaluation and Training}, journal={arXiv preprint arXiv:2510.02343}, year={2025}}",
        )

    def _split_generators(self, dl_manager):
        if not self.config.data_dir:
            raise ValueError("BluePrint needs data_dir: an exported dataset or a copy of the public release")
        root = Path(self.config.data_dir)
        exported = root / "data" / self.config.name
        release = root / f"processed_{self.config.k}_clusters"
        if exported.is_dir():
            return [datasets.SplitGenerator(name=split, gen_kwargs={
                "files": sorted(str(p) for p in exported.glob(f"{split}-*.parquet")), "layout": "parquet",
                "split": split}) for split in SPLITS]
        if release.is_dir():
            files = sorted(release.glob("cluster_*.jsonl"), key=lambda p: int(p.stem.split("_")[1]))
            if self.config.cluster is not None:
                files = [p for p in files if p.stem == f"cluster_{self.config.cluster}"]
            if not files:
                raise FileNotFoundError(f"no cluster files for {self.config.name} in {release}")
            return [datasets.SplitGenerator(name=split, gen_kwargs={
                "files": [str(p) for p in files], "layout": "release", "split": split}) for split in SPLITS]
        raise FileNotFoundError(f"{root} holds neither data/{self.config.name}/ (an exported BluePrint dataset) "
                                f"nor processed_{self.config.k}_clusters/ (the public release)")

    def _generate_examples(self, files, layout, split):
        if layout == "parquet":
            import pyarrow.parquet as pq

            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=4096):
                    for row in batch.to_pylist():
                        yield row["id"], row
            return
        for f in files:
            default_cluster = int(Path(f).stem.split("_")[1])
            with open(f, "rb") as fh:
                for lineno, raw in enumerate(fh, start=1):
                    if not raw.strip():
                        continue
                    try:
                        obj = orjson.loads(raw)
                    except orjson.JSONDecodeError as exc:
                        raise BadInputError(f"invalid JSON ({exc})", path=f, line=lineno) from None
                    row = release_row(obj, default_cluster, self.config.k, f, lineno)
                    if split_of(row["id"], self.config.fractions) == split:
                        yield row["id"], row
