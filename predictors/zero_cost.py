"""A zero-cost proxy computed from the ONNX file itself: NASWOT (Mellor et al., ICML 2021).

NASWOT scores an untrained network by how differently its ReLUs switch on a minibatch: each input
gets a binary code (which units are active), and the score is ``log |K|`` with
``K[i, j] = number of units on which inputs i and j agree``. It needs one forward pass, which we run
with onnxruntime, so any exported CNN can be scored.

What runs is the network as it is at initialisation, not as exported:
- every Conv / Gemm / MatMul weight is redrawn (He normal, seeded) and their biases are zero, so a
  trained file and a weight-less one (external data absent) score alike wherever those are all the
  parameters (CNNs); other constants (a ViT's position embedding, say) are used as stored, and
  as zeros when the file lacks them;
- BatchNorm runs on batch statistics, as a freshly built network does in training mode. Eval-mode
  exports fold BatchNorm into the conv before it, so every Conv with a bias is normalised too
  (also one that had a plain bias: an approximation);
- no image data ships with the package, so the minibatch is synthetic: smooth noise (amplitude
  falling as 1 / frequency^2) with correlated colour channels. Over 200 NB-201 cells, white noise
  keeps SRCC 0.53 with NASWOT on CIFAR-10 images, these images 0.76
  (``experiments/results/README.md``, session 11).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Activations whose input sign is the unit's on/off code. Exporters write ReLU6 as Clip, GELU as
# x * (1 + Erf(x / sqrt 2)) / 2 before opset 20, SiLU as x * Sigmoid(x), and old HardSwish as
# x * HardSigmoid(x); Mish as x * Tanh(Softplus(x)).
ACTIVATIONS = frozenset({"Relu", "LeakyRelu", "PRelu", "Clip", "HardSwish", "HardSigmoid", "Gelu", "Erf",
                         "Sigmoid", "Elu", "Selu", "Celu", "Softplus", "Mish"})
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
    one input size. ``-inf`` when the kernel is singular (two images got the same codes everywhere:
    the network cannot tell them apart, e.g. its output ignores the input).

    An export that cannot run a batch (dynamo's default fixes the batch size to 1; so does a class
    token expanded to batch 1) runs image by image, normalised by each image's own statistics; a
    :class:`ProxyWarning` says so, since such scores are comparable only with others computed that way."""
    try:
        return _naswot(_load(model), batch, seed)
    except ProxyError:
        raise
    except Exception as error:  # onnx / onnxruntime / numpy failures on an unusual graph
        raise ProxyError(f"could not score it: {_first_line(error)}") from None


def naswot_scores(models: Iterable[onnx.ModelProto | str | Path], **kwargs) -> tuple[np.ndarray, dict[int, str]]:
    """:func:`naswot` of every model: the scores (NaN where it could not run) and, by position, why
    not or how it ran (a :class:`ProxyWarning`)."""
    scores, notes = [], {}
    for i, model in enumerate(models):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ProxyWarning)
            try:
                scores.append(naswot(model, **kwargs))
            except ProxyError as error:
                scores.append(float("nan"))
                notes[i] = f"NASWOT: {error}"
        for warning in caught:
            if issubclass(warning.category, ProxyWarning):
                notes[i] = f"NASWOT {warning.message}"
    return np.array(scores, dtype=float), notes


