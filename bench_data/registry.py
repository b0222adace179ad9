"""Search spaces and their labels by name, and dataset keys ``"<space>/<target>"``.

Modules are imported on first use, so naming a space costs nothing until it is built.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from .spaces.base import ArchRecord, SearchSpace


@dataclass(frozen=True)
class SpaceEntry:
    module: str  # bench_data.spaces.<module>
    space_class: str
    version: int  # bump when the builder or emitter changes the networks it makes
    records_kwargs: tuple = ()  # fixed keyword arguments of load_records (e.g. TransNAS task)
    space_kwargs: tuple = ()


SPACES: dict[str, SpaceEntry] = {
    "nb101": SpaceEntry("nb101", "NB101Space", 1),
    "nb201": SpaceEntry("nb201", "NB201Space", 1),
    "nb301": SpaceEntry("darts", "DARTSSpace", 1),
    "enas": SpaceEntry("enas", "ENASSpace", 1),
}


def space_names() -> list[str]:
    return sorted(SPACES)


def _entry(name: str) -> SpaceEntry:
    if name not in SPACES:
        raise KeyError(f"unknown search space {name!r}; known: {', '.join(space_names())}")
    return SPACES[name]


def get_space(name: str) -> SearchSpace:
    entry = _entry(name)
    module = importlib.import_module(f"bench_data.spaces.{entry.module}")
    return getattr(module, entry.space_class)(**dict(entry.space_kwargs))


def load_records(name: str, root: Any = None) -> list[ArchRecord]:
    entry = _entry(name)
    loader: Callable = importlib.import_module(f"bench_data.spaces.{entry.module}").load_records
    return loader(root, **dict(entry.records_kwargs)) if root is not None else loader(**dict(entry.records_kwargs))


def space_version(name: str) -> int:
    return _entry(name).version


def parse_key(key: str) -> tuple[str, str]:
    """``"nb201/cifar10"`` -> ``("nb201", "cifar10")``."""
    space, _, target = key.partition("/")
    if not target:
        raise ValueError(f"dataset key {key!r} must be '<space>/<target>', e.g. 'nb201/cifar10'")
    _entry(space)
    return space, target
