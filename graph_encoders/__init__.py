"""ONNX -> unified computation graph (CG) -> GNN encoders.

``onnx_to_cg(path_or_bytes_or_model)`` is the entry point; :mod:`graph_encoders.features` defines
the node features; :mod:`graph_encoders.vocabulary` the operator categories.
"""
from .cg import CGNode, ComputationGraph
from .onnx_loading import ModelLoadError, export_torch
from .onnx_parser import onnx_to_cg

__all__ = ["CGNode", "ComputationGraph", "ModelLoadError", "export_torch", "onnx_to_cg"]
