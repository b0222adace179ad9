"""The ``predict`` command (a contract: scripts depend on it, keep it stable).

    predict MODEL.onnx [MODEL2.onnx ...] [--checkpoint NAME|PATH] [--target latency:DEVICE ...] [--proxy] [--json]
    predict --list-devices [--checkpoint NAME|PATH]
    predict convert MODEL.onnx [...] [--out cg.json | --graphml out.graphml]

Heavy libraries (torch-geometric, lightning) are never imported on the prediction path, so the
command starts fast. Every input is answered: a file that fails gets a one-line error naming it,
the others are still processed.

Exit codes: 0 all answered; 1 some input failed; 2 usage error (no such checkpoint, bad flags);
3 (``convert``) all converted, but some contain operators the vocabulary does not know (they are
nodes of category ``other``, named on stderr).
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


PREDICT_HELP = """Predict the accuracy of neural networks given as ONNX files.

What the numbers mean:
  score     a ranking score, higher is better; comparable between the files of one call (and one
            checkpoint), not an accuracy. Use it to rank candidate architectures.
  accuracy  predicted top-1 accuracy in percent on the checkpoint's label scale: the dataset and
            training recipe of the benchmark it was trained on (see --checkpoint below; `nb101`:
            CIFAR-10 validation accuracy after NAS-Bench-101's 108-epoch recipe). A network trained
            another way will reach another accuracy: trust the ranking more than the value. For a
            network smaller than every one `nb101` trained on (37 M MACs) its size effect is
            extrapolated: it keeps falling with FLOPs.
  +-        calibrated one-sigma uncertainty of `accuracy` (about 68% of held-out networks fall
            within it).
  OOD       the network is far from everything the checkpoint was trained on (its embedding is
            beyond the 99th percentile of the training networks'): treat its numbers with care.
  FLOPs     multiply-accumulates per sample (BatchNorm folded); params: learned parameters.
  note      "output ignores the input": every path to the output was folded (e.g. multiplied by
            zero), so the network computes a constant; its accuracy is stated as chance level,
            100 / classes, with no uncertainty, not predicted. JSON: "constant_output".
  latency   with --target latency:DEVICE, predicted latency in ms on a device HELP measured (batch
            size in the name, e.g. 1080ti_32; `--list-devices` lists them). JSON: "latency_ms".
            Learnt from HELP's NB-201, FBNet and OFA-MobileNetV3 networks: for an OOD network it
            is an extrapolation, kept within the range that device's measurements span.
  NASWOT    with --proxy: the NASWOT zero-cost proxy (Mellor et al. 2021) of the network at a fresh
            initialisation on synthetic images, one forward pass through onnxruntime (under a
            second for a CIFAR-sized network, about 6 s for a ResNet-50 at 224 x 224); higher is
            better. JSON: "naswot" (null when it cannot run), "naswot_note" saying why, or that
            it ran image by image (an export that fixes the batch size to 1).
  rank      with --proxy and several files: the mean of the network's percentile ranks among the
            files by accuracy and by NASWOT (1 = best of them). From `nb101` on families it never
            saw it ranks better than either alone: SRCC 0.902 on NAS-Bench-201's 4,096 cells
            without `none`, 0.584 on NB-301 (experiments/results/zero_cost_ensemble.md); from
            `nb101_spatial` 0.915 and 0.649 (zero_cost_ensemble_spatial.md).
            JSON: "proxy_rank".

Checkpoints (--checkpoint): `default` (NB-101 + NB-201 + NB-301, latency heads); `nb101` (NB-101
only, the GENNAPE protocol); `nb101_spatial` (NB-101 only, its GNN blind to channel widths and
per-node costs: for a family whose widths differ from NB-101's, such as DARTS cells); a .ckpt path.

Subcommands: `predict convert --help` (ONNX -> computation graph), `predict finetune --help`."""


def _predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="predict", description=PREDICT_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path, help="ONNX files")
    parser.add_argument("--checkpoint", default="default",
                        help="a shipped checkpoint name (default: %(default)s) or a .ckpt path")
    parser.add_argument("--target", action="append", default=[], metavar="latency:DEVICE",
                        help="also predict latency on DEVICE (repeatable); accuracy is always predicted")
    parser.add_argument("--list-devices", action="store_true", help="list the latency devices of the checkpoint")
    parser.add_argument("--size-prior", action="store_true",
                        help="average the accuracy with the checkpoint's FLOPs prior (helps z-score checkpoints on "
                             "families they never saw; `nb101` already predicts with one)")
    parser.add_argument("--proxy", action="store_true",
                        help="also compute the NASWOT proxy of each file, and rank the files by both")
    parser.add_argument("--json", action="store_true", help="print one JSON list, one object per input, in order")
    parser.add_argument("--batch-size", type=int, default=256)
    return parser


def predict(argv: list[str]) -> int:
    args = _predict_parser().parse_args(argv)
    import json

    from graph_encoders import ModelLoadError, onnx_to_cg
    from predictors.api import Predictor

    try:
        predictor = Predictor.from_pretrained(args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.list_devices:
        print("\n".join(predictor.latency_devices) or f"{args.checkpoint}: no latency heads")
        return 0
    if not args.models:
        print("error: no ONNX files given (see predict --help)", file=sys.stderr)
        return 2
    devices = []
    for target in args.target:
        kind, _, device = target.partition(":")
        if kind != "latency" or device not in predictor.latency_devices:
            known = ", ".join(predictor.latency_devices) or "none"
            print(f"error: --target {target}: expected latency:DEVICE with DEVICE one of: {known}", file=sys.stderr)
            return 2
        devices.append(device)
    if args.size_prior and predictor.size_prior is None:
        print(f"error: --size-prior: {args.checkpoint} has no size prior (python -m predictors.size_prior adds one)",
              file=sys.stderr)
        return 2
    graphs, errors = {}, {}
    paths = enumerate(args.models)
    if len(args.models) > 20:  # long work shows progress (on stderr: stdout stays machine-readable)
        from tqdm.auto import tqdm

        paths = tqdm(paths, total=len(args.models), desc="parsing", unit="file", file=sys.stderr)
    for i, path in paths:
        try:
            graphs[i] = onnx_to_cg(path)
        except ModelLoadError as err:
            errors[i] = err
    predictions = dict(zip(graphs, predictor.predict(list(graphs.values()), batch_size=args.batch_size,
                                                     latency_devices=devices, size_prior=args.size_prior)))
    proxies = _proxy_columns(args.models, predictions) if args.proxy else {}
    if args.json:
        rows = [
            predictions[i].to_dict() | {"path": str(path)} | proxies.get(i, {}) if i in predictions
            else {"path": str(path), "error": errors[i].problem}
            for i, path in enumerate(args.models)
        ]
        print(json.dumps(rows, indent=1))
    else:
        _print_table(args.models, predictions, errors, predictor, devices, proxies)
    for i in sorted(errors):
        if not args.json:
            print(f"error: {errors[i]}", file=sys.stderr)
    return 1 if errors else 0


def _proxy_columns(paths, predictions) -> dict[int, dict]:
    """Per answered input: its NASWOT (or why it has none) and, with several inputs, its rank by
    accuracy and NASWOT together."""
    import math

    from predictors.zero_cost import naswot_scores, rank_ensemble

    order = list(predictions)
    scores, notes = naswot_scores([paths[i] for i in order])
    columns = {}
    for position, (i, score) in enumerate(zip(order, scores)):
        columns[i] = {"naswot": float(score) if math.isfinite(score) else None}  # JSON has no -inf
        if score == -math.inf:
            notes.setdefault(position, "NASWOT -inf: every image got the same codes")
        if position in notes:
            columns[i]["naswot_note"] = notes[position]
    if len(order) > 1:
        ranks = rank_ensemble([predictions[i].accuracy for i in order], scores,
                              [predictions[i].constant_output for i in order])
        for i, rank in zip(order, ranks):
            columns[i]["proxy_rank"] = float(rank)
    return columns


def _print_table(paths, predictions, errors, predictor, devices, proxies=None) -> None:
    from graph_encoders.cg import format_si

    proxies = proxies or {}
    width = max(len(str(p)) for p in paths)
    latency_header = "".join(f"  {f'ms {d}':>{max(10, len(d) + 3)}}" for d in devices)
    proxy_header = f"  {'NASWOT':>8}  {'rank':>5}" if proxies else ""
    print(f"{'model':<{width}}  {'score':>7}  {'accuracy':>15}{latency_header}{proxy_header}  {'FLOPs':>9}  "
          f"{'params':>9}  note")
    for i, path in enumerate(paths):
        if i in errors:
            dashes = "".join(f"  {'-':>{max(10, len(d) + 3)}}" for d in devices)
            dashes += f"  {'-':>8}  {'-':>5}" if proxies else ""
            print(f"{str(path):<{width}}  {'-':>7}  {'-':>15}{dashes}  {'-':>9}  {'-':>9}  error: {errors[i].problem}")
            continue
        p = predictions[i]
        notes = ["OOD: far from the training networks"] * p.ood
        notes += [f"unknown ops as 'other': {','.join(p.unknown_ops)}"] * bool(p.unknown_ops)
        notes += [f"{p.folded_nodes} nodes folded (x*0 or unused)"] * bool(p.folded_nodes)
        notes += ["output ignores the input: chance level"] * p.constant_output
        proxy = proxies.get(i, {})
        notes += [proxy["naswot_note"]] if "naswot_note" in proxy else []
        note = "; ".join(notes)
        accuracy = f"{p.accuracy:6.2f} +- {p.std:5.2f}"
        latency = "".join(f"  {p.latency_ms[d]:>{max(10, len(d) + 3)}.3f}" for d in devices)
        if proxies:
            latency += f"  {proxy['naswot']:>8.2f}" if proxy.get("naswot") is not None else f"  {'-':>8}"
            latency += f"  {proxy['proxy_rank']:>5.2f}" if "proxy_rank" in proxy else f"  {'-':>5}"
        print(f"{str(path):<{width}}  {p.score:7.3f}  {accuracy:>15}{latency}  {format_si(p.flops):>9}  "
              f"{format_si(p.params):>9}  {note}")
    print(f"(checkpoint: {predictor.describe()})")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert":
        return convert(argv[1:])
    if argv and argv[0] == "finetune":
        from predictors.finetune_cli import finetune

        return finetune(argv[1:])
    return predict(argv)


if __name__ == "__main__":
    sys.exit(main())
