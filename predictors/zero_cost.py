"""A zero-cost proxy computed from the ONNX file itself: NASWOT (Mellor et al., ICML 2021).

NASWOT scores an untrained network by how differently its ReLUs switch on a minibatch: each input
gets a binary code (which units are active), and the score is ``log |K|`` with
``K[i, j] = number of units on which inputs i and j agree``. It needs one forward pass, which we run
with onnxruntime, so any exported CNN can be scored; the weights in the file are never read.

What runs is the network as it is at initialisation, not as exported:
- every Conv / Gemm / MatMul weight is redrawn (He normal, seeded): a trained file and a
  weight-less one (external data absent) score alike;
- BatchNorm runs on batch statistics, as a freshly built network does in training mode. Eval-mode
  exports fold BatchNorm into the conv before it, so a Conv with a bias is normalised too;
- no image data ships with the package, so the minibatch is synthetic: smooth noise (amplitude
  falling as 1 / frequency^2) with correlated colour channels. White noise keeps little of the
  real-data score (SRCC 0.51 with NASWOT on CIFAR-10 over 200 NB-201 cells); these images keep
  0.77 (``experiments/zero_cost_ensemble.py``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Activations whose input sign is the unit's on/off code. Exporters write ReLU6 as Clip, GELU as
# x * (1 + Erf(x / sqrt 2)) / 2 before opset 20, and SiLU as x * Sigmoid(x).
ACTIVATIONS = frozenset({"Relu", "LeakyRelu", "PRelu", "Clip", "HardSwish", "Gelu", "Erf", "Sigmoid"})
_WEIGHTED = frozenset({"Conv", "ConvTranspose", "Gemm"})
_NORMALISATIONS = frozenset({"LayerNormalization", "InstanceNormalization", "GroupNormalization"})
_EPS = 1e-5


class ProxyWarning(UserWarning):
    """The score was computed in a way that makes it comparable with fewer networks."""


class ProxyError(ValueError):
    """The network cannot be scored (no single image input, no activations, or it does not run)."""


def naswot(model: onnx.ModelProto | str | Path, batch: int = 32, seed: int = 0) -> float:
    """NASWOT score of ``model`` (a ``ModelProto`` or the path of an ONNX file) at a fresh
    initialisation, on ``batch`` synthetic images. Higher is better; comparable between networks of
    one input size.

    Exports that fix the batch size to 1 (dynamo's default, a class token expanded to batch 1) run
    image by image, normalised by each image's own statistics; a :class:`ProxyWarning` says so,
    since such scores are comparable only with others computed that way."""
    import onnxruntime as ort

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    images = None
    for run_batch in (batch, 1):
        runnable, codes, input_name, shape = _initialised_copy(model, run_batch, seed)
        if images is None:
            images = synthetic_images([batch, *shape[1:]], seed)
        try:
            session = ort.InferenceSession(runnable.SerializeToString(), options, providers=["CPUExecutionProvider"])
            runs = [session.run(codes, {input_name: chunk}) for chunk in np.split(images, batch // run_batch)]
        except Exception as error:  # onnxruntime raises its own exception types
            if run_batch == 1:
                raise ProxyError(f"onnxruntime could not run it: {str(error).splitlines()[0]}") from None
            continue
        if run_batch == 1:
            warnings.warn("scored image by image: the export fixes the batch size to 1", ProxyWarning, stacklevel=2)
        break
    kernel = np.zeros((batch, batch))
    for layer in range(len(codes)):
        code = np.concatenate([run[layer].reshape(run_batch, -1) for run in runs]).astype(np.float64)
        kernel += code @ code.T + (1 - code) @ (1 - code).T
    return float(np.linalg.slogdet(kernel)[1])


def rank_ensemble(scores, proxy, constant=None) -> np.ndarray:
    """Zero-shot ensemble of a predictor and the proxy over one set of candidates: the mean of the two
    percentile ranks among them (their scales have nothing in common, and no label is there to fit
    weights). A network the proxy could not score (NaN) keeps the predictor's rank alone; one whose
    output ignores its input (``constant``) ranks last. The result ranks; it is not an accuracy."""
    from scipy.stats import rankdata

    scores, proxy = np.asarray(scores, float), np.asarray(proxy, float)
    if len(scores) == 0:
        return scores
    by_model = rankdata(scores) / len(scores)
    scored = ~np.isnan(proxy)
    by_proxy = np.full(len(proxy), np.nan)
    by_proxy[scored] = rankdata(proxy[scored]) / max(scored.sum(), 1)
    combined = np.where(scored, (by_model + by_proxy) / 2, by_model)
    if constant is not None:
        combined = np.where(np.asarray(constant, bool), -1.0, combined)
    return combined


def synthetic_images(shape, seed: int, smoothness: float = 2.0, colour_noise: float = 0.3) -> np.ndarray:
    """``shape`` = (N, C, H, W) images of noise whose amplitude falls as 1 / frequency^smoothness,
    channels sharing one grey image plus ``colour_noise`` of their own; each image standardised."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape)
    noise = noise[:, :1] + colour_noise * noise
    height, width = shape[2], shape[3]
    frequency = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :])
    frequency[0, 0] = 1.0 / max(height, width)
    images = np.fft.irfft2(np.fft.rfft2(noise) / frequency ** smoothness, s=(height, width))
    images -= images.mean(axis=(1, 2, 3), keepdims=True)
    images /= images.std(axis=(1, 2, 3), keepdims=True)
    return images.astype(np.float32)