def rank_ensemble(scores, proxy, constant=None) -> np.ndarray:
    """Zero-shot ensemble of a predictor and the proxy over one set of candidates: the mean of the two
    percentile ranks among them (their scales have nothing in common, and no label is there to fit
    weights). A network the proxy could not score (NaN) keeps the predictor's rank alone; one whose
    output ignores its input (``constant``) ranks last, at 0. The result ranks; it is not an accuracy."""
    from scipy.stats import rankdata

    scores, proxy = np.asarray(scores, float), np.asarray(proxy, float)
    by_model = rankdata(scores) / len(scores)
    scored = ~np.isnan(proxy)
    by_proxy = np.zeros(len(proxy))
    if scored.any():
        by_proxy[scored] = rankdata(proxy[scored]) / scored.sum()
    combined = np.where(scored, (by_model + by_proxy) / 2, by_model)
    if constant is not None:
        combined = np.where(np.asarray(constant, bool), 0.0, combined)
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


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _load(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    """A path's model, with its external data where the data file is there (constants other than the
    redrawn weights are used as stored), without where it is not (they are zeros)."""
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        return onnx.load(str(model))
    except (FileNotFoundError, OSError, onnx.checker.ValidationError):
        return onnx.load(str(model), load_external_data=False)


def _naswot(model: onnx.ModelProto, batch: int, seed: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 4  # a failed batched run is handled here, not logged
    runnable, codes, input_name, shape = _initialised_copy(model, seed)
    session = ort.InferenceSession(runnable.SerializeToString(), options, providers=["CPUExecutionProvider"])
    images = synthetic_images([batch, *shape[1:]], seed)
    try:
        runs = [session.run(codes, {input_name: images})]
    except Exception as batched_error:  # onnxruntime raises its own exception types
        if batch == 1:
            raise ProxyError(f"onnxruntime could not run it: {_first_line(batched_error)}") from None
        try:
            runs = [session.run(codes, {input_name: image[None]}) for image in images]
        except Exception as error:
            raise ProxyError(f"onnxruntime could not run it: {_first_line(error)}") from None
        warnings.warn(f"scored image by image (a batch of {batch} failed: {_first_line(batched_error)[:120]})",
                      ProxyWarning, stacklevel=3)
    per_run = batch // len(runs)
    agreement, units = np.zeros((batch, batch)), 0
    for layer in range(len(codes)):
        if any(run[layer].ndim == 0 or run[layer].shape[0] != per_run for run in runs):
            continue  # not laid out batch-first: no per-image code to read
        code = np.concatenate([run[layer].reshape(per_run, -1) for run in runs]).astype(np.float32)
        on = code.sum(1, dtype=np.float64)
        # agreements = both on + both off = 2 c c^T - on_i - on_j + units
        agreement += 2.0 * (code @ code.T).astype(np.float64) - on[:, None] - on[None, :] + code.shape[1]
        units += code.shape[1]
    if units == 0:
        raise ProxyError("none of its activations is laid out batch-first")
    sign, logdet = np.linalg.slogdet(agreement)
    return float(logdet) if sign > 0 else float("-inf")


def _initialised_copy(model: onnx.ModelProto, seed: int):
    """The graph rewritten to run at initialisation, any batch size: (model, code tensor names,
    input name, input shape)."""
    graph = model.graph
    initializer_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializer_names]
    if len(inputs) != 1:
        raise ProxyError(f"needs one image input, the graph has {len(inputs)}")
    image = inputs[0]
    shape = [d.dim_value if d.HasField("dim_value") else 0 for d in image.type.tensor_type.shape.dim]
    if len(shape) != 4 or image.type.tensor_type.elem_type != TensorProto.FLOAT or 0 in shape[1:]:
        raise ProxyError(f"needs one float image input (N, C, H, W), got {image.name} of shape {shape}")

    roles = _roles(graph)
    # weights drawn in the order the graph uses them, not the order the file lists them: exports of
    # one network that list them differently (eval and training mode) draw the same weights
    rng, dims = np.random.default_rng(seed), {t.name: tuple(t.dims) for t in graph.initializer}
    drawn = {name: rng.standard_normal(dims[name]) * np.sqrt(2.0 / max(role, 1))
             for name, role in roles.items() if isinstance(role, int)}
    initializers = [_initial_value(t, roles.get(t.name), drawn.get(t.name)) for t in graph.initializer]
    # ReduceMean takes its axes as an attribute up to opset 17 and as an input from opset 18.
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    constants = {"naswot__eps": np.array(_EPS, np.float32), "naswot__zero": np.array(0.0, np.float32),
                 "naswot__flat": np.array([0, 0, -1], np.int64), "naswot__axes": np.array([0, 2], np.int64)}
    initializers += [numpy_helper.from_array(value, name) for name, value in constants.items()]

    from_image, nodes, codes = {image.name}, [], []
    for node in graph.node:
        reads_image = any(name in from_image for name in node.input)
        if reads_image:
            from_image.update(node.output)
        if node.op_type in ACTIVATIONS and node.input[0] in from_image and node.input[0] != image.name \
                and node.input[0] not in codes:
            codes.append(node.input[0])
        if node.op_type == "BatchNormalization":
            nodes += _batch_statistics(node.input[0], node.output[0], opset >= 18)
        elif node.op_type == "Conv" and len(node.input) > 2 and node.input[2]:  # a folded BatchNorm
            conv = onnx.NodeProto()
            conv.CopyFrom(node)
            conv.output[0] = f"{node.output[0]}__conv"
            nodes += [conv, *_batch_statistics(conv.output[0], node.output[0], opset >= 18)]
        else:
            nodes.append(node)
    if not codes:
        raise ProxyError("has no ReLU-like activation on the image's path to read codes from")
    # the graph returns the codes themselves (booleans: a quarter of the activations' memory)
    nodes += [helper.make_node("Greater", [name, "naswot__zero"], [f"{name}__on"]) for name in codes]
    codes = [f"{name}__on" for name in codes]
    outputs = [helper.make_tensor_value_info(name, TensorProto.BOOL, None) for name in codes]
    batch_free = helper.make_tensor_value_info(image.name, TensorProto.FLOAT, ["batch", *shape[1:]])
    # value_info is dropped: it records the exported batch size.
    rewritten = helper.make_graph(nodes, graph.name, [batch_free], outputs, initializers)
    runnable = helper.make_model(rewritten, opset_imports=list(model.opset_import), functions=list(model.functions))
    runnable.ir_version = model.ir_version
    return runnable, codes, image.name, shape


def _roles(graph) -> dict[str, int | str]:
    """Initializers that initialisation sets: a Conv / Gemm / MatMul weight maps to its fan-in, a
    normalisation's scale to ``"scale"``, a bias or shift (a MatMul's included) to ``"bias"``."""
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    matmul_outputs = {node.output[0] for node in graph.node if node.op_type == "MatMul"}
    roles: dict[str, int | str] = {}
    for node in graph.node:
        if (node.op_type in _WEIGHTED or node.op_type in _NORMALISATIONS) and len(node.input) > 2:
            roles[node.input[2]] = "bias"
        if node.op_type == "Add" and any(name in matmul_outputs for name in node.input):
            roles.update({name: "bias" for name in node.input if name in shapes})
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


def _initial_value(tensor: TensorProto, role: int | str | None, weight: np.ndarray | None) -> TensorProto:
    """A weight replaced by its new draw, a scale set to one, a bias to zero; any other constant kept,
    or zero where its bytes are not in the file (the parser never needs them)."""
    shape = tuple(tensor.dims)
    if tensor.data_type != TensorProto.FLOAT:
        if tensor.data_location == TensorProto.EXTERNAL:
            raise ProxyError(f"needs the data of its constant {tensor.name} (kept in an external file that is absent)")
        return tensor
    if weight is not None:
        value = weight
    elif role == "scale":
        value = np.ones(shape)
    elif role == "bias" or tensor.data_location == TensorProto.EXTERNAL:
        value = np.zeros(shape)
    else:
        return tensor
    return numpy_helper.from_array(value.astype(np.float32), tensor.name)


def _batch_statistics(x: str, out: str, axes_as_input: bool) -> list[onnx.NodeProto]:
    """``out = (x - mean) / sqrt(var + eps)`` per channel (axis 1) over the batch and every other axis,
    for a tensor of any rank >= 2: a BatchNorm at initialisation (scale 1, shift 0) in training mode."""
    flat, mean, centred, square, variance, shifted, std, scaled, shape = (
        f"{out}__{s}" for s in ("flat", "mean", "c", "sq", "var", "ve", "std", "scaled", "shape"))

    def reduce_mean(source: str, target: str) -> onnx.NodeProto:
        if axes_as_input:
            return helper.make_node("ReduceMean", [source, "naswot__axes"], [target], keepdims=1)
        return helper.make_node("ReduceMean", [source], [target], axes=[0, 2], keepdims=1)

    return [
        helper.make_node("Reshape", [x, "naswot__flat"], [flat]),  # (N, C, everything else)
        reduce_mean(flat, mean),
        helper.make_node("Sub", [flat, mean], [centred]),
        helper.make_node("Mul", [centred, centred], [square]),
        reduce_mean(square, variance),
        helper.make_node("Add", [variance, "naswot__eps"], [shifted]),
        helper.make_node("Sqrt", [shifted], [std]),
        helper.make_node("Div", [centred, std], [scaled]),
        helper.make_node("Shape", [x], [shape]),
        helper.make_node("Reshape", [scaled, shape], [out]),
    ]
