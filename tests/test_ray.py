"""The Ray engine against the local engine: the same bytes, with and without workers dying mid-stage.

Each test starts a local Ray instance (on 127.0.0.1, through ``RayEngine``) and stops it.
"""

from __future__ import annotations

import filecmp
import sys

import pytest

from blueprint.errors import BadInputError
from blueprint.simpact.cluster import ClusterConfig
from blueprint.simpact.ingest import IngestConfig
from blueprint.simpact.pipeline import BuildConfig, EmbedConfig, build

pytestmark = pytest.mark.full  # a Ray cluster started per test: tens of seconds each

pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def small_steps():
    """Small chunks and batches, so that the Ray engine has many tasks in flight at once."""
    from blueprint.simpact import embed, privacy

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(embed, "EMBED_CHUNK", 200)
        mp.setattr(privacy, "_BATCH", 300)
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_model, small_steps, make_corpus):
    root = tmp_path_factory.mktemp("ray")
    (root / "raw").symlink_to(make_corpus(users=90, seed=7, days=1.0))
    (root / "s.key").write_text("r" * 48)
    cfg = BuildConfig(ingest=IngestConfig(workers=1, segment_bytes=200_000),
                      embed=EmbedConfig(model=str(tiny_model), cache_dir=None),
                      cluster=ClusterConfig(partitions=(2, 5), size_min=3))
    local = build([root / "raw"], root / "local", cfg, secret_file=root / "s.key")
    return root, cfg, local


def same_tree(a, b) -> list[str]:
    """Files that differ or exist on one side only (recursively); empty when the trees are byte-identical."""
    out = []

    def walk(cmp: filecmp.dircmp) -> None:
        out.extend(cmp.left_only + cmp.right_only + cmp.funny_files)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        out.extend(mismatch + errors)
        for sub in cmp.subdirs.values():
            walk(sub)

    walk(filecmp.dircmp(a, b))
    return out


def test_ray_build_is_byte_identical_even_when_workers_die(corpus, tmp_path, monkeypatch):
    from blueprint.simpact.ray_engine import RayEngine

    root, cfg, local = corpus
    stages = ("ingest", "threads", "embed", "cluster", "export")
    monkeypatch.setenv("BLUEPRINT_FAULT_ONCE", ",".join(f"{s}:{tmp_path / s}" for s in stages))
    with RayEngine() as engine:
        r = build([root / "raw"], tmp_path / "ray", cfg, work_dir=tmp_path / "ray-work", secret_file=root / "s.key",
                  engine=engine)
    assert r.reports["export"]["rows"] == local.reports["export"]["rows"] > 1000  # a dozen export batches
    assert r.reports["embed"]["texts"] > 800  # several embedding chunks
    assert all((tmp_path / s).exists() for s in stages), "every stage lost a worker once"
    assert same_tree(local.dataset_dir, r.dataset_dir) == []
    for stage in ("threads", "embed", "cluster"):  # the intermediate results too
        assert same_tree(local.work_dir / stage, r.work_dir / stage) == []


def test_each_engine_resumes_the_others_build(corpus, tmp_path):
    import shutil

    from blueprint.simpact.ray_engine import RayEngine

    root, cfg, local = corpus
    shutil.copytree(local.work_dir, tmp_path / "work")
    shutil.copytree(local.dataset_dir, tmp_path / "ds")
    # the export's fingerprint holds the dataset's path, which the copy changed: only it runs again
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob("manifest.json") if p.parent.name != "export"}
    with RayEngine() as engine:
        build([root / "raw"], tmp_path / "ds", cfg, work_dir=tmp_path / "work", secret_file=root / "s.key",
              resume=True, engine=engine)
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob("manifest.json") if p.parent.name != "export"}
    assert len(after) == 4
    assert before == after, "the stages' fingerprints do not depend on the engine: nothing ran again"
    assert same_tree(local.dataset_dir, tmp_path / "ds") == []
    # and back: the local engine resumes what the Ray engine left, running nothing
    build([root / "raw"], tmp_path / "ds", cfg, work_dir=tmp_path / "work", secret_file=root / "s.key", resume=True)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob("manifest.json")
            if p.parent.name != "export"} == after


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from blueprint.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    from blueprint.simpact.ray_engine import RayEngine

    with pytest.raises(BadInputError, match=r'pip install -e "\.\[ray\]"'):
        RayEngine()
    (tmp_path / "in.jsonl").write_text("")
    assert main(["build", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "o"), "--engine", "ray"]) == 2
    assert "pip install" in capsys.readouterr().err
