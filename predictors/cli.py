"""The ``predict`` command.

    predict convert MODEL.onnx [MODEL2.onnx ...] [--out cg.json | --graphml out.graphml]

Heavy libraries (torch, torch-geometric) are imported only by the subcommands that need them, so
the command starts fast. Every input is answered: a file that fails gets a one-line error naming it
on stderr and the others are still processed.

Exit codes: 0 all converted; 1 some input failed; 3 all converted, but some contain operators the
vocabulary does not know (they are nodes of category ``other``, named on stderr).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_UNKNOWN_OPS = 3


def _convert_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict convert",
        description="Parse ONNX files into unified computation graphs and print a one-line summary of each "
        "(nodes, edges, top-5 operator categories, FLOPs as multiply-accumulates per sample, parameters "
        "with BatchNorm folded into the preceding conv, input shape).",
    )
    parser.add_argument("models", nargs="+", type=Path, help="ONNX files")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--out", type=Path, help="write the CG as JSON (a directory when several models are given)")
    out.add_argument("--graphml", type=Path, help="write the CG as GraphML (a directory when several models are given)")
    return parser


def _destination(target: Path | None, model: Path, several: bool, suffix: str) -> Path | None:
    if target is None:
        return None
    if several or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return target / f"{model.stem}{suffix}"
    return target


def convert(argv: list[str]) -> int:
    args = _convert_parser().parse_args(argv)
    from graph_encoders import ModelLoadError, onnx_to_cg

    several = len(args.models) > 1
    failed = unknown = 0
    for model in args.models:
        try:
            cg = onnx_to_cg(model)
        except ModelLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(cg.summary())
        if cg.unknown_ops:
            unknown += 1
            ops = ", ".join(sorted(set(cg.unknown_ops)))
            print(f"warning: {model}: unknown operators kept as category 'other': {ops}", file=sys.stderr)
        if (json_path := _destination(args.out, model, several, ".cg.json")) is not None:
            cg.save_json(json_path)
        if (graphml_path := _destination(args.graphml, model, several, ".graphml")) is not None:
            cg.write_graphml(graphml_path)
    return 1 if failed else (EXIT_UNKNOWN_OPS if unknown else 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert":
        return convert(argv[1:])
    print("usage: predict convert MODEL.onnx [...] [--out cg.json | --graphml out.graphml]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
