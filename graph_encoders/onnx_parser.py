"""ONNX -> unified computation graph.

The pipeline, one function each:

1. :func:`~graph_encoders.onnx_loading.load_model` - path / bytes / ModelProto / torch module,
   no weight bytes read;
2. :func:`_infer_shapes` - ONNX shape inference (with data propagation, so Reshape targets computed
   by Shape/Gather/Concat subgraphs resolve);
3. :func:`_split_static` - every tensor that does not depend on the network's input (initializers,
   Constant nodes, Shape outputs and everything computed only from them) is *static*: the nodes
   that compute static tensors are folded away; static inputs of the remaining nodes become their
   weights (shapes only); Identity and Dropout are bypassed;
4. :mod:`graph_encoders.canonicalise` - exporter-invariance passes (BatchNorm folding, Linear /
   activation fusion) and per-node attributes, MACs and parameters;
5. canonical topological order, so the same architecture gives the same node order and edges
   whichever exporter wrote it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .canonicalise import canonicalise
from .cg import CGNode, ComputationGraph
from .onnx_loading import SHAPES_INFERRED, ModelLoadError, describe, load_model
from .ordering import canonical_order

PASS_THROUGH_OPS = {"Identity", "Dropout"}
CONTROL_FLOW_OPS = {"If", "Loop", "Scan", "SequenceMap"}
# Ops whose outputs depend only on their input's *shape*, which is fixed: their outputs are static.
SHAPE_OPS = {"Shape", "Size"}
# Input slots that carry learned weights for ops whose weights may arrive as graph inputs.
WEIGHT_SLOTS = {
    "Conv": {1, 2}, "ConvTranspose": {1, 2}, "Gemm": {1, 2}, "PRelu": {1},
    "BatchNormalization": {1, 2, 3, 4}, "LayerNormalization": {1, 2},
    "InstanceNormalization": {1, 2}, "GroupNormalization": {1, 2},
    "LSTM": {1, 2, 3}, "GRU": {1, 2, 3}, "RNN": {1, 2, 3},
}
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
_SMALL_VALUE_LIMIT = 64  # static values read into memory (pads, clip bounds, scalars); never weights


@dataclass
class Weight:
    """A static input of a node: its slot, shape, the parameter tensors it derives from, small value."""

    slot: int
    shape: tuple[int, ...]
    roots: frozenset[tuple[str, int]]  # (parameter tensor name, its element count)
    source: onnx.TensorProto | np.ndarray | None = None  # decoded only when a pass asks for the value

    @property
    def value(self) -> np.ndarray | None:
        """The tensor's value if it is small (bounds, scalars, axes); never a weight's bytes."""
        if isinstance(self.source, onnx.TensorProto):
            return _small_value(self.source)
        return self.source


@dataclass
class WorkNode:
    """A node while the CG is being built: data inputs are tensor names (edges), weights are shapes."""

    op_type: str
    domain: str
    name: str
    inputs: list[tuple[int, str]]  # (slot, tensor name) of data inputs
    outputs: list[str]
    weights: list[Weight]
    attributes: dict[str, Any]
    in_shapes: list[tuple[int, ...]] = field(default_factory=list)
    out_shapes: list[tuple[int, ...]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # set by fusion passes (folded BN, fused bias)

    def weight(self, slot: int) -> Weight | None:
        return next((w for w in self.weights if w.slot == slot), None)


def onnx_to_cg(source: Any, example_input: Any = None, *, name: str | None = None) -> ComputationGraph:
    """Parse an ONNX model (path, bytes, ``ModelProto``, or torch module + example input) into a CG.

    Raises :class:`~graph_encoders.onnx_loading.ModelLoadError` (message ``"<file>: <problem>"``)
    for anything that is not a usable model.
    """
    label = name or describe(source)
    model = load_model(source, example_input)
    try:
        return _model_to_cg(model, label)
    except ModelLoadError:
        raise
    except Exception as err:  # a malformed graph: name the file, keep the cause
        raise ModelLoadError(label, f"cannot build a computation graph: {type(err).__name__}: {err}") from err


def _model_to_cg(model: onnx.ModelProto, label: str) -> ComputationGraph:
    shapes = _tensor_shapes(model.graph)
    if not all(_known(shapes.get(out)) for node in model.graph.node for out in node.output if out):
        model = _infer_shapes(model)  # skipped when the file declares every shape (dynamo, bench_data)
        shapes = _tensor_shapes(model.graph)
    graph = model.graph
    nodes, graph_inputs, graph_outputs = _split_static(graph, shapes, label)
    if any(not _known(shapes.get(out)) for node in nodes for out in node.outputs[:1]):
        shapes.update(_shapes_with_static_values(model, shapes))
    unknown = [f"{n.domain}::{n.op_type}" if n.domain else n.op_type for n in nodes if _is_unknown(n)]
    cg_nodes, edges, folded = canonicalise(nodes, graph_inputs, graph_outputs, shapes, _batch_size(graph_inputs, shapes))
    order = canonical_order(cg_nodes, edges)
    position = {old: new for new, old in enumerate(order)}
    return ComputationGraph(
        nodes=[cg_nodes[i] for i in order],
        edges=sorted({(position[s], position[d]) for s, d in edges}),
        source=label,
        input_shapes=[shapes.get(name, ()) for name in graph_inputs],
        unknown_ops=unknown,
        folded=folded,
    )


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    if any(p.key == SHAPES_INFERRED for p in model.metadata_props):
        return model
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - a newer opset or custom op: keep whatever shapes the file had
        return model


def _known(shape) -> bool:
    return shape is not None and 0 not in shape


def _shapes_with_static_values(model: onnx.ModelProto, shapes: dict) -> dict:
    """Second try at shapes, for files whose Reshape / Expand / Resize targets come from Shape ops
    that ONNX data propagation cannot follow: evaluate the static subgraph on the known shapes, then
    infer again on a weightless copy of the data path with those values as constants."""
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    opsets = {o.domain: o.version for o in model.opset_import}
    init_types = {i.name: i.data_type for i in graph.initializer}
    values: dict[str, np.ndarray | None] = {i.name: v for i in graph.initializer if (v := _small_value(i)) is not None}
    values[""] = None
    static = set(init_types)
    data_nodes = []
    for node in graph.node:
        present = [i for i in node.input if i]
        if node.op_type in SHAPE_OPS and _known(shapes.get(node.input[0])):
            start, end = _shape_slice(node)
            values[node.output[0]] = np.array(shapes[node.input[0]][start:end], dtype=np.int64)
            static.add(node.output[0])
        elif all(i in static for i in present) and node.op_type not in SHAPE_OPS:
            static.update(node.output)
            if all(i in values for i in present) and node.domain in ("", "ai.onnx"):
                inputs = [values[i] for i in node.input]  # '' (absent optional input) maps to None
                try:
                    outs = _evaluate_shape_op(node, inputs)
                    if outs is None:  # not a common shape op: ONNX's reference implementation
                        outs = ReferenceEvaluator(node, opsets=opsets).run(None, {i: values[i] for i in present})
                except Exception:  # noqa: BLE001 - unevaluable: that tensor stays unknown
                    continue
                for name, out in zip(node.output, outs):
                    if np.size(out) <= _SMALL_VALUE_LIMIT:
                        values[name] = np.asarray(out)
        else:
            data_nodes.append(node)
    needed = {i for node in data_nodes for i in node.input if i in static}
    initializers = [numpy_helper.from_array(values[n], n) for n in needed if n in values]
    stubs = [
        onnx.helper.make_tensor_value_info(n, init_types.get(n, onnx.TensorProto.FLOAT), shapes.get(n))
        for n in needed if n not in values
    ]
    data_inputs = [i for i in graph.input if i.name not in static]
    light = onnx.helper.make_model(
        onnx.helper.make_graph(data_nodes, "shapes", [*data_inputs, *stubs], list(graph.output), initializers),
        opset_imports=list(model.opset_import), ir_version=model.ir_version,
    )
    return {k: v for k, v in _tensor_shapes(_infer_shapes(light).graph).items() if _known(v)}


def _evaluate_shape_op(node: onnx.NodeProto, inputs: list) -> list | None:
    """Numpy for the ops shape subgraphs are made of (the reference evaluator costs ~1 ms a node)."""
    op = node.op_type
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if op in ("Unsqueeze", "Squeeze") and len(inputs) > 1 and inputs[1] is not None:
        axes = [int(a) for a in np.atleast_1d(inputs[1])]
    else:
        axes = attrs.get("axes")
    if op == "Unsqueeze" and axes is not None:
        out = np.asarray(inputs[0])
        for axis in sorted(a % (out.ndim + len(axes)) for a in axes):
            out = np.expand_dims(out, axis)
        return [out]
    if op == "Squeeze":
        return [np.squeeze(inputs[0], axis=tuple(axes) if axes is not None else None)]
    if op == "Gather":
        return [np.take(inputs[0], inputs[1], axis=attrs.get("axis", 0))]
    if op == "Concat":
        return [np.concatenate([np.atleast_1d(v) for v in inputs], axis=attrs.get("axis", 0))]
    if op == "Cast":
        return [np.asarray(inputs[0]).astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))]
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Equal": np.equal}
    if op in binary:
        return [binary[op](inputs[0], inputs[1])]
    if op == "Div":
        a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
        return [a // b if a.dtype.kind in "iu" else a / b]
    return None


def _shape_slice(node) -> tuple:
    attrs = {a.name: a.i for a in node.attribute}
    return attrs.get("start", 0), attrs.get("end")


def _tensor_shapes(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    """Every known tensor shape; symbolic or unknown dimensions become 0."""
    shapes: dict[str, tuple[int, ...]] = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape"):
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else 0 for d in tensor_type.shape.dim)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _batch_size(graph_inputs: list[str], shapes: dict) -> int:
    """Batch of the first input (dim 0; 1 if symbolic): MACs are reported per sample."""
    for name in graph_inputs:
        shape = shapes.get(name, ())
        if len(shape) >= 2 and shape[0] > 0:
            return shape[0]
    return 1


def _small_value(tensor: onnx.TensorProto) -> np.ndarray | None:
    if _numel(tensor) > _SMALL_VALUE_LIMIT or tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    try:
        return numpy_helper.to_array(tensor)
    except Exception:  # noqa: BLE001 - unusual dtype: the value is only a nicety
        return None


def _numel(tensor: onnx.TensorProto) -> int:
    return math.prod(tensor.dims)


def _is_param_tensor(tensor: onnx.TensorProto) -> bool:
    """A learned tensor: floating point with more than one element (scalars are constants like eps)."""
    return tensor.data_type in _FLOAT_TYPES and _numel(tensor) > 1


def _split_static(graph: onnx.GraphProto, shapes: dict, label: str):
    """Fold every static computation; return the dynamic nodes, graph input and output names."""
    roots: dict[str, frozenset[str]] = {}
    values: dict[str, onnx.TensorProto | np.ndarray | None] = {}  # static tensors' (lazy) values
    for init in graph.initializer:
        roots[init.name] = frozenset({(init.name, _numel(init))}) if _is_param_tensor(init) else frozenset()
        values[init.name] = init

    weight_inputs = _weight_only_inputs(graph, set(roots))
    for info in graph.input:
        if info.name in weight_inputs:
            roots[info.name] = frozenset({(info.name, math.prod(shapes.get(info.name, (0,))))})
            values[info.name] = None
    graph_inputs = [i.name for i in graph.input if i.name not in roots]
    if not graph_inputs:
        raise ModelLoadError(label, "the model has no data input (every input is a weight)")

    alias: dict[str, str] = {}
    nodes: list[WorkNode] = []
    for node in graph.node:
        inputs = [alias.get(i, i) for i in node.input]
        dynamic_slots = [k for k, i in enumerate(inputs) if i and i not in roots]
        if node.op_type in SHAPE_OPS or not dynamic_slots:
            _fold_static(node, inputs, roots, values)
            continue
        if node.op_type in CONTROL_FLOW_OPS and node.domain in ("", "ai.onnx"):
            raise ModelLoadError(
                label, f"control-flow op {node.op_type} ('{node.name}') on the data path is not supported; "
                "export with static shapes or unrolled loops"
            )
        if node.op_type in PASS_THROUGH_OPS and node.domain in ("", "ai.onnx"):
            alias[node.output[0]] = inputs[0]
            continue
        weights = [
            Weight(k, shapes.get(i, ()), roots[i], values.get(i))
            for k, i in enumerate(inputs) if i and i in roots
        ]
        nodes.append(WorkNode(
            op_type=node.op_type,
            domain=node.domain,
            name=node.name,
            inputs=[(k, inputs[k]) for k in dynamic_slots],
            outputs=list(node.output),
            weights=weights,
            attributes={a.name: onnx.helper.get_attribute_value(a) for a in node.attribute},
        ))
    graph_outputs = [alias.get(o.name, o.name) for o in graph.output if alias.get(o.name, o.name) not in roots]
    return nodes, graph_inputs, graph_outputs


def _fold_static(node: onnx.NodeProto, inputs: list[str], roots: dict, values: dict) -> None:
    """Record a static node's outputs: which parameters they derive from, and small values."""
    derived: frozenset[str] = frozenset()
    if node.op_type not in SHAPE_OPS:
        derived = frozenset().union(*(roots[i] for i in inputs if i))
    value = None
    if node.op_type == "Constant":
        for attr in node.attribute:
            if attr.name == "value":
                value = attr.t
                if _is_param_tensor(attr.t):
                    derived = frozenset({(node.output[0], _numel(attr.t))})
            elif attr.name in ("value_float", "value_int"):
                value = np.asarray(onnx.helper.get_attribute_value(attr))
            elif attr.name in ("value_floats", "value_ints"):
                value = np.asarray(onnx.helper.get_attribute_value(attr))
    elif node.op_type in ("Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze") and inputs and inputs[0]:
        value = values.get(inputs[0])  # value-preserving: keep small values visible (clip bounds...)
    for out in node.output:
        roots[out] = derived
        values[out] = value


def _weight_only_inputs(graph: onnx.GraphProto, initialised: set[str]) -> set[str]:
    """Graph inputs without initializer that are used only in weight slots (old-style exports)."""
    candidates = [i.name for i in graph.input if i.name not in initialised]
    if len(candidates) <= 1:  # the usual case: one data input, weights as initializers
        return set()
    uses: dict[str, list[bool]] = {}
    for node in graph.node:
        slots = WEIGHT_SLOTS.get(node.op_type, set())
        for k, name in enumerate(node.input):
            uses.setdefault(name, []).append(k in slots)
    return {
        i.name for i in graph.input
        if i.name not in initialised and uses.get(i.name) and all(uses[i.name])
    }


def _is_unknown(node: WorkNode) -> bool:
    from .vocabulary import category_of

    return category_of(node.op_type, node.domain) == "other"


__all__ = ["onnx_to_cg", "ModelLoadError", "WorkNode", "Weight", "CGNode"]
