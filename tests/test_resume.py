"""A build killed part-way and resumed gives the same bytes as an uninterrupted build."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from blueprint.simpact import pipeline
from blueprint.simpact.cluster import ClusterConfig
from blueprint.simpact.ingest import IngestConfig
from blueprint.simpact.ingest import stage as ingest_mod
from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model, make_corpus):
    root = tmp_path_factory.mktemp("resume")
    (root / "raw").symlink_to(make_corpus(users=60, seed=11, days=0.5))
    secret = root / "secret.key"
    secret.write_text("s" * 64)
    cfg = BuildConfig(ingest=IngestConfig(segment_bytes=64 << 10, workers=1),
                      embed=EmbedConfig(model=str(tiny_model)),
                      cluster=ClusterConfig(partitions=(2, 3), size_min=5))
    build([root / "raw"], root / "full", cfg, secret_file=secret)
    return root, cfg, secret


class Killed(Exception):
    pass


def test_killed_during_ingest(setup, monkeypatch):
    root, cfg, secret = setup
    real = ingest_mod.ingest_segment
    calls = {"n": 0}

    def dies_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed()
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_mod, "ingest_segment", dies_on_third)
    with pytest.raises(Killed):
        build([root / "raw"], root / "a", cfg, secret_file=secret)
    assert not (root / "a").exists()  # nothing half-written
    parts = sorted((root / "a-work" / "ingest" / "events").glob("*.json"))
    assert len(parts) == 2
    monkeypatch.setattr(ingest_mod, "ingest_segment", real)
    calls["n"] = 0
    counted = []
    monkeypatch.setattr(ingest_mod, "ingest_segment", lambda *a, **k: counted.append(1) or real(*a, **k))
    build([root / "raw"], root / "a", cfg, secret_file=secret, resume=True)
    n_segments = len(list((root / "a-work" / "ingest" / "events").glob("*.parquet")))
    assert len(counted) == n_segments - 2  # the two finished parts were not read again
    assert tree(root / "a") == tree(root / "full")


def test_killed_in_a_later_stage(setup, monkeypatch):
    root, cfg, secret = setup
    real = pipeline.cluster_users

    def boom(*a, **k):
        raise Killed()

    monkeypatch.setattr(pipeline, "cluster_users", boom)
    with pytest.raises(Killed):
        build([root / "raw"], root / "b", cfg, secret_file=secret)
    monkeypatch.setattr(pipeline, "cluster_users", real)
    stamp = (root / "b-work" / "embed" / "manifest.json").stat().st_mtime_ns
    result = build([root / "raw"], root / "b", cfg, secret_file=secret, resume=True)
    assert (root / "b-work" / "embed" / "manifest.json").stat().st_mtime_ns == stamp  # embed was not redone
    assert tree(root / "b") == tree(root / "full")
    assert result.reports["export"]["rows"] > 0


def test_resume_after_a_config_change_redoes_what_changed(setup):
    root, cfg, secret = setup
    build([root / "raw"], root / "c", cfg, secret_file=secret)
    ingest_stamp = (root / "c-work" / "ingest" / "manifest.json").stat().st_mtime_ns
    other = BuildConfig(ingest=cfg.ingest, embed=cfg.embed, cluster=ClusterConfig(partitions=(2,), size_min=5))
    build([root / "raw"], root / "c", other, secret_file=secret, resume=True)
    assert (root / "c-work" / "ingest" / "manifest.json").stat().st_mtime_ns == ingest_stamp
    assert sorted(p.name for p in (root / "c" / "data").iterdir()) == ["2_clusters", "2_clusters_c0", "2_clusters_c1"]
