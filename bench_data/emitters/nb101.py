"""NAS-Bench-101 networks written straight to ONNX (mirrors ``bench_data.spaces.nb101.NB101Network``)."""
from __future__ import annotations

import onnx

from bench_data.onnx_builder import OnnxBuilder
from bench_data.spaces.nb101 import CONV1X1, CONV3X3, compute_vertex_channels


def _conv_bn_relu(b: OnnxBuilder, x: str, c_out: int, kernel: int) -> str:
    return b.relu(b.conv(x, c_out, kernel))  # BN folded into the conv


def _cell(b: OnnxBuilder, x: str, matrix, ops, c_in: int, c_out: int) -> str:
    n = len(matrix)
    channels = compute_vertex_channels(c_in, c_out, matrix)
    tensors = [x]
    for t in range(1, n - 1):
        inputs = [b.slice_channels(tensors[u], channels[t]) for u in range(1, t) if matrix[u][t]]
        if matrix[0][t]:
            inputs.append(_conv_bn_relu(b, x, channels[t], 1))
        total = inputs[0]
        for extra in inputs[1:]:
            total = b.add(total, extra)
        if ops[t] in (CONV3X3, CONV1X1):
            tensors.append(_conv_bn_relu(b, total, channels[t], 3 if ops[t] == CONV3X3 else 1))
        else:
            tensors.append(b.max_pool(total, 3, 1, 1))
    to_output = [t for t in range(1, n - 1) if matrix[t][n - 1]]
    if not to_output:
        return _conv_bn_relu(b, x, c_out, 1)
    out = b.concat([tensors[t] for t in to_output]) if len(to_output) > 1 else tensors[to_output[0]]
    if matrix[0][n - 1]:
        out = b.add(out, _conv_bn_relu(b, x, c_out, 1))
    return out


def emit(matrix, ops, num_classes: int = 10, stem_channels: int = 128, num_stacks: int = 3,
         cells_per_stack: int = 3) -> onnx.ModelProto:
    """``matrix, ops`` must be pruned (as ``NB101Space.build`` prunes them)."""
    b = OnnxBuilder((1, 3, 32, 32), name="nb101")
    x = _conv_bn_relu(b, "input", stem_channels, 3)
    c_in = channels = stem_channels
    for stack in range(num_stacks):
        if stack > 0:
            x = b.max_pool(x, 2, 2)
            channels *= 2
        for _ in range(cells_per_stack):
            x = _cell(b, x, matrix, ops, c_in, channels)
            c_in = channels
    return b.model(b.linear(b.mean_spatial(x), num_classes))
