from __future__ import annotations

import logging

import numpy as np
import pytest

from blueprint.errors import BadInputError
from blueprint.simpact.cluster import ClusterConfig, cluster, repair


def blobs(n_per: list[int], dim: int = 16, seed: int = 0, spread: float = 0.3) -> np.ndarray:
    """Gaussian blobs of the given sizes, unit-normalised like sentence embeddings."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(n_per), dim))
    x = np.concatenate([c + spread * rng.normal(size=(n, dim)) for c, n in zip(centers, n_per)])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_fast_path_repairs_undersized_clusters():
    x = blobs([300, 200, 150, 6, 4, 3])  # three tiny natural groups
    part = cluster(x, 6, ClusterConfig(partitions=(6,), size_min=20, method="fast"))
    assert part.sizes.min() >= 20 and part.sizes.sum() == len(x)
    assert part.method == "fast"


def test_fast_path_is_close_to_the_exact_path():
    x = blobs([120, 90, 60, 40, 35, 30, 28, 26], dim=24, seed=3, spread=0.6)
    cfg = dict(partitions=(8,), size_min=30, seed=0, n_init=3)
    fast = cluster(x, 8, ClusterConfig(method="fast", **cfg))
    exact = cluster(x, 8, ClusterConfig(method="exact", **cfg))
    assert fast.sizes.min() >= 30 and exact.sizes.min() >= 30
    assert fast.inertia <= exact.inertia * 1.01


def test_more_starts_help_when_many_groups_are_too_small():
    x = blobs([120, 90, 60, 40, 30, 25, 20, 15], dim=24, seed=3, spread=0.6)
    exact = cluster(x, 8, ClusterConfig(partitions=(8,), size_min=25, method="exact", n_init=3))
    one = cluster(x, 8, ClusterConfig(partitions=(8,), size_min=25, method="fast", n_init=1))
    six = cluster(x, 8, ClusterConfig(partitions=(8,), size_min=25, method="fast", n_init=6))
    assert six.inertia <= one.inertia and six.inertia <= exact.inertia * 1.01


def test_same_seed_same_partition_and_ids_by_size():
    x = blobs([80, 60, 40], seed=1)
    a = cluster(x, 3, ClusterConfig(partitions=(3,), size_min=10, seed=5))
    b = cluster(x, 3, ClusterConfig(partitions=(3,), size_min=10, seed=5))
    assert np.array_equal(a.labels, b.labels)
    assert list(a.sizes) == sorted(a.sizes, reverse=True)  # cluster 0 is the largest


def test_size_max_takes_the_exact_path_and_says_why(caplog):
    x = blobs([100, 20, 20], seed=2)
    with caplog.at_level(logging.INFO, logger="blueprint.simpact.cluster"):
        part = cluster(x, 3, ClusterConfig(partitions=(3,), size_min=10, size_max=60))
    assert part.method == "exact" and part.sizes.max() <= 60 and part.sizes.min() >= 10
    assert "exact path (size_max is set)" in caplog.text


def test_auto_logs_the_fast_path(caplog):
    with caplog.at_level(logging.INFO, logger="blueprint.simpact.cluster"):
        cluster(blobs([30, 30]), 2, ClusterConfig(partitions=(2,), size_min=5))
    assert "fast path (only size_min is set)" in caplog.text


def test_infeasible_partition_is_a_clear_error():
    x = blobs([30, 30])
    with pytest.raises(BadInputError, match=r"k x size_min = 70") as err:
        cluster(x, 7, ClusterConfig(partitions=(7,), size_min=10))
    assert err.value.field == "partitions"


@pytest.mark.parametrize("kwargs, field", [
    ({"partitions": (1001,)}, "partitions"), ({"partitions": ()}, "partitions"), ({"partitions": (2, 2)}, "partitions"),
    ({"size_min": 0}, "size_min"), ({"size_min": 10, "size_max": 5}, "size_max"),
    ({"method": "fast", "size_max": 50}, "method"), ({"method": "magic"}, "method")])
def test_config_is_checked(kwargs, field):
    with pytest.raises(BadInputError) as err:
        ClusterConfig(**kwargs)
    assert err.value.field == field


def test_repair_moves_the_cheapest_points():
    # four points in cluster 0; cluster 1 empty; the point nearest centroid 1 must move
    dist = np.array([[0.0, 5.0], [0.0, 4.0], [0.0, 1.0], [0.0, 3.0]])
    labels = repair(np.zeros(4, dtype=np.int64), dist, size_min=1)
    assert labels.tolist() == [0, 0, 1, 0]


def test_carried_over_personas_by_hand(tmp_path):
    """Two clusters on a line, centroids at 0 and 10 (the previous users' means): a staying user keeps their
    cluster even when nearer the other centroid; a new user goes to the nearest; a cluster left under the
    minimum size takes the user whose move costs least."""
    from blueprint.simpact.carry import Previous, carry_over

    prev_dids = ["a", "b", "c", "d", "e", "f"]
    prev_x = np.array([[-1.0], [0.0], [1.0], [9.0], [10.0], [11.0]], dtype=np.float32)
    previous = Previous(tmp_path, prev_dids, prev_x, {2: dict(zip(prev_dids, [0, 0, 0, 1, 1, 1]))})
    np.testing.assert_allclose(previous.centroids(2), [[0.0], [10.0]])
    # "c" moved (its new vector is nearer 10) but stays in 0; "g" is new at 8: cluster 1
    dids = ["a", "b", "c", "d", "e", "f", "g"]
    x = np.array([[-1.0], [0.0], [6.0], [9.0], [10.0], [11.0], [8.0]], dtype=np.float32)
    got, centroids, report = carry_over(dids, x, 2, previous, size_min=1, size_max=None)
    assert got.tolist() == [0, 0, 0, 1, 1, 1, 1] and report["kept_share"] == 1.0 and report["users_new"] == 1
    # "a" and "b" asked to be removed: cluster 0 holds only "c" (at 6); with size_min 2, the cheapest move into it
    # is "g" at 8 (cost 64 - 4 = 60, against 81 - 1 = 80 for "d"): the staying users keep their clusters
    got, _, report = carry_over(dids[2:], x[2:], 2, previous, size_min=2, size_max=None)
    assert got.tolist() == [0, 1, 1, 1, 0]
    assert (report["kept_share"], report["moved_by_repair"], report["users_gone"]) == (1.0, 1, 2)
    # a partition the previous build did not make is refused
    with pytest.raises(BadInputError, match="no partition of 3 clusters"):
        carry_over(dids, x, 3, previous, size_min=1, size_max=None)