def _initialised_copy(model: onnx.ModelProto, batch: int, seed: int):
    """The graph rewritten to run at initialisation: (model, code tensor names, input name, input shape)."""
    graph = model.graph
    initializer_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializer_names]
    if len(inputs) != 1:
        raise ProxyError(f"needs one image input, the graph has {len(inputs)}")
    shape = [d.dim_value if d.HasField("dim_value") else 0 for d in inputs[0].type.tensor_type.shape.dim]
    if len(shape) != 4 or inputs[0].type.tensor_type.elem_type != TensorProto.FLOAT or 0 in shape[1:]:
        raise ProxyError(f"needs one float image input (N, C, H, W), got {inputs[0].name} of shape {shape}")
    shape[0] = batch

    roles = _roles(graph)
    rng = np.random.default_rng(seed)
    initializers = [_initial_value(t, roles.get(t.name), rng) for t in graph.initializer]
    # ReduceMean takes its axes as an attribute up to opset 17 and as an input from opset 18.
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    axes_as_input = opset >= 18
    if axes_as_input:
        initializers.append(numpy_helper.from_array(np.array([0, 2, 3], np.int64), "naswot__axes"))
    nodes, codes = [], []
    for node in graph.node:
        if node.op_type in ACTIVATIONS and node.input[0] != inputs[0].name and node.input[0] not in codes:
            codes.append(node.input[0])
        if node.op_type == "BatchNormalization":
            nodes += _batch_statistics(node.input[0], node.output[0], axes_as_input)
        elif node.op_type == "Conv" and len(node.input) > 2 and node.input[2]:  # a folded BatchNorm
            raw = f"{node.output[0]}__conv"
            nodes.append(helper.make_node("Conv", list(node.input), [raw], name=node.name,
                                          **{a.name: helper.get_attribute_value(a) for a in node.attribute}))
            nodes += _batch_statistics(raw, node.output[0], axes_as_input)
        else:
            nodes.append(node)
    if not codes:
        raise ProxyError("has no ReLU-like activation to read codes from")
    initializers.append(numpy_helper.from_array(np.array(_EPS, np.float32), "naswot__eps"))
    initializers.append(numpy_helper.from_array(np.array(0.0, np.float32), "naswot__zero"))
    # the graph returns the codes themselves (booleans: a quarter of the activations' memory)
    nodes += [helper.make_node("Greater", [name, "naswot__zero"], [f"{name}__on"]) for name in codes]
    codes = [f"{name}__on" for name in codes]
    outputs = [helper.make_tensor_value_info(name, TensorProto.BOOL, None) for name in codes]
    image = helper.make_tensor_value_info(inputs[0].name, TensorProto.FLOAT, shape)
    # value_info is dropped: it records the exported batch size.
    rewritten = helper.make_graph(nodes, graph.name, [image], outputs, initializers)
    runnable = helper.make_model(rewritten, opset_imports=list(model.opset_import))
    runnable.ir_version = model.ir_version
    return runnable, codes, inputs[0].name, shape


def _roles(graph) -> dict[str, int | str]:
    """Initializers that initialisation sets: a Conv / Gemm / MatMul weight maps to its fan-in, a
    normalisation's scale to ``"scale"``, a bias or shift to ``"bias"``."""
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    roles: dict[str, int | str] = {}
    for node in graph.node:
        if (node.op_type in _WEIGHTED or node.op_type in _NORMALISATIONS) and len(node.input) > 2:
            roles[node.input[2]] = "bias"
        if len(node.input) < 2 or node.input[1] not in shapes:
            continue
        dims = shapes[node.input[1]]
        if node.op_type in ("Conv", "ConvTranspose"):
            roles[node.input[1]] = int(np.prod(dims[1:]))
        elif node.op_type == "Gemm":
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            roles[node.input[1]] = dims[-1] if trans_b else dims[0]
        elif node.op_type == "MatMul":
            roles[node.input[1]] = dims[-2] if len(dims) > 1 else dims[0]
        elif node.op_type in _NORMALISATIONS:
            roles[node.input[1]] = "scale"
    return roles


def _initial_value(tensor: TensorProto, role: int | str | None, rng: np.random.Generator) -> TensorProto:
    """A weight redrawn, a scale set to one, a bias to zero; any other float constant kept, or zero
    where its bytes are not in the file (the parser never needs them)."""
    if tensor.data_type != TensorProto.FLOAT:
        return tensor
    shape = tuple(tensor.dims)
    if isinstance(role, int):
        value = rng.standard_normal(shape) * np.sqrt(2.0 / max(role, 1))
    elif role == "scale":
        value = np.ones(shape)
    elif role == "bias" or tensor.data_location == TensorProto.EXTERNAL:
        value = np.zeros(shape)
    else:
        return tensor
    return numpy_helper.from_array(value.astype(np.float32), tensor.name)


def _batch_statistics(x: str, out: str, axes_as_input: bool) -> list[onnx.NodeProto]:
    """``out = (x - mean) / sqrt(var + eps)`` over the batch and spatial axes: a BatchNorm at
    initialisation (scale 1, shift 0) in training mode."""
    mean, centred, square, variance, shifted, std = (f"{out}__{s}" for s in ("mean", "c", "sq", "var", "ve", "std"))

    def reduce_mean(source: str, target: str) -> onnx.NodeProto:
        if axes_as_input:
            return helper.make_node("ReduceMean", [source, "naswot__axes"], [target], keepdims=1)
        return helper.make_node("ReduceMean", [source], [target], axes=[0, 2, 3], keepdims=1)

    return [
        reduce_mean(x, mean),
        helper.make_node("Sub", [x, mean], [centred]),
        helper.make_node("Mul", [centred, centred], [square]),
        reduce_mean(square, variance),
        helper.make_node("Add", [variance, "naswot__eps"], [shifted]),
        helper.make_node("Sqrt", [shifted], [std]),
        helper.make_node("Div", [centred, std], [out]),
    ]
