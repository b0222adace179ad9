"""The one interface every search space implements.

A search space turns an architecture key (the benchmark's own encoding: an NB-201 string, an
NB-101 (matrix, ops) pair, a DARTS genotype, ...) into a faithful torch ``nn.Module`` whose
parameter count matches the count the benchmark stored with its labels.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Hashable

import torch
from torch import nn


class SearchSpace(ABC):
    """A NAS benchmark search space.

    Subclasses set ``name`` and ``input_shape`` (C, H, W of one input image) and implement
    :meth:`build`. ``canonical_key`` maps isomorphic encodings to one key (default: identity).
    """

    name: str = ""
    input_shape: tuple[int, ...] = (3, 32, 32)
    num_classes: int = 10

    @abstractmethod
    def build(self, arch: Any) -> nn.Module:
        """A torch module for ``arch`` (eval-mode semantics; parameters randomly initialised)."""

    def canonical_key(self, arch: Any) -> Hashable:
        """A key equal for isomorphic architectures (used to recognise duplicates)."""
        return arch if isinstance(arch, Hashable) else repr(arch)

    def example_input(self, batch: int = 1, arch: Any = None) -> torch.Tensor:
        shape = self.input_shape if arch is None else self.arch_input_shape(arch)
        return torch.zeros(batch, *shape)

    def arch_input_shape(self, arch: Any) -> tuple[int, ...]:
        """The input ``arch`` is evaluated at (spaces that search the resolution override this)."""
        return self.input_shape

    def to_onnx(self, arch: Any):
        """The network as an ONNX ``ModelProto``.

        Default: trace :meth:`build` with the legacy exporter (~0.3 s). Spaces with thousands of
        labelled networks override this with a direct emitter (:mod:`bench_data.onnx_builder`)
        whose CGs the tests prove identical to the traced ones.
        """
        from graph_encoders import export_torch

        return export_torch(self.build(arch).eval(), self.example_input(arch=arch))

    def to_cg(self, arch: Any):
        """The network's computation graph, through the same parser a user's file takes."""
        from graph_encoders import onnx_to_cg

        return onnx_to_cg(self.to_onnx(arch), name=f"{self.name}:{arch}")

    def export_onnx(self, arch: Any):
        """Always the traced export (what :meth:`to_onnx` must agree with)."""
        return SearchSpace.to_onnx(self, arch)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters, each shared tensor counted once (what the benchmarks store)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@dataclass
class ArchRecord:
    """One labelled architecture of a benchmark.

    ``arch`` is the space's own key (what :meth:`SearchSpace.build` takes); ``targets`` maps a
    target name (``"val_acc_108"``, ``"cifar10"``, ``"latency:pixel3"`` ...) to its value;
    ``stored_params`` is the parameter count the benchmark stored, when it stored one.
    """

    arch: Any
    targets: dict[str, float] = field(default_factory=dict)
    stored_params: int | float | None = None
    index: int | None = None
