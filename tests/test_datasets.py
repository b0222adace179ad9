"""CG datasets on real labels: every space, cache behaviour, shards, deterministic splits."""
from __future__ import annotations

import pytest
import torch

from bench_data import registry
from bench_data.datamodule import BenchDataModule
from bench_data.datasets import CGDataset, _cache_path, space_graphs
from bench_data.paths import MissingBenchmarkFile

# (key, label range) for a small subset of every space with accuracy labels
KEYS = {
    "nb101/val_acc_108": (5, 96),
    "nb201/cifar10": (5, 95),
    "nb201/imagenet16": (0, 48),
    "nb301/cifar10": (85, 96),
    "tnb_micro/class_scene": (0, 100),
    "tnb_macro/jigsaw": (0, 100),
    "enas/acc": (65, 80),
    "help/nb201/pixel3": (1, 100),  # latency in ms
    "help/fbnet/pixel3": (1, 1000),
    "help/ofa/titan_rtx_1": (0.1, 1000),
}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))


def dataset(key, limit=6):
    try:
        return CGDataset(key, workers=0, limit=limit)
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))


@pytest.mark.parametrize("key", sorted(KEYS))
def test_small_subset_of_every_space(key):
    low, high = KEYS[key]
    data = dataset(key, limit=3)
    assert len(data) >= 2
    for graph in data:
        assert low <= float(graph.y) <= high
        assert graph.x.shape[1] == 25 and graph.edge_index.max() < graph.num_nodes
        assert float(graph.macs) > 0 and float(graph.params) > 0 and graph.spectrum.shape == (1, 21)


def test_cache_is_reused_and_keyed_by_content(tmp_path):
    try:
        graphs, records = space_graphs("nb201", workers=0, limit=5)
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    path = _cache_path("nb201", [r.arch for r in records])
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    stamp = path.stat().st_mtime_ns
    again, _ = space_graphs("nb201", workers=0, limit=5)
    assert path.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    assert all(torch.equal(a.x, b.x) for a, b in zip(graphs, again))
    assert _cache_path("nb201", [r.arch for r in records[:4]]) != path  # other content, other file


def test_stale_versions_rebuild(monkeypatch):
    try:
        _, records = space_graphs("nb201", workers=0, limit=3)
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    archs = [r.arch for r in records]
    before = _cache_path("nb201", archs)
    monkeypatch.setattr("bench_data.datasets.PARSER_VERSION", 999)
    assert _cache_path("nb201", archs) != before
    space_graphs("nb201", workers=0, limit=3)
    assert _cache_path("nb201", archs).exists()


def test_sharded_build_merges_into_the_full_dataset():
    try:
        full, _ = space_graphs("nb201", workers=0, limit=7)
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    path = _cache_path("nb201", [r.arch for r in registry.load_records("nb201")[:7]])
    path.unlink()
    for rank in range(2):
        shard, _ = space_graphs("nb201", workers=0, limit=7, shard=(rank, 2))
        assert [int(d.index) for d in shard] == list(range(rank, 7, 2))
    merged, _ = space_graphs("nb201", workers=0, limit=7)
    assert [int(d.index) for d in merged] == list(range(7))
    assert all(torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) for a, b in zip(full, merged))


def test_worker_processes_give_the_same_graphs():
    try:
        serial, _ = space_graphs("nb201", workers=0, limit=6)
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    for path in _cache_path("nb201", ["x"]).parent.glob("*.pt"):
        path.unlink()
    parallel, _ = space_graphs("nb201", workers=2, limit=6)
    assert all(torch.equal(a.x, b.x) for a, b in zip(serial, parallel))


def test_datamodule_splits_are_seeded_and_disjoint():
    try:
        module = BenchDataModule("nb201/cifar10", limit=40, workers=0, seed=3)
        module.setup()
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    again = BenchDataModule("nb201/cifar10", limit=40, workers=0, seed=3)
    again.setup()
    other = BenchDataModule("nb201/cifar10", limit=40, workers=0, seed=4)
    other.setup()
    ids = lambda ds: [int(d.index) for d in ds]  # noqa: E731
    assert ids(module.train_set) == ids(again.train_set)
    assert ids(module.train_set) != ids(other.train_set)
    split = ids(module.train_set) + ids(module.val_set) + ids(module.test_set)
    assert sorted(split) == list(range(40)) and len(module.train_set) == 32
    few = BenchDataModule("nb201/cifar10", limit=40, workers=0, train_size=10)
    few.setup()
    assert len(few.train_set) == 10 and len(few.val_set) + len(few.test_set) == 30


def test_unknown_target_names_the_known_ones():
    with pytest.raises((ValueError, MissingBenchmarkFile), match="cifar10|missing"):
        CGDataset("nb201/no_such_target", workers=0, limit=3)


def test_per_task_samples_share_one_build(monkeypatch):
    """TransNAS labels each task on its own sample of architectures: the CGs of their union are
    built once, and every task's graphs are indexed into its own record list."""
    real = registry.load_records
    try:
        base = real("tnb_micro", None, "class_scene")[:4]
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    samples = {"class_scene": base[:3], "jigsaw": base[1:4][::-1]}
    monkeypatch.setattr(registry, "load_records", lambda space, root=None, target=None: samples.get(target or "class_scene", []))
    scene, scene_records = space_graphs("tnb_micro", workers=0, target="class_scene")
    jigsaw, jigsaw_records = space_graphs("tnb_micro", workers=0, target="jigsaw")
    union = list(dict.fromkeys(r.arch for t in registry.per_target_targets("tnb_micro") for r in samples.get(t, [])))
    assert len(union) == 4 and _cache_path("tnb_micro", union).exists()
    assert [int(g.index) for g in jigsaw] == [0, 1, 2] and jigsaw_records == samples["jigsaw"]
    same_arch = {id(r): g for r, g in zip(scene_records, scene)}
    shared = scene_records[1]  # base[1]: second in class_scene, last in jigsaw
    assert torch.equal(same_arch[id(shared)].x, jigsaw[2].x)
