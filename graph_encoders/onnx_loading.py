"""Reading an ONNX model from a path, bytes, a ``ModelProto`` or a torch module, without weight bytes.

Only shapes are needed to build a CG, so external weight data is never read (a 5 GB model parses in
little memory) and a file whose ``.onnx.data`` is missing still parses. Every failure is a
:class:`ModelLoadError` whose message names the file and the problem in one line.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError


SHAPES_INFERRED = "cgpredict.shapes_inferred"  # marks a model whose shapes the loader already inferred


class ModelLoadError(ValueError):
    """The input is not a usable ONNX model; ``str(err)`` is ``"<file>: <problem>"``."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


def describe(source: Any) -> str:
    """A short human name for a model source, used in messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, onnx.ModelProto):
        return source.graph.name or "<ModelProto>"
    return f"<{type(source).__name__}>"


def load_model(source: Any, example_input: Any = None) -> onnx.ModelProto:
    """Load ``source`` as a ``ModelProto`` (weights' bytes not loaded) and check it is a real model."""
    name = describe(source)
    if isinstance(source, onnx.ModelProto):
        model = source
    elif isinstance(source, (bytes, bytearray)):
        model = _parse_bytes(bytes(source), name)
    elif isinstance(source, (str, os.PathLike)):
        model = _load_path(Path(source))
    elif _is_torch_module(source):
        if example_input is None:
            raise ModelLoadError(name, "a torch module needs an example input to be exported")
        model = export_torch(source, example_input)
    else:
        raise ModelLoadError(name, f"cannot read a model from a {type(source).__name__}")
    if not model.graph.node:
        raise ModelLoadError(name, "the model has no nodes")
    return model


def _load_path(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise ModelLoadError(str(path), "no such file")
    if path.is_dir():
        raise ModelLoadError(str(path), "is a directory, not an ONNX file")
    if path.stat().st_size == 0:
        raise ModelLoadError(str(path), "empty file")
    return _parse_bytes(path.read_bytes(), str(path))


def _parse_bytes(data: bytes, name: str) -> onnx.ModelProto:
    """Parse a serialised model, with shapes inferred when possible.

    Inference runs on the bytes as they are (ONNX's C++ side parses them itself), which saves the
    serialise-and-parse round trip that ``infer_shapes(onnx.load(path))`` pays.
    """
    if not data:
        raise ModelLoadError(name, "empty input")
    try:
        model = onnx.shape_inference.infer_shapes(data, data_prop=True)
        if model.ir_version > 0 and model.HasField("graph"):
            model.metadata_props.add(key=SHAPES_INFERRED, value="1")
            return model
    except Exception:  # noqa: BLE001 - not parseable, or inference failed: find out which below
        pass
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as err:
        raise ModelLoadError(name, f"not a valid ONNX file (truncated or corrupt protobuf: {err})") from None
    # Random bytes or text can decode as a protobuf with only unknown fields: a real model has an
    # IR version and a graph.
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ModelLoadError(name, "not an ONNX model (no IR version or no graph)")
    return model


def _is_torch_module(obj: Any) -> bool:
    try:
        import torch

        return isinstance(obj, torch.nn.Module)
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def export_torch(module, example_input, *, training: bool = False, opset: int = 17) -> onnx.ModelProto:
    """Export a torch module with the legacy TorchScript exporter (fast, ~0.3 s for an NB-201 net).

    ``training=False`` exports in eval mode (BatchNorm folded into convs); ``True`` keeps every
    BatchNorm. Either way the CG is the same: the parser folds BN itself.
    """
    import warnings

    import torch

    args = example_input if isinstance(example_input, tuple) else (example_input,)
    mode = torch.onnx.TrainingMode.PRESERVE if training else torch.onnx.TrainingMode.EVAL
    buffer = io.BytesIO()
    was_training = module.training
    module.train(training)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, args, buffer, dynamo=False, opset_version=opset, training=mode,
                do_constant_folding=not training,
            )
    finally:
        module.train(was_training)
    return onnx.load_from_string(buffer.getvalue())
