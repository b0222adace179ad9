"""The NASWOT proxy computed from each network's ONNX graph, beside the predictor (issue 5).

    python experiments/zero_cost_ensemble.py [--checkpoint nb101] [--shots 50] [--draws 5] [--workers 2] [--out STEM]

:func:`predictors.zero_cost.naswot` scores every network of NB-201 (15,625) and NB-301 (725) from
the ONNX graph the CG comes from (synthetic images, fresh weights; cached under
``$CGPREDICT_CACHE/proxies``). Then, with no label of the target:
- zero-shot: SRCC of parameters, FLOPs, NASWOT on CIFAR-10 as stored in the benchmark files (for
  scale), our NASWOT, the predictor, the predictor with its size prior, and the mean percentile
  rank of each of the last two with our NASWOT (:func:`predictors.zero_cost.rank_ensemble`);
- ``--shots``-shot, on the draws of ``shot_draws.py``: the fine-tuned predictor; the blend of
  :func:`predictors.few_shot.few_shot` from the zero-shot column alone, with NASWOT as a second
  column, and from the zero-shot ensemble instead; each blend averaged with the fine-tuned
  predictor; and the fine-tuned predictor's ranks joined with the zero-shot ensemble's.
Writes experiments/results/zero_cost_ensemble.md (+ .json, .png), or ``--out``'s stem.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
RESULTS = ROOT / "experiments" / "results"
FAMILIES = {"nb201/cifar10": "naswot", "nb301/cifar10": "zc:nwot"}  # the benchmark's own NASWOT column
BARS = {"nb201/cifar10": 0.82, "nb201_no_none/cifar10": 0.88, "nb301/cifar10": 0.55}
SHOT_BARS = {"nb201/cifar10": 0.93, "nb301/cifar10": 0.89}
OUT = "zero_cost_ensemble"
PROXY_VERSION = 2  # bump when predictors.zero_cost's score changes (2: weights drawn in the order of use)

_SPACE = None


def _init_worker(space: str) -> None:
    global _SPACE
    from bench_data.registry import get_space

    torch.set_num_threads(1)
    _SPACE = get_space(space)


def _score(arch) -> float:
    from predictors.zero_cost import naswot_scores

    return float(naswot_scores([_SPACE.to_onnx(arch)])[0][0])  # NaN where it cannot run


def proxy_scores(space: str, archs: list, workers: int) -> np.ndarray:
    """NASWOT of every architecture (order of ``archs``), cached per space."""
    from tqdm import tqdm

    from bench_data.datasets import cache_dir

    path = cache_dir() / "proxies" / f"{space}-naswot-v{PROXY_VERSION}.json"
    cached = json.loads(path.read_text()) if path.exists() else {}
    missing = list(dict.fromkeys(a for a in archs if repr(a) not in cached))
    if missing:
        progress = dict(total=len(missing), desc=f"NASWOT of {space} networks", unit="net", mininterval=5.0)
        with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(space,)) as pool:
            for arch, score in zip(missing, tqdm(pool.imap(_score, missing, chunksize=16), **progress)):
                cached[repr(arch)] = score
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cached))
    return np.array([cached[repr(a)] for a in archs], dtype=float)


def zero_shot_rows(key: str, dataset, zero_shot, with_prior, proxy, constant) -> dict:
    from gennape_protocol import column

    from predictors.metrics import srcc
    from predictors.zero_cost import rank_ensemble

    records = [dataset.records[int(d.index)] for d in dataset]
    # NaN where the benchmark's own proxy failed: ranked last below, as our NaNs are
    stored = np.array([r.targets.get(FAMILIES[key.replace("nb201_no_none", "nb201")], np.nan) for r in records])
    y = column(dataset, "y")
    columns = {"params": column(dataset, "params"), "FLOPs": column(dataset, "macs"),
               "NASWOT on CIFAR-10 (stored)": stored, "NASWOT, ours": proxy,
               "predictor": zero_shot, "predictor + size prior": with_prior,
               "predictor + NASWOT": rank_ensemble(zero_shot, proxy, constant),
               "predictor + size prior + NASWOT": rank_ensemble(with_prior, proxy, constant)}
    return {name: srcc(np.nan_to_num(values, nan=-np.inf), y) for name, values in columns.items()}


def run_family(key: str, args) -> dict:
    from gennape_protocol import (FINETUNE_EPOCHS, blended_few_shot, column, ensemble, finetune_like_users,
                                  flops_predictor, lean_model, load_family, predict_and_embed)

    from predictors.metrics import srcc
    from predictors.model import constant_output_mask
    from predictors.zero_cost import rank_ensemble

    torch.set_num_threads(1)
    dataset = load_family(key)
    proxy = proxy_scores(key.split("/")[0], [dataset.records[int(d.index)].arch for d in dataset], args.workers)
    model = lean_model(args.checkpoint)
    zero_shot, embedding = predict_and_embed(model, dataset)
    constant = constant_output_mask(dataset)
    prior, _ = flops_predictor()
    with_prior = ensemble(zero_shot, column(dataset, "macs"), prior, constant)
    result = {"key": key, "zero_shot": {key: zero_shot_rows(key, dataset, zero_shot, with_prior, proxy, constant)}}
    if key == "nb201/cifar10":
        keep = np.array(["none" not in dataset.records[int(d.index)].arch for d in dataset])
        subset = dataset[torch.from_numpy(np.flatnonzero(keep))]
        result["zero_shot"]["nb201_no_none/cifar10"] = zero_shot_rows(
            "nb201_no_none/cifar10", subset, zero_shot[keep], with_prior[keep], proxy[keep], constant[keep])
    print(key, json.dumps(result["zero_shot"], indent=1), flush=True)

    y = column(dataset, "y")
    finite = np.isfinite(proxy)  # -inf: every image got the same code; NaN: NASWOT could not run
    filled = np.where(finite, proxy, proxy[finite].min())
    joint = rank_ensemble(with_prior, filled, constant)  # the zero-shot ensemble, label-free
    draws = []
    for draw in range(args.draws):
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(draw))  # shot_draws.py's draws
        support, query = order[:args.shots].numpy(), order[args.shots:].numpy()
        tuned = finetune_like_users(model, dataset[torch.from_numpy(support)], dataset[torch.from_numpy(query)], "all",
                                    FINETUNE_EPOCHS)
        blend = blended_few_shot(zero_shot, embedding, y, support, query, constant)
        # few_shot's zero-shot candidate averages its columns: NASWOT goes onto the predictor's scale first
        # (z-scored on the support set, which is all a user would have)
        scaled = (filled - filled[support].mean()) / filled[support].std()
        scaled = scaled * zero_shot[support].std() + zero_shot[support].mean()
        with_column = blended_few_shot(np.stack([zero_shot, scaled], 1), embedding, y, support, query, constant)
        from_joint = blended_few_shot(joint, embedding, y, support, query, constant)
        scores = {"fine-tuned": tuned, "blended": blend, "blended + fine-tuned": (blend + tuned) / 2,
                  "blended, NASWOT as a 2nd column": with_column,
                  "blended, NASWOT as a 2nd column + fine-tuned": (with_column + tuned) / 2,
                  "blended from the zero-shot ensemble": from_joint,
                  "blended from the zero-shot ensemble + fine-tuned": (from_joint + tuned) / 2,
                  "fine-tuned, ranks joined with the zero-shot ensemble": rank_ensemble(tuned, joint[query])}
        draws.append({"draw": draw, **{name: srcc(pred, y[query]) for name, pred in scores.items()}})
        print(f"{key} draw {draw}: " + ", ".join(f"{k} {v:.3f}" for k, v in draws[-1].items() if k != "draw"), flush=True)
    result["draws"] = draws
    return result


def write_results(results: list[dict], args) -> None:
    command = (f"python experiments/zero_cost_ensemble.py --checkpoint {args.checkpoint} --shots {args.shots} "
               f"--draws {args.draws}" + (f" --out {args.out}" if args.out != OUT else ""))
    zero_shot = {key: rows for result in results for key, rows in result["zero_shot"].items()}
    names = list(next(iter(zero_shot.values())))
    lines = ["# NASWOT from the ONNX graph, beside the predictor", "", f"Command: `{command}`  ",
             f"Checkpoint `{args.checkpoint}`; NASWOT by `predictors.zero_cost.naswot` (batch of 32 synthetic images, "
             "fresh He-normal weights, seed 0). SRCC against CIFAR-10 accuracy.", "",
             "## Zero-shot (no label of the target)", "",
             "| target | bar | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for key, rows in zero_shot.items():
        lines.append(f"| {key} | {BARS[key]} | " + " | ".join(f"{rows[n]:.3f}" for n in names) + " |")
    methods = [k for k in results[0]["draws"][0] if k != "draw"]
    lines += ["", f"## {args.shots}-shot, mean +- std over {args.draws} draws (those of `shot_draws.py`)", "",
              "| target | bar | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for result in results:
        cells = []
        for name in methods:
            values = np.array([d[name] for d in result["draws"]])
            cells.append(f"{values.mean():.3f} +- {values.std():.3f}")
        lines.append(f"| {result['key']} | {SHOT_BARS[result['key']]} | " + " | ".join(cells) + " |")
    lines += ["", "Per draw:", "", "| target | draw | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for result in results:
        for d in result["draws"]:
            lines.append(f"| {result['key']} | {d['draw']} | " + " | ".join(f"{d[m]:.3f}" for m in methods) + " |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"command": command, "results": results}, indent=1))
    _plot(zero_shot, RESULTS / f"{args.out}.png")
    print("\n".join(lines))


def _plot(zero_shot: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(zero_shot.values())))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(zero_shot)
    for i, (key, rows) in enumerate(zero_shot.items()):
        bars = ax.bar(np.arange(len(names)) + i * width, [rows[n] for n in names], width, label=key)
        ax.axhline(BARS[key], color=bars[0].get_facecolor(), ls="--", lw=0.8)  # issue 5's bar for that target
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("zero-shot SRCC (dashed: issue 5's bars)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", ncols=3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="nb101")
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="processes computing NASWOT")
    parser.add_argument("--out", default=OUT, help="results file stem in experiments/results")
    args = parser.parse_args()
    results = [run_family(key, args) for key in FAMILIES]
    write_results(results, args)


if __name__ == "__main__":
    main()
