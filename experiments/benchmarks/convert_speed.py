"""Benchmark: ONNX -> CG conversion time and memory (issue targets: <= 2x load + shape inference;
< 200 MB peak for a file whose external weight data is absent).

    python experiments/benchmarks/convert_speed.py [--repeats 5] [--out experiments/results/convert_speed.md]

Times are the best of ``--repeats`` runs in one process (1 torch thread, files on local disk).
Memory is the peak RSS of a fresh process that imports the parser and converts a ~5 GB ViT whose
weights are declared as external data that is not there.
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.benchmarks.timing import best_of  # noqa: E402

from bench_data.spaces.nb201 import NB201Space  # noqa: E402
from graph_encoders import export_torch, onnx_to_cg  # noqa: E402
from tests.zoo import ViT, build, resnet50  # noqa: E402

NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def baseline(path: Path) -> None:
    onnx.shape_inference.infer_shapes(onnx.load(path))


def big_vit_without_weights(folder: Path, depth: int = 36) -> tuple[Path, float]:
    """A ViT-g-sized graph (dim 2048) exported on the meta device; weights declared external, absent."""
    import onnx_ir as ir

    with torch.device("meta"):
        model = ViT(image=224, patch=16, dim=2048, depth=depth, heads=16, num_classes=1000).eval()
        example = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, verbose=False, optimize=False)
    offset = 0
    for value in program.model.graph.initializers.values():
        length = int(np.prod(value.shape.numpy())) * value.dtype.itemsize
        value.const_value = ir.ExternalTensor(
            "vit_huge.onnx.data", offset, length, value.dtype, shape=value.shape, name=value.name, base_dir=str(folder)
        )
        offset += length
    path = folder / "vit_huge.onnx"
    onnx.save(ir.serde.serialize_model(program.model), path)
    return path, offset / 1e9


PEAK_SCRIPT = """
import sys
from graph_encoders import onnx_to_cg
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
before = hwm()
cg = onnx_to_cg(sys.argv[1])
after = hwm()
print(before // 1024, after // 1024, cg.num_nodes, cg.params)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "convert_speed.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = {
            "ResNet-50 (legacy export, weights embedded)": export_torch(*_pair(resnet50(), (1, 3, 224, 224))),
            "NAS-Bench-201 network (legacy export)": export_torch(NB201Space().build(NB201_ARCH).eval(), torch.zeros(1, 3, 32, 32)),
            "ViT (zoo, legacy training-mode export)": export_torch(*build("vit"), training=True),
        }
        for name, proto in models.items():
            path = folder / "model.onnx"
            onnx.save(proto, path)
            onnx_to_cg(path)  # warm caches (imports, reference evaluator)
            base = best_of(args.repeats, lambda: baseline(path))
            ours = best_of(args.repeats, lambda: onnx_to_cg(path))
            cg = onnx_to_cg(path)
            rows.append((name, path.stat().st_size / 1e6, cg.num_nodes, base * 1e3, ours * 1e3, ours / base))
            print(f"{name}: load+infer {base*1e3:.1f} ms, convert {ours*1e3:.1f} ms, ratio {ours/base:.2f}", flush=True)

        big, gigabytes = big_vit_without_weights(folder)
        peak = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(big)], capture_output=True, text=True, cwd=ROOT, check=True)
        before, after, nodes, params = map(int, peak.stdout.split())
        print(f"ViT {gigabytes:.2f} GB weights absent: peak RSS {after} MB (imports {before} MB), {nodes} nodes, {params/1e9:.2f} B params")

    lines = [
        "# Conversion speed and memory",
        "",
        f"Command: `python experiments/benchmarks/convert_speed.py --repeats {args.repeats}`  ",
        f"Machine: {platform.processor() or platform.machine()}, torch threads 1, python {platform.python_version()}, onnx {onnx.__version__}",
        "",
        "| model | file MB | CG nodes | onnx.load + infer_shapes (ms) | convert (ms) | ratio (target <= 2) |",
        "|---|---|---|---|---|---|",
        *(f"| {n} | {mb:.1f} | {k} | {b:.1f} | {o:.1f} | {r:.2f} |" for n, mb, k, b, o, r in rows),
        "",
        f"Peak memory converting a ViT (dim 2048, depth 36, {gigabytes:.2f} GB of fp32 weights declared as external data "
        f"that is absent): **{after} MB** peak RSS of the whole process ({before} MB after imports; target < 200 MB). "
        f"The CG has {nodes} nodes and {params/1e9:.2f} B parameters.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


def _pair(model, shape):
    torch.manual_seed(0)
    return model.eval(), torch.randn(*shape)


if __name__ == "__main__":
    main()
