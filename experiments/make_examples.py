"""Regenerate the example ONNX files shipped in predictors/examples/ (seeded, legacy exporter).

    python experiments/make_examples.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import onnx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graph_encoders import export_torch  # noqa: E402
from tests.zoo import build  # noqa: E402

EXAMPLES = {"mobilenetv3_cifar.onnx": "mobilenetv3"}


def main() -> None:
    torch.set_num_threads(1)
    out = ROOT / "predictors" / "examples"
    out.mkdir(exist_ok=True)
    for filename, name in EXAMPLES.items():
        model, example = build(name, seed=0)
        onnx.save(export_torch(model, example), out / filename)
        print(f"wrote {out / filename}")


if __name__ == "__main__":
    main()
