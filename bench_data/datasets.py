"""Labelled CG datasets: every architecture of a space through the ONNX -> CG parser, cached.

``space_graphs(space)`` builds (or loads from the cache) one ``Data`` per labelled architecture:
``x``, ``op``, ``edge_index`` from :mod:`graph_encoders.features`, plus ``macs``, ``params`` and
``index`` (position in the space's record list). ``CGDataset(key)`` attaches the target ``y``
of a dataset key such as ``"nb201/cifar10"``.

Cache: ``$CGPREDICT_CACHE`` or ``~/.cache/cgpredict``, one file per (space, space version,
parser/feature/vocabulary versions, record list). Files are written to a temporary name and
renamed, so a crash never leaves a half-written cache; a stale version simply has another name.
Builds run in worker processes and can be sharded across the ranks of a distributed job.
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset
from tqdm.auto import tqdm

from graph_encoders.cg import CG_FORMAT_VERSION
from graph_encoders.features import FEATURE_VERSION
from graph_encoders.spectrum import laplacian_spectrum
from graph_encoders.vocabulary import VOCABULARY_VERSION

from . import registry

PARSER_VERSION = 3  # bump when the parser's output for the same ONNX changes
CACHE_ENV = "CGPREDICT_CACHE"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "cgpredict")


def _cache_path(space: str, archs: Sequence, shard: tuple[int, int] | None = None) -> Path:
    digest = hashlib.sha1(repr(list(archs)).encode()).hexdigest()[:12]
    versions = f"v{registry.space_version(space)}-p{PARSER_VERSION}.{CG_FORMAT_VERSION}.{FEATURE_VERSION}.{VOCABULARY_VERSION}"
    suffix = f"-shard{shard[0]}of{shard[1]}" if shard else ""
    return cache_dir() / "cgs" / f"{space}-{versions}-{len(archs)}-{digest}{suffix}.pt"


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_WORKER_SPACE = None


def _init_worker(space_name: str) -> None:
    global _WORKER_SPACE
    from threadpoolctl import threadpool_limits

    # One thread per worker: a multithreaded BLAS makes each small eigendecomposition 30x slower.
    torch.set_num_threads(1)
    threadpool_limits(1)
    _WORKER_SPACE = registry.get_space(space_name)


def _graph(item: tuple[int, object]) -> dict:
    """One architecture's graph as plain numpy arrays: torch tensors sent between processes travel
    as shared-memory file descriptors, and tens of thousands of them exhaust the descriptor limit."""
    index, arch = item
    cg = _WORKER_SPACE.to_cg(arch)
    arrays = {key: value.numpy() for key, value in cg.to_pyg().items() if torch.is_tensor(value)}
    arrays["index"] = np.array([index])
    arrays["spectrum"] = laplacian_spectrum(cg.num_nodes, cg.edges)[None]
    return arrays


def _to_data(arrays: dict) -> Data:
    return Data(**{key: torch.from_numpy(value) for key, value in arrays.items()})


def build_graphs(space: str, archs: Sequence, indices: Sequence[int], workers: int = 0, desc: str = "") -> list[Data]:
    """CGs of ``archs`` (in order), in ``workers`` processes (0: in this process)."""
    items = list(zip(indices, archs))
    progress = dict(total=len(items), desc=desc or f"building {space} CGs", unit="net", mininterval=2.0)
    if workers <= 0:
        _init_worker(space)
        return [_to_data(_graph(item)) for item in tqdm(items, **progress)]
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(space,)) as pool:
        return [_to_data(arrays) for arrays in tqdm(pool.imap(_graph, items, chunksize=64), **progress)]


def space_graphs(space: str, root=None, workers: int | None = None, shard: tuple[int, int] | None = None,
                 limit: int | None = None, target: str | None = None) -> tuple[list[Data], list]:
    """All labelled architectures of ``space`` as ``Data`` (cached), and their records.

    ``shard=(rank, world)`` builds and caches only every ``world``-th architecture from ``rank``
    (for a distributed build); a later unsharded call merges complete shard files instead of
    rebuilding. ``limit`` takes the first ``limit`` records (tests, quick experiments).
    Spaces labelled per target (TransNAS tasks, each with its own architecture sample) build
    the union of all targets' architectures once, so seven tasks cost one build.
    """
    records = registry.load_records(space, root, target)
    if limit is not None:
        records = records[:limit]
    archs = [r.arch for r in records]
    workers = (os.cpu_count() or 1) if workers is None else workers
    targets = registry.per_target_targets(space)
    if not targets or limit is not None or shard is not None:
        return _arch_graphs(space, archs, workers, shard), records
    union = list(dict.fromkeys(r.arch for t in targets for r in registry.load_records(space, root, t)))
    position = {arch: i for i, arch in enumerate(union)}
    built = _arch_graphs(space, union, workers)
    graphs = []
    for i, arch in enumerate(archs):
        data = built[position[arch]].clone()
        data.index = torch.tensor([i])
        graphs.append(data)
    return graphs, records


def _arch_graphs(space: str, archs: list, workers: int, shard: tuple[int, int] | None = None) -> list[Data]:
    """CGs of ``archs`` from the cache, from complete shard files, or built (and cached)."""
    full = _cache_path(space, archs)
    if full.exists():
        return torch.load(full, weights_only=False)
    if shard is not None:
        rank, world = shard
        path = _cache_path(space, archs, shard)
        if not path.exists():
            mine = list(range(rank, len(archs), world))
            _atomic_save(build_graphs(space, [archs[i] for i in mine], mine, workers), path)
        return torch.load(path, weights_only=False)
    shards = sorted(full.parent.glob(full.stem + "-shard*of*.pt")) if full.parent.exists() else []
    if shards and len(shards) == int(shards[0].stem.rsplit("of", 1)[1]):
        graphs = sorted((g for p in shards for g in torch.load(p, weights_only=False)), key=lambda d: int(d.index))
    else:
        graphs = build_graphs(space, archs, range(len(archs)), workers)
    _atomic_save(graphs, full)
    return graphs


class CGDataset(InMemoryDataset):
    """The labelled CGs of one dataset key, e.g. ``CGDataset("nb201/cifar10")``.

    Architectures without a value for the target are left out. ``y`` is the raw label (accuracy
    in percent, latency in ms, ...); label transforms belong to the model, not the data.
    """

    def __init__(self, key: str, root=None, workers: int | None = None, limit: int | None = None):
        super().__init__()
        space, target = registry.parse_key(key)
        graphs, records = space_graphs(space, root, workers, limit=limit, target=target)
        selected = []
        for data in graphs:
            record = records[int(data.index)]
            if target in record.targets:
                data = data.clone()
                data.y = torch.tensor([float(record.targets[target])])
                selected.append(data)
        if not selected:
            known = sorted({t for r in records for t in r.targets})
            raise ValueError(f"{key}: no architecture has target {target!r}; targets of {space}: {known}")
        self.key, self.records = key, records
        self.data, self.slices = self.collate(selected)
