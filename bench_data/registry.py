"""Search spaces and their labels by name, and dataset keys ``"<space>/<target>"``.

Modules are imported on first use, so naming a space costs nothing until it is built.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .spaces.base import ArchRecord, SearchSpace


@dataclass(frozen=True)
class SpaceEntry:
    module: str  # bench_data.spaces.<module>
    space_class: str
    version: int  # bump when the builder or emitter changes the networks it makes
    space_kwargs: tuple = ()
    records_per_target: bool = False  # labels come per target (TransNAS tasks): load_records(task=...)


SPACES: dict[str, SpaceEntry] = {
    "nb101": SpaceEntry("nb101", "NB101Space", 1),
    "nb201": SpaceEntry("nb201", "NB201Space", 1),
    "nb301": SpaceEntry("darts", "DartsSpace", 1),
    "enas": SpaceEntry("enas", "EnasMacroSpace", 1),
    # TransNAS-Bench-101: the searched encoder's CG; the task is the target (task heads are fixed)
    "tnb_micro": SpaceEntry("transnas", "TransNASMicroSpace", 1, (("with_decoder", False),), True),
    "tnb_macro": SpaceEntry("transnas", "TransNASMacroSpace", 1, (("with_decoder", False),), True),
    "fbnet": SpaceEntry("fbnet", "FBNetSpace", 1),
    "ofa_mbv3": SpaceEntry("ofa_mbv3", "OFAMobileNetV3Space", 2),  # v2: exported at the arch's resolution
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


def load_records(name: str, root: Any = None, target: str | None = None) -> list[ArchRecord]:
    """Labelled architectures of a space (for TransNAS, of the task ``target``)."""
    entry = _entry(name)
    kwargs = {"task": target} if entry.records_per_target and target else {}
    space = get_space(name)
    if hasattr(space, "load_records"):  # spaces whose labels depend on their configuration
        return space.load_records(root, **kwargs)
    module = importlib.import_module(f"bench_data.spaces.{entry.module}")
    return module.load_records(root, **kwargs)


def per_target_targets(name: str) -> tuple[str, ...]:
    """The targets of a space labelled per target (TransNAS: its tasks); empty otherwise."""
    entry = _entry(name)
    if not entry.records_per_target:
        return ()
    return tuple(importlib.import_module(f"bench_data.spaces.{entry.module}").TASKS)


def space_version(name: str) -> int:
    return _entry(name).version


HELP_SPACES = {"nb201": "nb201", "nasbench201": "nb201", "fbnet": "fbnet", "ofa": "ofa_mbv3", "ofa_mbv3": "ofa_mbv3"}


def parse_key(key: str) -> tuple[str, str]:
    """``"nb201/cifar10"`` -> ``("nb201", "cifar10")``; HELP latency keys ``"help/<space>/<device>"``
    -> ``(<space>, "latency:<device>")``."""
    if key.startswith("help/"):
        parts = key.split("/")
        if len(parts) != 3 or parts[1] not in HELP_SPACES:
            raise ValueError(f"latency keys are 'help/<space>/<device>' with space in {sorted(HELP_SPACES)}, got {key!r}")
        return HELP_SPACES[parts[1]], f"latency:{parts[2]}"
    space, _, target = key.partition("/")
    if not target:
        raise ValueError(f"dataset key {key!r} must be '<space>/<target>', e.g. 'nb201/cifar10'")
    _entry(space)
    return space, target
