"""Does a fine-tuned predictor rank better on its own, or averaged with the pretrained zero-shot
ranking blended on the same labels (``Predictor.finetune(blend=True)``, the default)?

    python experiments/finetune_blend.py [--checkpoint nb101] [--shots 10 20 50] [--draws 5] [--workers 2]

Per target, label count and draw (draws as ``shot_draws.py``: draw 0 is the protocol's), the labelled
networks fine-tune a copy of the checkpoint (``Predictor.finetune``'s loop, 200 epochs) and the rest
of the target is ranked by:
- zero-shot: the checkpoint, untouched;
- fine-tuned: the fine-tuned network alone (``blend=False``);
- fine-tuned + blend: its prediction averaged with :class:`predictors.pretrained_blend.PretrainedBlend`
  (what ``Predictor.finetune`` returns by default);
- params and FLOPs (label-free baselines, on the same rest).
The two fine-tuned predictions are also scored by MAE in accuracy points.
Writes experiments/results/finetune_blend.md (+ .json, and .png: SRCC against the number of labels);
``--out STEM`` names other files.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
RESULTS = ROOT / "experiments" / "results"
TARGETS = ("nb201/cifar10", "nb301/cifar10")
METHODS = ("zero-shot", "fine-tuned", "fine-tuned + blend", "params", "FLOPs")
ON_LABEL_SCALE = ("fine-tuned", "fine-tuned + blend")  # also scored by MAE (accuracy points)


def run(job) -> dict:
    """Every method's SRCC on the rest of ``key`` after each draw of ``shots`` labels."""
    key, shots, args = job
    from gennape_protocol import FINETUNE_EPOCHS, column, lean_model, load_family, predict
    from torch_geometric.data import Batch

    from predictors.finetuning import default_lr, finetune_model
    from predictors.metrics import srcc
    from predictors.pretrained_blend import PretrainedBlend

    torch.set_num_threads(1)
    dataset, pretrained = load_family(key), lean_model(args.checkpoint)
    zero_shot, y = predict(pretrained, dataset), column(dataset, "y")
    params, macs = column(dataset, "params"), column(dataset, "macs")
    draws = []
    for draw in range(args.draws):
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(draw))  # as shot_draws.py
        support, query = order[:shots], order[shots:].numpy()
        train, test = dataset[support], Batch.from_data_list(list(dataset[order[shots:]]))
        labels = torch.from_numpy(column(train, "y")).float()
        tuned, _, _ = finetune_model(pretrained, lambda idx, train=train: Batch.from_data_list([train[int(i)] for i in idx]),
                                     labels, FINETUNE_EPOCHS, "all", default_lr("all"), 0, cross_validated=False)
        alone = predict(tuned, test)
        blend = PretrainedBlend.from_labels(pretrained, Batch.from_data_list(list(train)), labels.numpy())
        with torch.no_grad():
            averaged = blend.average(torch.from_numpy(alone), test).numpy()
        scores = {"zero-shot": zero_shot[query], "fine-tuned": alone, "fine-tuned + blend": averaged,
                  "params": params[query], "FLOPs": macs[query]}
        draws.append({"draw": draw, "weights": blend.few_shot.describe(),
                      **{name: srcc(pred, y[query]) for name, pred in scores.items()},
                      **{f"MAE {name}": float(np.abs(scores[name] - y[query]).mean()) for name in ON_LABEL_SCALE}})
        print(f"{key} {shots} labels, draw {draw}: " + ", ".join(f"{m} {draws[-1][m]:.3f}" for m in METHODS), flush=True)
    return {"key": key, "shots": shots, "draws": draws}


def write_results(results: list[dict], args) -> None:
    from shot_draws import labels_plot

    command = (f"python experiments/finetune_blend.py --checkpoint {args.checkpoint} --shots "
               f"{' '.join(map(str, args.shots))} --draws {args.draws}"
               + (f" --targets {' '.join(args.targets)}" if args.targets != list(TARGETS) else "")
               + (f" --out {args.out}" if args.out != "finetune_blend" else ""))
    columns = [*METHODS, *(f"MAE {name}" for name in ON_LABEL_SCALE)]
    lines = [f"# Fine-tuned alone or averaged with the pretrained blend: SRCC on the rest, {args.draws} draws", "",
             f"Command: `{command}`  ",
             f"Checkpoint `{args.checkpoint}`; fine-tuning every layer for 200 epochs (`Predictor.finetune`'s loop). "
             "Mean +- std over draws; MAE in accuracy points.", "", "| target | labels | " + " | ".join(columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for r in results:
        cells = [f"{np.mean([d[m] for d in r['draws']]):.3f} +- {np.std([d[m] for d in r['draws']]):.3f}" for m in columns]
        lines.append(f"| {r['key']} | {r['shots']} | " + " | ".join(cells) + " |")
    means = {m: np.mean([np.mean([d[m] for d in r["draws"]]) for r in results]) for m in columns}
    lines.append("| mean of the rows | | " + " | ".join(f"{means[m]:.3f}" for m in columns) + " |")
    lines += ["", "Per draw (and the blend's weights):", "", "| target | labels | draw | " + " | ".join(columns) + " | weights |",
              "|---|---|---|" + "---|" * (len(columns) + 1)]
    for r in results:
        for d in r["draws"]:
            lines.append(f"| {r['key']} | {r['shots']} | {d['draw']} | " + " | ".join(f"{d[m]:.3f}" for m in columns)
                         + f" | {d['weights']} |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"command": command, "results": results}, indent=1))
    labels_plot(results, METHODS, RESULTS / f"{args.out}.png")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="nb101")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--shots", nargs="+", type=int, default=[10, 20, 50])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="finetune_blend", help="results file stem in experiments/results")
    args = parser.parse_args()
    jobs = [(key, shots, args) for shots in args.shots for key in args.targets]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run, jobs))
    write_results(results, args)


if __name__ == "__main__":
    main()
