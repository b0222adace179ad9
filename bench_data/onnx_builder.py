"""Writing a network's ONNX graph directly, without torch: the fast path for benchmark spaces.

Tracing one network with ``torch.onnx.export`` costs ~0.3 s; a search space of 30,000 networks
cannot afford it. A space's emitter describes its network with :class:`OnnxBuilder` calls, the
same way its torch ``forward`` does, and gets a real ``ModelProto`` (~2 ms) that goes through the
same parser as any user's file. Weights are *declared* (shape, external location) but carry no
bytes: the parser reads only shapes. Tests check that emitted and torch-exported networks give
identical CGs.

The builder writes what an eval-mode export writes: BatchNorm folded into the conv before it
(a conv followed by BN becomes one conv with a bias), identical operations on one tensor computed once.
"""
from __future__ import annotations

import itertools

import onnx
from onnx import TensorProto, helper

OPSET = 17
_VIEW_OPS = ("Slice", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze")


class OnnxBuilder:
    """Accumulates nodes and weight declarations; :meth:`model` returns the ``ModelProto``."""

    def __init__(self, input_shape: tuple[int, ...], name: str = "network"):
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.shapes: dict[str, tuple[int, ...]] = {"input": tuple(input_shape)}
        self._ids = itertools.count()
        self._offset = 0
        self._computed: dict[tuple, str] = {}
        self._constants: dict[tuple, str] = {}  # one initializer per constant value, so CSE sees equal inputs

    # ------------------------------------------------------------------ plumbing
    def _tensor(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    def _weight(self, shape: tuple[int, ...]) -> str:
        """Declare a float32 weight stored externally (never written: only its shape matters)."""
        name = self._tensor("w")
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
        length = 4
        for d in shape:
            length *= d
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "weights.bin"), ("offset", str(self._offset)), ("length", str(length))):
            tensor.external_data.add(key=key, value=value)
        self._offset += length
        self.initializers.append(tensor)
        return name

    def _scalar(self, value: float) -> str:
        key = ("float", value)
        if key not in self._constants:
            name = self._tensor("c")
            self.initializers.append(helper.make_tensor(name, TensorProto.FLOAT, [], [value]))
            self._constants[key] = name
        return self._constants[key]

    def _node(self, op: str, inputs: list[str], shape: tuple[int, ...], **attrs) -> str:
        # Common-subexpression elimination, as the torch exporters do: the same op on the same
        # tensors (two ReLUs of one tensor, two ``none`` edges from one node) is computed once.
        # Like torch's CSE, views (Slice) are never merged.
        key = (op, tuple(inputs), tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in self._computed and op not in _VIEW_OPS:
            return self._computed[key]
        out = self._tensor(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        self.shapes[out] = shape
        self._computed[key] = out
        return out

    # ------------------------------------------------------------------ operators
    def conv(self, x: str, c_out: int, kernel: int, stride: int = 1, *, bias: bool = True, groups: int = 1,
             dilation: int = 1, padding: int | None = None) -> str:
        """Conv2d; ``bias=True`` also stands for a conv followed by (folded) BatchNorm."""
        n, c_in, h, w = self.shapes[x]
        pad = dilation * (kernel - 1) // 2 if padding is None else padding
        span = dilation * (kernel - 1) + 1
        out_hw = ((h + 2 * pad - span) // stride + 1, (w + 2 * pad - span) // stride + 1)
        inputs = [x, self._weight((c_out, c_in // groups, kernel, kernel))]
        if bias:
            inputs.append(self._weight((c_out,)))
        return self._node("Conv", inputs, (n, c_out, *out_hw), kernel_shape=[kernel, kernel], strides=[stride, stride],
                          pads=[pad] * 4, dilations=[dilation, dilation], group=groups)

    def batch_norm(self, x: str) -> str:
        """A BatchNorm that no conv absorbs (one after an Add, say)."""
        c = self.shapes[x][1]
        stats = [self._weight((c,)) for _ in range(4)]
        return self._node("BatchNormalization", [x, *stats], self.shapes[x], epsilon=1e-5)

    def relu(self, x: str) -> str:
        return self._node("Relu", [x], self.shapes[x])

    def add(self, a: str, b: str) -> str:
        return self._node("Add", [a, b], self.shapes[a])

    def mul_scalar(self, x: str, value: float) -> str:
        return self._node("Mul", [x, self._scalar(value)], self.shapes[x])

    def concat(self, xs: list[str], axis: int = 1) -> str:
        first = self.shapes[xs[0]]
        shape = list(first)
        shape[axis] = sum(self.shapes[x][axis] for x in xs)
        return self._node("Concat", xs, tuple(shape), axis=axis)

    def _pool(self, op: str, x: str, kernel: int, stride: int, pad: int, **attrs) -> str:
        n, c, h, w = self.shapes[x]
        out = (n, c, (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1)
        return self._node(op, [x], out, kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4, **attrs)

    def avg_pool(self, x: str, kernel: int, stride: int = 1, pad: int = 0, count_include_pad: bool = True) -> str:
        return self._pool("AveragePool", x, kernel, stride, pad, count_include_pad=int(count_include_pad))

    def max_pool(self, x: str, kernel: int, stride: int = 1, pad: int = 0) -> str:
        return self._pool("MaxPool", x, kernel, stride, pad)

    def global_avg_pool(self, x: str) -> str:
        n, c = self.shapes[x][:2]
        return self._node("GlobalAveragePool", [x], (n, c, 1, 1))

    def _ints(self, values: list[int]) -> str:
        key = ("ints", *values)
        if key not in self._constants:
            name = self._tensor("i")
            self.initializers.append(helper.make_tensor(name, TensorProto.INT64, [len(values)], values))
            self._constants[key] = name
        return self._constants[key]

    def slice_channels(self, x: str, channels: int) -> str:
        """``x[:, :channels]``; nothing when that is all of ``x`` (the exporters drop such slices)."""
        n, c, *rest = self.shapes[x]
        if channels == c:
            return x
        inputs = [x, self._ints([0]), self._ints([channels]), self._ints([1]), self._ints([1])]
        return self._node("Slice", inputs, (n, channels, *rest))

    def mean_spatial(self, x: str) -> str:
        """``x.mean(dim=(2, 3))``: ReduceMean without kept dims."""
        n, c = self.shapes[x][:2]
        return self._node("ReduceMean", [x], (n, c), axes=[2, 3], keepdims=0)

    def flatten(self, x: str) -> str:
        n, *rest = self.shapes[x]
        size = 1
        for d in rest:
            size *= d
        return self._node("Flatten", [x], (n, size), axis=1)

    def linear(self, x: str, out_features: int) -> str:
        n, in_features = self.shapes[x]
        w, b = self._weight((out_features, in_features)), self._weight((out_features,))
        return self._node("Gemm", [x, w, b], (n, out_features), transB=1)

    # ------------------------------------------------------------------ result
    def model(self, output: str) -> onnx.ModelProto:
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.shapes["input"])]
        outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, self.shapes[output])]
        # Declaring every intermediate shape spares the parser a round of shape inference.
        value_info = [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
            for name, shape in self.shapes.items() if name not in ("input", output)
        ]
        graph = helper.make_graph(self.nodes, self.name, inputs, outputs, self.initializers, value_info=value_info)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cgpredict.bench_data")
