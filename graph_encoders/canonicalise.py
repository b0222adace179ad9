"""Exporter-invariance passes and per-node attributes, MACs and parameters.

Convention (the one an eval-mode export uses, documented in README "Computation graph"):
- a BatchNormalization that reads a Conv / ConvTranspose output used by nothing else is folded into
  that conv (the conv gains a bias); any other BatchNorm stays a node;
- ``Gemm`` and ``MatMul`` with a weight operand become ``Linear``; a following ``Add`` of a bias
  vector is folded into it;
- a product with a constant zero (NB-201's and TransNAS' ``none`` edge, ``x * 0``) and everything
  computed only from it are folded away, as is whatever then reaches no output (the CG keeps them
  apart, in ``ComputationGraph.folded``: they still run, and latency counts them);
- decomposed activations are fused: x*sigmoid(x) -> Swish, x*hardsigmoid(x) -> HardSwish,
  x*tanh(softplus(x)) -> Mish, the erf form of GELU -> Gelu;
- MACs are multiply-accumulates per sample of conv, linear, matmul and recurrent ops (everything
  else is 0); parameters are learned tensors (floating point, more than one element) counted once.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .cg import CGNode
from .vocabulary import category_of

if TYPE_CHECKING:
    from .onnx_parser import WorkNode

_CONV_OPS = ("Conv", "ConvTranspose")
# Input slots that are shapes/indices/bounds, never learned data.
_SHAPE_SLOTS = {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "Resize": {1, 2, 3}, "Upsample": {1}, "Slice": {1, 2, 3, 4},
    "Pad": {1, 2, 3}, "Squeeze": {1}, "Unsqueeze": {1}, "Split": {1}, "TopK": {1}, "Clip": {1, 2},
    "ReduceMean": {1}, "ReduceSum": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "ReduceL2": {1},
    "Gather": {1}, "GatherElements": {1}, "GatherND": {1}, "ConstantOfShape": {0},
    "BatchNormalization": {3, 4},  # running statistics are buffers, not parameters
    "LSTM": {4, 5, 6, 7}, "GRU": {4, 5}, "RNN": {4, 5},  # sequence lengths, initial states
}


def canonicalise(nodes: list["WorkNode"], graph_inputs, graph_outputs, shapes, batch: int):
    """Run the passes; returns ``CGNode``s, edges ``(src, dst)`` (indices) and the folded ``CGNode``s."""
    nodes, graph_outputs, folded = _fold_zero_products(nodes, list(graph_outputs))
    for fusion in (_fold_batchnorm, _fuse_linear, _fuse_gelu, _fuse_gates, _fuse_layernorm, _split_to_slices):
        nodes = fusion(nodes)
    nodes = _drop_layout_noops(nodes, shapes, set(graph_outputs))
    nodes = _merge_common_subexpressions(nodes, set(graph_outputs))
    used = {t for node in nodes for _, t in node.inputs} | set(graph_outputs)
    for node in nodes:
        node.in_shapes = [shapes.get(t, ()) for _, t in node.inputs]
        # unused outputs (an LSTM's final states, a Dropout mask) are left out: exporters differ there
        node.out_shapes = [shapes.get(t, ()) for t in node.outputs if t in used]
    for node in folded:  # their readers are gone: the first output is what they compute
        node.in_shapes = [shapes.get(t, ()) for _, t in node.inputs]
        node.out_shapes = [shapes.get(t, ()) for t in node.outputs[:1]]

    cg_nodes: list[CGNode] = []
    producer: dict[str, int] = {}
    for name in graph_inputs:
        producer[name] = len(cg_nodes)
        cg_nodes.append(CGNode("input", "Input", out_shapes=[shapes.get(name, ())], name=name))
    for node in nodes:
        for out in node.outputs:
            producer[out] = len(cg_nodes)
        cg_nodes.append(_to_cg_node(node, batch))
    edges = []
    for node_index, node in enumerate(nodes, start=len(graph_inputs)):
        for _, tensor in node.inputs:
            if tensor in producer:
                edges.append((producer[tensor], node_index))
    for name in graph_outputs:
        if name in producer:  # not when the output was folded: a network computing a constant
            edges.append((producer[name], len(cg_nodes)))
        cg_nodes.append(CGNode("output", "Output", in_shapes=[shapes.get(name, ())], name=name))
    return cg_nodes, edges, [_to_cg_node(node, batch) for node in folded]


# --------------------------------------------------------------------------- folding
def _fold_zero_products(nodes, graph_outputs: list[str]):
    """Constant folding and dead-code elimination, started by products with a constant zero.

    ``x * 0`` does not depend on ``x``, nor does anything computed only from it: those nodes leave
    the graph. A sum reading such a constant keeps its other operands and is bypassed when one is
    left (``x + 0`` is ``x``; a constant that is not exactly zero, as BatchNorm's shift of a zero
    input, is a bias the CG does not show). Other readers lose that edge. Then nodes whose outputs
    nothing reads are dropped. A zero tensor with more than one element is a parameter (a layer
    scale initialised to zero): never folded. ONNX cannot tell a learned scalar from a constant, so a
    scalar parameter exported at exactly zero is folded, and the CG says so. Returns the nodes
    kept, the graph outputs' tensors and the nodes folded.
    """
    constant, rename, kept = set(), {}, []
    for node in nodes:
        node.inputs = [(k, rename.get(t, t)) for k, t in node.inputs]
        data = [t for _, t in node.inputs]
        zero_product = node.op_type == "Mul" and any(
            not w.roots and w.value is not None and not np.any(w.value) for w in node.weights)
        if zero_product or (data and all(t in constant for t in data)):
            constant.update(node.outputs)
            continue
        if constant.intersection(data):
            node.inputs = [(k, t) for k, t in node.inputs if t not in constant]
            if node.op_type in ("Add", "Sum") and len(node.inputs) == 1 and not node.weights:
                rename[node.outputs[0]] = node.inputs[0][1]
                continue
        kept.append(node)
    if not constant:
        return nodes, graph_outputs, []
    graph_outputs = [rename.get(t, t) for t in graph_outputs]
    used = set(graph_outputs)
    live = []
    for node in reversed(kept):
        if used.intersection(node.outputs):
            live.append(node)
            used.update(t for _, t in node.inputs)
    kept_ids = {id(node) for node in live}
    return live[::-1], graph_outputs, [node for node in nodes if id(node) not in kept_ids]


# --------------------------------------------------------------------------- fusion passes
def _consumers(nodes) -> dict[str, list]:
    users = defaultdict(list)
    for node in nodes:
        for _, tensor in node.inputs:
            users[tensor].append(node)
    return users


def _producers(nodes) -> dict[str, "WorkNode"]:
    return {out: node for node in nodes for out in node.outputs}


def _sole_consumer(users, node) -> "WorkNode | None":
    found = users.get(node.outputs[0], [])
    return found[0] if len(found) == 1 else None


def _fold_batchnorm(nodes):
    """Conv -> BatchNorm (the conv's only consumer) becomes one conv with a bias."""
    users, producers, dropped = _consumers(nodes), _producers(nodes), set()
    for bn in nodes:
        if bn.op_type != "BatchNormalization" or len(bn.inputs) != 1:
            continue
        conv = producers.get(bn.inputs[0][1])
        if conv is None or conv.op_type not in _CONV_OPS or _sole_consumer(users, conv) is not bn:
            continue
        conv.extra["folded_bn"] = True
        conv.outputs = bn.outputs[:1]
        dropped.add(id(bn))
    return [n for n in nodes if id(n) not in dropped]


def _fuse_linear(nodes):
    """Gemm / MatMul-with-weight become ``Linear``; a following bias Add is folded in."""
    for node in nodes:
        if node.op_type == "Gemm" and len(node.inputs) == 1 and node.inputs[0][0] == 0 and node.weight(1):
            w = node.weight(1)
            out_in = w.shape if node.attributes.get("transB", 0) else tuple(reversed(w.shape))
            node.op_type, node.extra["weight_shape"] = "Linear", tuple(out_in)
            node.extra["bias"] = node.weight(2) is not None
        elif node.op_type == "MatMul" and len(node.inputs) == 1 and node.inputs[0][0] == 0 and node.weight(1):
            w = node.weight(1)
            if len(w.shape) == 2:
                node.op_type, node.extra["weight_shape"] = "Linear", (w.shape[1], w.shape[0])
                node.extra["bias"] = False
    users, dropped = _consumers(nodes), set()
    for node in nodes:
        if node.op_type != "Linear" or node.extra.get("bias"):
            continue
        add = _sole_consumer(users, node)
        if add is None or add.op_type != "Add" or len(add.inputs) != 1 or len(add.weights) != 1:
            continue
        if math.prod(add.weights[0].shape or (1,)) != node.extra["weight_shape"][0]:
            continue
        node.weights.append(add.weights[0])
        node.extra["bias"] = True
        node.outputs = add.outputs
        dropped.add(id(add))
    return [n for n in nodes if id(n) not in dropped]


def _fuse_gelu(nodes):
    """The erf form 0.5 * x * (1 + erf(x / sqrt 2)) -> one Gelu node reading x (any factor order)."""
    users, producers, dropped = _consumers(nodes), _producers(nodes), set()
    for erf in nodes:
        scale = producers.get(erf.inputs[0][1]) if erf.op_type == "Erf" else None
        if scale is None or scale.op_type not in ("Div", "Mul") or len(scale.inputs) != 1:
            continue
        x = scale.inputs[0][1]
        chain, current, closed = [scale, erf], erf, False
        while (nxt := _sole_consumer(users, current)) is not None and nxt.op_type in ("Add", "Mul", "Div"):
            data = [t for _, t in nxt.inputs]
            if closed:  # only the final 0.5 may follow the product with x
                if len(data) != 1 or _scalar(nxt) != 0.5:
                    break
            elif len(data) == 2 and nxt.op_type == "Mul":
                other = producers.get(next(t for t in data if t != current.outputs[0]))
                half_x = other is not None and other.op_type == "Mul" and [t for _, t in other.inputs] == [x]
                if x not in data and not half_x:
                    break
                if half_x:
                    chain.append(other)
                closed = True
            elif len(data) != 1:
                break
            chain.append(nxt)
            current = nxt
            if closed and _sole_consumer(users, nxt) is None:
                break
        if not closed:
            continue
        gelu = current
        gelu.op_type, gelu.inputs, gelu.weights, gelu.attributes = "Gelu", [(0, x)], [], {}
        dropped.update(id(n) for n in chain if n is not gelu)
    return [n for n in nodes if id(n) not in dropped]


def _scalar(node) -> float | None:
    values = [w.value for w in node.weights if w.value is not None and np.size(w.value) == 1]
    return float(np.asarray(values[0]).reshape(())) if len(values) == 1 else None


# x -> f1 -> ... -> fk -> Mul(x, fk): the gated activations, fused into one node.
_GATES = {("Sigmoid",): "Swish", ("HardSigmoid",): "HardSwish", ("Softplus", "Tanh"): "Mish"}


def _fuse_gates(nodes):
    users, dropped = _consumers(nodes), set()
    for first in nodes:
        if id(first) in dropped or len(first.inputs) != 1:
            continue
        for ops, fused in _GATES.items():
            if first.op_type != ops[0]:
                continue
            x, chain, current = first.inputs[0][1], [first], first
            for op in ops[1:]:
                current = _sole_consumer(users, current)
                if current is None or current.op_type != op:
                    break
                chain.append(current)
            else:
                mul = _sole_consumer(users, current)
                if mul is not None and mul.op_type == "Mul" and sorted(t for _, t in mul.inputs) == sorted(
                    [x, current.outputs[0]]
                ):
                    mul.op_type, mul.inputs, mul.weights, mul.attributes = fused, [(0, x)], [], {}
                    dropped.update(id(n) for n in chain)
    return [n for n in nodes if id(n) not in dropped]


def _fuse_layernorm(nodes):
    """LayerNorm written out (opsets before 17): mean, centre, variance, sqrt, divide, scale, shift."""
    users, dropped = _consumers(nodes), set()

    def only(node, *ops):
        nxt = _sole_consumer(users, node)
        return nxt if nxt is not None and nxt.op_type in ops else None

    for mean in nodes:
        if mean.op_type != "ReduceMean" or len(mean.inputs) != 1:
            continue
        x = mean.inputs[0][1]
        centred = only(mean, "Sub")
        if centred is None or sorted(t for _, t in centred.inputs) != sorted([x, mean.outputs[0]]):
            continue
        branches = {n.op_type: n for n in users.get(centred.outputs[0], [])}
        square, divide = branches.get("Pow"), branches.get("Div")
        if len(branches) != 2 or square is None or divide is None:
            continue
        variance = only(square, "ReduceMean")
        plus_eps = variance and only(variance, "Add")
        root = plus_eps and only(plus_eps, "Sqrt")
        if root is None or only(root, "Div") is not divide:
            continue
        chain, last, weights = [mean, centred, square, variance, plus_eps, root, divide], divide, []
        for op, slot in (("Mul", 1), ("Add", 2)):
            affine = only(last, op)
            if affine is None or len(affine.inputs) != 1 or len(affine.weights) != 1:
                break
            weights.append(replace(affine.weights[0], slot=slot))
            chain.append(affine)
            last = affine
        last.op_type, last.inputs, last.weights, last.attributes = "LayerNormalization", [(0, x)], weights, {}
        dropped.update(id(n) for n in chain if n is not last)
    return [n for n in nodes if id(n) not in dropped]


def _split_to_slices(nodes):
    """Split into k outputs is k Slices (what the dynamo exporter writes for ``unbind``/``chunk``)."""
    result = []
    for node in nodes:
        if node.op_type == "Split" and len([o for o in node.outputs if o]) > 1:
            for part, out in enumerate(node.outputs):
                # ``part`` keeps the slices apart: they read one tensor with equal attributes otherwise
                result.append(replace(node, op_type="Slice", outputs=[out], weights=[], extra={},
                                      attributes={"axis": node.attributes.get("axis", 0), "part": part}))
        else:
            result.append(node)
    return result


_RESHAPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def _drop_layout_noops(nodes, shapes, keep: set[str]):
    """Bypass reshapes and transposes that leave the data as it was; merge chains of reshapes.

    A Transpose that only moves size-1 axes, or a Reshape to the shape it had, is an exporter's
    bookkeeping; so is the difference between Squeeze-then-Reshape and one Reshape.
    """
    rename: dict[str, str] = {}
    users = _consumers(nodes)
    producers = _producers(nodes)
    dropped = set()
    for node in nodes:
        node.inputs = [(k, rename.get(t, t)) for k, t in node.inputs]
        if len(node.inputs) != 1 or len(node.outputs) != 1 or node.outputs[0] in keep:
            continue
        source, target = shapes.get(node.inputs[0][1]), shapes.get(node.outputs[0])
        if node.op_type in _RESHAPES:
            before = producers.get(node.inputs[0][1])
            chained = before is not None and id(before) not in dropped and before.op_type in _RESHAPES and len(
                users.get(before.outputs[0], [])) == 1 and before.outputs[0] not in keep
            if chained:  # fold the earlier reshape into this one
                node.inputs = list(before.inputs)
                dropped.add(id(before))
                source = shapes.get(node.inputs[0][1])
            if source is not None and source == target and 0 not in source:
                rename[node.outputs[0]] = node.inputs[0][1]
                dropped.add(id(node))
        elif node.op_type == "Slice" and source is not None and source == target and 0 not in source:
            steps = node.weight(4)
            if steps is None or (steps.value is not None and all(int(v) == 1 for v in steps.value.ravel())):
                rename[node.outputs[0]] = node.inputs[0][1]  # a full slice: x[:, :C] of a C-channel x
                dropped.add(id(node))
        elif node.op_type == "Transpose" and source and 0 not in source:
            perm = node.attributes.get("perm", list(reversed(range(len(source)))))
            moved = [axis for axis in perm if source[axis] != 1]
            if moved == sorted(moved):
                rename[node.outputs[0]] = node.inputs[0][1]
                dropped.add(id(node))
    return [n for n in nodes if id(n) not in dropped]


def _merge_common_subexpressions(nodes, keep: set[str]):
    """One node for one computation: the same parameter-free op on the same tensors is merged.

    Exporters differ in which duplicates they merge (torch merges two ReLUs of one tensor but not
    two slices, and does it before dropping no-op slices), so the CG merges all of them itself.
    Nodes with learned parameters are never merged: two convs of one tensor are two convs.
    """
    rename: dict[str, str] = {}
    seen: dict[tuple, "WorkNode"] = {}
    result = []
    for node in nodes:
        node.inputs = [(k, rename.get(t, t)) for k, t in node.inputs]
        key = None
        if not any(w.roots for w in node.weights) and not keep.intersection(node.outputs):
            constants = tuple((w.slot, w.shape, _frozen(w.value)) for w in node.weights)
            attrs = tuple(sorted((k, repr(v)) for k, v in node.attributes.items()))
            key = (node.op_type, node.domain, tuple(node.inputs), constants, attrs, len(node.outputs))
        if key is not None and key in seen:
            rename.update(zip(node.outputs, seen[key].outputs))
            continue
        if key is not None:
            seen[key] = node
        result.append(node)
    return result


def _frozen(value):
    return None if value is None else (value.dtype.str, value.shape, value.tobytes())


# --------------------------------------------------------------------------- attributes and costs
def _to_cg_node(node: "WorkNode", batch: int) -> CGNode:
    category = category_of(node.op_type, node.domain)
    attrs: dict = {}
    macs = 0
    out = node.out_shapes[0] if node.out_shapes else ()
    inp = node.in_shapes[0] if node.in_shapes else ()
    if node.op_type in _CONV_OPS:
        category, attrs, macs = _conv(node, inp, out)
    elif node.op_type == "Linear":
        out_f, in_f = node.extra["weight_shape"]
        attrs = {"weight": (out_f, in_f), "bias": int(node.extra["bias"])}
        macs = _numel(out) * in_f
    elif node.op_type == "MatMul" and len(node.in_shapes) == 2:
        macs = _numel(out) * (node.in_shapes[0][-1] if node.in_shapes[0] else 0)
    elif node.op_type in ("LSTM", "GRU", "RNN"):
        attrs, macs = _recurrent(node, inp)
    elif node.op_type in ("MaxPool", "AveragePool", "LpPool"):
        attrs = _window(node, len(inp) - 2)
    elif node.op_type == "Gather" and node.weight(0) is not None:
        category, attrs = "embedding", {"weight": node.weight(0).shape}
    elif node.op_type == "ReduceMean" and _is_global_spatial(node, inp):
        category = "global_avg_pool"
    elif node.op_type in ("BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization"):
        attrs = {"weight": node.weight(1).shape if node.weight(1) else ()}
    elif node.op_type == "Clip":
        attrs = {"bounds": _clip_bounds(node)}
    elif node.op_type == "Resize":
        attrs = {"mode": str(node.attributes.get("mode", b"nearest"), "utf-8")
                 if isinstance(node.attributes.get("mode", b""), bytes) else node.attributes.get("mode", "nearest")}
    if "perm" in node.attributes:
        attrs["perm"] = tuple(node.attributes["perm"])
    if "axis" in node.attributes and node.op_type in ("Concat", "Softmax", "LogSoftmax", "Gather"):
        rank = len(out if node.op_type == "Concat" else inp) or 1
        attrs["axis"] = int(node.attributes["axis"]) % rank  # -1 and 3 are the same axis of a 4-D tensor
    return CGNode(
        category=category,
        op_type=node.op_type if not node.domain else f"{node.domain}::{node.op_type}",
        in_shapes=list(node.in_shapes),
        out_shapes=list(node.out_shapes),
        attrs=attrs,
        macs=int(macs // max(batch, 1)),
        params=_params(node),
        name=node.name,
    )


def _numel(shape) -> int:
    """Elements of a tensor (unknown dims as 1); callers divide by the batch for per-sample counts."""
    return math.prod(max(d, 1) for d in shape) if shape else 0


def _conv(node, inp, out):
    w = node.weight(1)
    weight = w.shape if w else ()
    spatial = max(len(weight) - 2, 1)
    groups = int(node.attributes.get("group", 1))
    c_in = inp[1] if len(inp) > 1 else 0
    attrs = _window(node, spatial, kernel=tuple(weight[2:]))
    attrs.update(groups=groups, weight=tuple(weight), bias=int(node.weight(2) is not None or node.extra.get("folded_bn", False)))
    category = "conv_transpose" if node.op_type == "ConvTranspose" else "conv"
    if category == "conv" and groups > 1:
        category = "depthwise_conv" if groups == c_in and weight and weight[1] == 1 else "grouped_conv"
    kernel_volume = math.prod(weight[2:]) if weight else 0
    if node.op_type == "Conv":
        macs = _numel(out) * (weight[1] if weight else 0) * kernel_volume
    else:  # each input element is scattered through C_out/groups kernels
        macs = _numel(inp) * (weight[1] if weight else 0) * kernel_volume
    return category, attrs, macs


def _window(node, spatial: int, kernel: tuple = ()) -> dict:
    """Kernel, stride, dilation and padding (begin + end per axis), defaults filled in."""
    spatial = max(spatial, 1)
    kernel = tuple(node.attributes.get("kernel_shape", kernel)) or (1,) * spatial
    pads = list(node.attributes.get("pads", [0] * 2 * spatial))
    auto_pad = node.attributes.get("auto_pad", b"NOTSET")
    if auto_pad not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        pads = [k - 1 for k in kernel] * 2  # SAME_UPPER / SAME_LOWER for stride 1
    return {
        "kernel": tuple(kernel),
        "stride": tuple(node.attributes.get("strides", (1,) * spatial)),
        "dilation": tuple(node.attributes.get("dilations", (1,) * spatial)),
        "pads": tuple(pads[i] + pads[i + spatial] for i in range(spatial)),
    }


def _recurrent(node, inp):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[node.op_type]
    hidden = int(node.attributes.get("hidden_size", 0))
    w = node.weight(1)
    directions, _, features = w.shape if w and len(w.shape) == 3 else (1, 0, inp[-1] if inp else 0)
    seq = inp[0] if node.attributes.get("layout", 0) == 0 else (inp[1] if len(inp) > 1 else 1)
    batch = inp[1] if node.attributes.get("layout", 0) == 0 and len(inp) > 1 else (inp[0] if inp else 1)
    macs = max(seq, 1) * max(batch, 1) * directions * gates * hidden * (features + hidden)
    return {"hidden": hidden, "directions": directions, "weight": w.shape if w else ()}, macs


def _is_global_spatial(node, inp) -> bool:
    """A mean over both spatial axes of an NCHW tensor, judged by shapes (the axes may be external data)."""
    out = node.out_shapes[0] if node.out_shapes else ()
    if len(inp) != 4 or 0 in inp or (inp[2], inp[3]) == (1, 1):
        return False
    return tuple(out) in ((inp[0], inp[1], 1, 1), (inp[0], inp[1]))


def _clip_bounds(node) -> tuple:
    low = node.attributes.get("min")
    high = node.attributes.get("max")
    for slot, current in ((1, low), (2, high)):
        w = node.weight(slot)
        if current is None and w is not None and w.value is not None:
            if slot == 1:
                low = float(w.value)
            else:
                high = float(w.value)
    return (low, high)


def _params(node) -> int:
    """Learned parameters this node reads; BN folding adds a bias.

    A tensor read by several nodes counts once per node: exporters merge equal-valued tensors
    (all-zero biases of a freshly initialised net become one), so sharing inside a file does not
    prove weight sharing in the model.
    """
    skip = _SHAPE_SLOTS.get(node.op_type, set())
    roots = set()
    for weight in node.weights:
        if weight.slot not in skip:
            roots |= weight.roots
    total = sum(size for _, size in roots)
    if node.extra.get("folded_bn") and node.weight(2) is None:
        w = node.weight(1)
        out_channels = w.shape[0] if node.op_type == "Conv" else w.shape[1] * node.attributes.get("group", 1)
        total += int(out_channels)
    return total
