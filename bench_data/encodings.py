"""Each search space's own standard fixed-length encoding (NASLib "adjacency_one_hot" style).

These are the features of the simple tabular baselines (random forest, XGBoost, MLP) that
BRP-NAS, NASLib and the predictor surveys compare against. Sizes, with ``space_name`` as in
:mod:`bench_data.registry`:

=============  ====  ===================================================================
space          size  layout
=============  ====  ===================================================================
``nb201``        30  per edge (0->1, 0->2, 1->2, 0->3, 1->3, 2->3; string order), one-hot
                     of the op over :data:`nb201.OPS`
``nb101``        36  the 21 upper-triangular entries of the 7x7 adjacency (row-major),
                     then per interior vertex 1..5 a one-hot over
                     :data:`nb101.CANONICAL_OPS`. The cell is first pruned as NB-101 does;
                     a cell of n < 7 vertices is padded NASLib/NB-101-API style: zero rows
                     and columns inserted *before* the output, which stays vertex 6;
                     padded vertices get an all-zero op one-hot
``nb301``       192  per cell (normal, reduce), per edge (8): one-hot input node (5 slots,
                     0..4; edge k can only use 0..1+k//2) + one-hot op over
                     :data:`darts.OPS` (7)
``tnb_micro``    24  per edge (6) one-hot of the op digit 0..3
``tnb_macro``    30  per position (6) one-hot over codes 0..4, 0 being the padding
                     (NASLib ``encode_adjacency_one_hot_transbench_macro_op_indices``)
``enas``         51  per layer i (6): one-hot op over :data:`enas.OPS` (6) + its i skip bits
=============  ====  ===================================================================

Every encoder validates the architecture with its space's own parser, so a malformed key
raises ``ValueError`` instead of producing a silent wrong row.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from .registry import space_names
from .spaces import darts, enas, nb101, nb201, transnas

NB101_VERTICES = 7
DARTS_INPUT_SLOTS = 5  # c_{k-2}, c_{k-1} and intermediate nodes 0..2 (node 3 feeds none)
TNB_MACRO_POSITIONS = 6
TNB_MACRO_CODES = 5  # 0 = padding, 1..4 = module codes
TNB_MICRO_OPS = 4


def _one_hot(index: int, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float32)
    out[index] = 1.0
    return out


def _encode_nb201(arch: Any) -> np.ndarray:
    if not isinstance(arch, str):
        raise ValueError(f"NB-201 arch must be the benchmark string, got {arch!r}")
    ops: dict[int, str] = {}  # edge src -> j gets slot j * (j - 1) / 2 + src
    for j, node in enumerate(nb201.parse_arch(arch), start=1):
        for op, src in node:
            ops[j * (j - 1) // 2 + src] = op
        if len(node) != j or len(ops) != j * (j + 1) // 2:
            raise ValueError(f"NB-201 node {j} needs one edge from each earlier node: {arch!r}")
    return np.concatenate([_one_hot(nb201.OPS.index(ops[e]), len(nb201.OPS)) for e in range(6)])


def _encode_nb101(arch: Any) -> np.ndarray:
    try:
        matrix, ops = arch
    except (TypeError, ValueError):
        raise ValueError(f"NB-101 arch must be a (matrix, ops) pair, got {arch!r}") from None
    matrix, ops = nb101.prune(matrix, ops)
    n = len(ops)
    if n > NB101_VERTICES or ops[0] != nb101.INPUT or ops[-1] != nb101.OUTPUT:
        raise ValueError(f"NB-101 cell needs <= 7 vertices from 'input' to 'output', got {ops!r}")
    # vertex v of the n-vertex cell sits at slot v; the output moves to slot 6
    slot = list(range(n - 1)) + [NB101_VERTICES - 1]
    padded = np.zeros((NB101_VERTICES, NB101_VERTICES), dtype=np.float32)
    padded[np.ix_(slot, slot)] = matrix
    op_codes = np.zeros((NB101_VERTICES - 2, len(nb101.CANONICAL_OPS)), dtype=np.float32)
    for v, op in enumerate(ops[1:-1]):
        if op not in nb101.CANONICAL_OPS:
            raise ValueError(f"unknown NB-101 op {op!r}; expected one of {nb101.CANONICAL_OPS}")
        op_codes[v, nb101.CANONICAL_OPS.index(op)] = 1.0
    return np.concatenate([padded[np.triu_indices(NB101_VERTICES, k=1)], op_codes.ravel()])


def _encode_nb301(arch: Any) -> np.ndarray:
    return np.concatenate([
        np.concatenate([_one_hot(src, DARTS_INPUT_SLOTS), _one_hot(op, len(darts.OPS))])
        for cell in darts.parse_compact(arch) for src, op in cell
    ])


def _digits(arch: Any, lengths: range, codes: range, what: str) -> tuple[int, ...]:
    try:
        digits = transnas._parse_tuple(arch)
    except (TypeError, ValueError, SyntaxError):
        digits = ()
    if len(digits) not in lengths or any(d not in codes for d in digits):
        count = f"{lengths.start}" if len(lengths) == 1 else f"{lengths.start}-{lengths.stop - 1}"
        raise ValueError(f"{what} arch must be {count} digits in {codes.start}..{codes.stop - 1},"
                         f" got {arch!r}")
    return digits


def _encode_tnb_micro(arch: Any) -> np.ndarray:
    if isinstance(arch, str) and "-" in arch:  # '64-41414-a_bc_def'
        arch = tuple(arch.split("-")[-1].replace("_", ""))
    digits = _digits(arch, range(6, 7), range(TNB_MICRO_OPS), "TNB-101 micro")
    return np.concatenate([_one_hot(d, TNB_MICRO_OPS) for d in digits])


def _encode_tnb_macro(arch: Any) -> np.ndarray:
    if isinstance(arch, str) and "-" in arch:  # '64-1242-basic'
        arch = tuple(arch.split("-")[1])
    digits = _digits(arch, range(1, TNB_MACRO_POSITIONS + 1), range(TNB_MACRO_CODES), "TNB-101 macro")
    modules = tuple(d for d in digits if d != 0)
    if not modules or digits[:len(modules)] != modules:
        raise ValueError(f"TNB-101 macro arch must be module codes 1..4, then 0 padding; got {arch!r}")
    padded = modules + (0,) * (TNB_MACRO_POSITIONS - len(modules))
    return np.concatenate([_one_hot(d, TNB_MACRO_CODES) for d in padded])


def _encode_enas(arch: Any) -> np.ndarray:
    return np.concatenate([
        np.concatenate([_one_hot(layer[0], len(enas.OPS)), np.asarray(layer[1:], dtype=np.float32)])
        for layer in enas.parse_arch(arch)
    ])


ENCODERS: dict[str, Callable[[Any], np.ndarray]] = {
    "nb201": _encode_nb201, "nb101": _encode_nb101, "nb301": _encode_nb301,
    "tnb_micro": _encode_tnb_micro, "tnb_macro": _encode_tnb_macro, "enas": _encode_enas,
}
ENCODING_SIZES = {"nb201": 30, "nb101": 36, "nb301": 192, "tnb_micro": 24, "tnb_macro": 30, "enas": 51}


def _encoder(space_name: str) -> Callable[[Any], np.ndarray]:
    if space_name not in ENCODERS:
        known = ", ".join(sorted(ENCODERS))
        extra = " (a known space without a fixed-length encoding)" if space_name in space_names() else ""
        raise KeyError(f"no encoding for search space {space_name!r}{extra}; encodings exist for {known}")
    return ENCODERS[space_name]


def encode(space_name: str, arch: Any) -> np.ndarray:
    """The float32 vector of ``arch`` (the space's own key) in ``space_name``'s encoding."""
    return _encoder(space_name)(arch)


def encode_many(space_name: str, archs: Iterable[Any]) -> np.ndarray:
    """``encode`` of each arch stacked into a 2-D ``(n, ENCODING_SIZES[space_name])`` array."""
    fn = _encoder(space_name)
    rows = [fn(arch) for arch in archs]
    return np.stack(rows) if rows else np.zeros((0, ENCODING_SIZES[space_name]), dtype=np.float32)


__all__ = ["encode", "encode_many", "ENCODERS", "ENCODING_SIZES"]
