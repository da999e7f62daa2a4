"""The dataset's features, its splits, and loading.

One row per thread, compatible with the public release ``ComplexDataLab/BluePrint``:
``thread`` (messages with ``user_id``, ``text``, ``relative_integer_time`` and, on the
last message only, the 13 ``actions`` flags) and ``cluster_id``; this project adds
``id``, ``action`` (a ClassLabel over :data:`blueprint.ACTIONS`) and ``target_text``.

Splits are assigned by a hash of ``id`` alone, so a thread lands in the same split in
every partition and every rebuild.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from blueprint.actions import ACTIONS
from blueprint.errors import BadInputError

SPLITS: tuple[str, ...] = ("train", "validation", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.9, 0.05, 0.05)
_CONFIG_RE = re.compile(r"^(?P<k>\d+)_clusters(?:_c(?P<c>\d+))?$")


def features():
    """The ``datasets.Features`` of a BluePrint row (imported lazily: datasets is heavy)."""
    import datasets

    message = {
        "user_id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "relative_integer_time": datasets.Value("int64"),
        "actions": {a: datasets.Value("bool") for a in ACTIONS},
    }
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "thread": [message],
            "cluster_id": datasets.Value("int64"),
            "action": datasets.ClassLabel(names=list(ACTIONS)),
            "target_text": datasets.Value("string"),
        }
    )


def check_fractions(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise BadInputError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}",
                            field="splits")
    return tuple(float(f) for f in fractions)  # type: ignore[return-value]


def split_of(example_id: str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """``train``, ``validation`` or ``test``, from a hash of the id alone."""
    u = int(hashlib.sha256(example_id.encode()).hexdigest()[:15], 16) / float(1 << 60)
    train, val, _ = fractions
    if u < train:
        return "train"
    if u < train + val:
        return "validation"
    return "test"


def config_name(k: int, cluster: int | None = None) -> str:
    """``{k}_clusters`` for a partition, ``{k}_clusters_c{i}`` for one of its clusters."""
    return f"{k}_clusters" if cluster is None else f"{k}_clusters_c{cluster}"


def parse_config_name(name: str) -> tuple[int, int | None]:
    """The inverse of :func:`config_name`; a clear error for anything else."""
    m = _CONFIG_RE.match(name)
    if not m:
        raise BadInputError(f"bad config name {name!r}: expected '<k>_clusters' or '<k>_clusters_c<i>'",
                            field="config")
    return int(m.group("k")), (int(m.group("c")) if m.group("c") is not None else None)


def load_dataset(config: str, split: str | None = None, *, data_dir: str | os.PathLike[str], **kwargs: Any):
    """Load one config of an exported dataset directory through ``datasets.load_dataset``.

    ``split=None`` gives a ``DatasetDict`` of every split. Extra keyword arguments
    (``streaming=True``, ``cache_dir=...``) pass through.

    datasets (5.2) keys its cache for a local folder on the folder's path and card, not
    on the data files' times, so after a rebuild in place a plain
    ``datasets.load_dataset(folder, ...)`` can return the old rows. Unless a
    ``cache_dir`` is given, this function caches under a fingerprint of the config's
    files (names, sizes, modification times), so a rebuilt dataset is always re-read.
    """
    import datasets

    data_dir = Path(data_dir)
    card = data_dir / "README.md"
    if not card.is_file():
        raise BadInputError("not a BluePrint dataset directory (no README.md)", path=data_dir)
    names = datasets.get_dataset_config_names(str(data_dir))
    if config not in names:
        raise BadInputError(f"unknown config {config!r}; available: {names}", path=card, field="config")
    if split is not None and split not in SPLITS:
        raise BadInputError(f"bad split {split!r}; available splits: {list(SPLITS)}", field="split")
    if "cache_dir" not in kwargs and not kwargs.get("streaming"):
        kwargs["cache_dir"] = str(Path(datasets.config.HF_DATASETS_CACHE) / "blueprint" / _files_fingerprint(data_dir, config))
    return datasets.load_dataset(str(data_dir), config, split=split, **kwargs)


def _files_fingerprint(data_dir: Path, config: str) -> str:
    h = hashlib.sha256()
    for f in [data_dir / "README.md", *sorted((data_dir / "data" / config).glob("*.parquet"))]:
        st = f.stat()
        h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def split_files(dataset_dir: str | os.PathLike[str], config: str, split: str) -> list[Path]:
    """The Parquet shards of one config and split; a clear error when there are none."""
    if split not in SPLITS:
        raise BadInputError(f"bad split {split!r}; available splits: {list(SPLITS)}", field="split")
    d = Path(dataset_dir)
    if not (d / "README.md").is_file():
        raise BadInputError("not a BluePrint dataset directory (no README.md)", path=d)
    folder = d / "data" / config
    if not folder.is_dir():
        available = sorted(p.name for p in (d / "data").iterdir() if p.is_dir()) if (d / "data").is_dir() else []
        raise BadInputError(f"unknown config {config!r}; available: {available}", path=d, field="config")
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        raise BadInputError(f"no Parquet files for split {split!r}", path=folder)
    return files


def read_split(dataset_dir: str | os.PathLike[str], config: str, split: str, columns: list[str] | None = None):
    """One config and split as a ``pyarrow.Table``, read straight from its shards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for f in split_files(dataset_dir, config, split):
        try:
            tables.append(pq.read_table(f, columns=columns))
        except (pa.ArrowInvalid, OSError) as exc:
            raise BadInputError(f"unreadable Parquet file ({exc})", path=f) from None
    return pa.concat_tables(tables)
