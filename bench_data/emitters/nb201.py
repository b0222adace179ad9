"""NAS-Bench-201 networks written straight to ONNX (mirrors ``bench_data.spaces.nb201.TinyNetwork``)."""
from __future__ import annotations

import onnx

from bench_data.onnx_builder import OnnxBuilder


def _cell(b: OnnxBuilder, x: str, genotype) -> str:
    nodes = [x]
    for edges in genotype:
        total = None
        for op, src in edges:
            source = nodes[src]
            if op == "none":
                out = b.mul_scalar(source, 0.0)
            elif op == "skip_connect":
                out = source
            elif op == "avg_pool_3x3":
                out = b.avg_pool(source, 3, 1, 1, count_include_pad=False)
            else:  # ReLU -> conv -> BN, BN folded into the conv
                out = b.conv(b.relu(source), b.shapes[source][1], 1 if op == "nor_conv_1x1" else 3)
            total = out if total is None else b.add(total, out)
        nodes.append(total)
    return nodes[-1]


def emit(genotype, num_classes: int = 10, input_size: int = 32, C: int = 16, N: int = 5) -> onnx.ModelProto:
    b = OnnxBuilder((1, 3, input_size, input_size), name="nb201")
    x = b.conv("input", C, 3, bias=True)  # stem conv + BN
    for stage, c in enumerate((C, 2 * C, 4 * C)):
        if stage > 0:  # ResNet basic block, stride 2
            shortcut = b.conv(b.avg_pool(x, 2, 2), c, 1, bias=False)
            body = b.conv(b.relu(b.conv(b.relu(x), c, 3, stride=2)), c, 3)
            x = b.add(shortcut, body)
        for _ in range(N):
            x = _cell(b, x, genotype)
    x = b.relu(b.batch_norm(x))
    return b.model(b.linear(b.flatten(b.global_avg_pool(x)), num_classes))
