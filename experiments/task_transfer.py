"""Transfer to the TransNAS-Bench-101 tasks (issue 7, AIO-P protocol): zero-shot and 20-shot.

    python experiments/task_transfer.py [--checkpoint default] [--spaces tnb_micro tnb_macro]
                                        [--shots 20] [--seeds 20] [--max-epochs 150] [--workers 2]

Backbone: the checkpoint's CG encoder, pretrained on classification sources only, frozen.
For each space and each target task, with the other six tasks of the space as sources:
- K-Adapters: one adapter per source task (:mod:`predictors.task_transfer`), predictions averaged;
- task-conditioned: one adapter body for the source tasks, head conditioned on a task embedding.
Both are early-stopped on 10 % held-out networks of each source task (chosen epochs in the json).
Zero-shot predicts without target labels; 20-shot (:func:`predictors.few_shot.few_shot`)
blends its candidates (the zero-shot ranking, reweightings of the source columns, ridges on them,
on size and on the backbone embedding), weighted by leave-one-out SRCC on the ``--shots`` target
networks. As in AIO-P, predictions are z-scores turned into the task's metric
with the mean and std of the ``--shots`` target samples (for zero-shot too), so MAE is in the
task's own unit. Scored on all other networks of the task; ``--seeds`` draws of the samples.
Baselines in the same run on the same networks: FLOPs, parameters and every zero-cost proxy stored
with the data (NASLib's zc files), a ridge on log FLOPs / params / proxies fitted on the same
samples (query features clipped to the samples' range), and the samples' mean (MAE only). Writes experiments/results/task_transfer.{md,json,png}.
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
RESULTS = ROOT / "experiments" / "results"
PROXIES = ("jacov", "nwot", "synflow", "snip", "grasp", "fisher", "grad_norm", "plain", "l2_norm")
METHODS = ("kadapter_0", "taskcond_0", "kadapter_k", "taskcond_k", "zc_ridge_k")


def load_tasks(space: str, encoder) -> dict[str, tuple[list, list]]:
    """Per task: graphs with backbone states and labels, and their records (zero-cost scores)."""
    from bench_data.datasets import CGDataset
    from bench_data.registry import per_target_targets
    from predictors.task_transfer import attach_backbone_states

    tasks = {}
    for task in per_target_targets(space):
        dataset = CGDataset(f"{space}/{task}")
        graphs = attach_backbone_states(encoder, list(dataset))
        tasks[task] = (graphs, [dataset.records[int(g.index)] for g in graphs])
    return tasks


def proxy_table(records: list, graphs: list) -> dict[str, np.ndarray]:
    table = {"flops": np.array([float(g.macs) for g in graphs]), "params": np.array([float(g.params) for g in graphs])}
    for name in PROXIES:
        values = np.array([r.targets.get(f"zc:{name}", np.nan) for r in records], dtype=float)
        if np.isfinite(values).mean() > 0.9:  # a proxy that failed on most networks is not a column
            table[name] = values
    return table


def zc_ridge(proxies: dict, support: np.ndarray, query: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import RidgeCV

    def design(idx):  # arcsinh: proxies span many orders of magnitude, some are negative
        cols = [np.log1p(proxies["flops"][idx]), np.log1p(proxies["params"][idx])]  # 0 for constant networks
        cols += [np.arcsinh(np.nan_to_num(proxies[n][idx])) for n in proxies if n not in ("flops", "params")]
        return np.stack(cols, 1)

    x_s = design(support)
    x_q = np.clip(design(query), x_s.min(0), x_s.max(0))  # 20 samples: no extrapolation past what they span
    mean, std = x_s.mean(0), x_s.std(0) + 1e-8
    return RidgeCV(alphas=np.logspace(-2, 3, 20)).fit((x_s - mean) / std, y).predict((x_q - mean) / std)


def evaluate_space(space: str, encoder, width: int, layers: int, args) -> list[dict]:
    from predictors.metrics import mae, srcc
    from predictors.few_shot import constant_network_label, few_shot
    from predictors.model import constant_output_mask
    from predictors.task_transfer import KAdapters, TaskConditionedAdapter, backbone_embedding, fit_adapter

    tasks = load_tasks(space, encoder)
    adapters = {}
    for task, (graphs, _) in tasks.items():
        adapters[task] = fit_adapter(graphs, width, layers, max_epochs=args.max_epochs, seed=0)
        print(f"{space}: adapter for {task} trained ({len(graphs)} networks; best epoch "
              f"{adapters[task].best_epoch}, held-out SRCC {adapters[task].val_srcc:.3f})", flush=True)
    kadapters = KAdapters(adapters)
    rows, dumps = [], {}
    for target, (graphs, records) in tasks.items():
        sources = {t: g for t, (g, _) in tasks.items() if t != target}
        conditioned = TaskConditionedAdapter(list(sources), width, layers).fit(sources)
        y = np.array([float(g.y) for g in graphs])
        constant = constant_output_mask(graphs)  # the output ignores the input: one shared label
        proxies = proxy_table(records, graphs)
        if args.dump:  # every zero-shot column, embedding and label, to study few-shot rules offline
            dumps[f"{space}/{target}"] = dict(kadapter=kadapters.predictions(graphs, exclude=target),
                                              taskcond=conditioned.predictions(graphs), embedding=backbone_embedding(graphs),
                                              y=y, **{f"proxy_{k}": v for k, v in proxies.items()})
        per_seed, choices = [], []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            support = rng.choice(len(graphs), args.shots, replace=False)
            query = np.setdiff1d(np.arange(len(graphs)), support)
            mean, std = y[support].mean(), y[support].std()
            sup, qry = [graphs[i] for i in support], [graphs[i] for i in query]
            e_sup, e_qry = backbone_embedding(sup), backbone_embedding(qry)
            z, chosen = {}, {}
            for name, model in (("kadapter", kadapters), ("taskcond", conditioned)):
                columns = (lambda g: model.predictions(g, exclude=target)) if name == "kadapter" else model.predictions
                p_sup, p_qry = columns(sup), columns(qry)
                zero_shot = p_qry.mean(1) * std + mean  # z-scored with the support labels (AIO-P)
                z[f"{name}_0"] = constant_network_label(zero_shot, constant[query], y[support], np.zeros(len(support), bool))
                z[f"{name}_k"], chosen[name] = few_shot(p_sup, e_sup, y[support], p_qry, e_qry,
                                                        constant=(constant[support], constant[query]))
            choices.append(chosen)
            result = {m: (srcc(p, y[query]), mae(p, y[query])) for m, p in z.items()}
            ridge = constant_network_label(zc_ridge(proxies, support, query, y[support]), constant[query], y[support],
                                           constant[support])  # the same rule as the adapters' rows
            result["zc_ridge_k"] = (srcc(ridge, y[query]), mae(ridge, y[query]))
            result["support_mean"] = (float("nan"), mae(np.full(len(query), mean), y[query]))
            for name, values in proxies.items():
                ok = np.isfinite(values[query])
                result[name] = (srcc(values[query][ok], y[query][ok]), float("nan"))
            per_seed.append(result)
        row = {"space": space, "task": target, "networks": len(graphs), "adapter_epoch": adapters[target].best_epoch,
               "adapter_val_srcc": adapters[target].val_srcc, "taskcond_epoch": conditioned.best_epoch}
        for key in per_seed[0]:
            row[f"{key}_srcc"] = float(np.mean([r[key][0] for r in per_seed]))
            row[f"{key}_srcc_std"] = float(np.std([r[key][0] for r in per_seed]))
            row[f"{key}_mae"] = float(np.mean([r[key][1] for r in per_seed]))
        for name in ("kadapter", "taskcond"):
            row[f"{name}_k_weights"] = [c[name] for c in choices]
        zc_names = [n for n in proxies if n not in ("flops", "params")]
        best = max(zc_names, key=lambda n: abs(row[f"{n}_srcc"]))
        row["best_zc"], row["best_zc_srcc"] = best, row[f"{best}_srcc"]
        rows.append(row)
        print(f"{space}/{target}: K-Adapter 0-shot {row['kadapter_0_srcc']:.3f}, {args.shots}-shot "
              f"{row['kadapter_k_srcc']:.3f}; task-cond 0-shot {row['taskcond_0_srcc']:.3f}, {args.shots}-shot "
              f"{row['taskcond_k_srcc']:.3f}; best proxy {best} {row['best_zc_srcc']:.3f}; FLOPs {row['flops_srcc']:.3f}",
              flush=True)
    if args.dump:
        np.savez(args.dump.with_name(f"{args.dump.stem}_{space}.npz"),
                 **{f"{task}|{key}": value for task, d in dumps.items() for key, value in d.items()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--spaces", nargs="+", default=["tnb_micro", "tnb_macro"])
    parser.add_argument("--shots", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=20, help="draws of the target samples (20-shot SRCC varies +-0.2 between draws on some tasks)")
    parser.add_argument("--max-epochs", type=int, default=150, help="K-Adapter epoch cap (early stopping picks the epoch)")
    parser.add_argument("--workers", type=int, default=1, help="spaces evaluated in parallel processes")
    parser.add_argument("--dump", type=Path, default=None, help="also save every zero-shot column per task (npz)")
    args = parser.parse_args()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = [row for rows in pool.map(run_space, args.spaces, [args] * len(args.spaces)) for row in rows]
    write_results(rows, args)


def run_space(space: str, args) -> list[dict]:
    """One space's rows, in a worker process with one torch thread."""
    from predictors.api import checkpoint_path
    from predictors.model import PerformancePredictor

    torch.set_num_threads(1)
    state = torch.load(checkpoint_path(args.checkpoint), map_location="cpu", weights_only=False)
    model = PerformancePredictor(**state["hparams"]).eval()
    model.load_state_dict(state["state_dict"], strict=False)
    return evaluate_space(space, model.encoder, state["hparams"]["width"], state["hparams"]["layers"], args)


def write_results(rows: list[dict], args) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "task_transfer.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1, default=str))
    k = args.shots
    command = (f"python experiments/task_transfer.py --checkpoint {args.checkpoint} --spaces {' '.join(args.spaces)} "
               f"--shots {k} --seeds {args.seeds} --max-epochs {args.max_epochs}")
    lines = ["# Transfer to TransNAS-Bench-101 tasks (AIO-P protocol)", "",
             f"Command: `{command}`  ",
             f"Backbone: `{args.checkpoint}` (classification sources only), frozen. Sources for each target: the other six "
             f"tasks of the space. Means over {args.seeds} draws of the {k} target samples; scored on all other networks. "
             "Zero-cost proxies, FLOPs and params are label-free; their SRCC is on the same networks. "
             f"MAE in the task's unit: zero-shot z-scores mapped with the {k} samples' mean and std; {k}-shot predictions "
             "on the label scale by `predictors.few_shot.label_scale_map` (a least-squares line and an isotonic fit through "
             "the samples' leave-one-out predictions, weighted by their leave-one-out errors). Networks whose output "
             "ignores the input share one label in every 20-shot column, the proxy ridge's included.", "",
             "## SRCC", "",
             "| space | task | FLOPs | params | best proxy | K-Adapter 0-shot | task-cond 0-shot | "
             f"K-Adapter {k}-shot | task-cond {k}-shot | proxy ridge {k}-shot | {k}-shot beats best proxy |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ours = max(r["kadapter_k_srcc"], r["taskcond_k_srcc"])
        lines.append(f"| {r['space']} | {r['task']} | {r['flops_srcc']:.3f} | {r['params_srcc']:.3f} | "
                     f"{r['best_zc']} {r['best_zc_srcc']:.3f} | {r['kadapter_0_srcc']:.3f} | {r['taskcond_0_srcc']:.3f} | "
                     f"{r['kadapter_k_srcc']:.3f} +- {r['kadapter_k_srcc_std']:.3f} | "
                     f"{r['taskcond_k_srcc']:.3f} +- {r['taskcond_k_srcc_std']:.3f} | {r['zc_ridge_k_srcc']:.3f} | "
                     f"{'yes' if ours > abs(r['best_zc_srcc']) else 'no'} |")
    lines += ["", "## MAE (task unit)", "",
              f"| space | task | {k} samples' mean | K-Adapter 0-shot | task-cond 0-shot | K-Adapter {k}-shot | "
              f"task-cond {k}-shot | proxy ridge {k}-shot |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['space']} | {r['task']} | {r['support_mean_mae']:.3f} | {r['kadapter_0_mae']:.3f} | "
                     f"{r['taskcond_0_mae']:.3f} | {r['kadapter_k_mae']:.3f} | {r['taskcond_k_mae']:.3f} | "
                     f"{r['zc_ridge_k_mae']:.3f} |")
    proxies = [p for p in PROXIES if any(f"{p}_srcc" in r for r in rows)]
    lines += ["", "## Every zero-cost proxy (SRCC)", "", "| space | task | " + " | ".join(proxies) + " |",
              "|---|---|" + "---|" * len(proxies)]
    for r in rows:
        lines.append(f"| {r['space']} | {r['task']} | " + " | ".join(
            f"{r[f'{p}_srcc']:.3f}" if f"{p}_srcc" in r else "-" for p in proxies) + " |")
    (RESULTS / "task_transfer.md").write_text("\n".join(lines) + "\n")
    plot(rows, k)
    print(f"wrote {RESULTS / 'task_transfer.md'}")


def plot(rows: list[dict], k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = (("flops_srcc", "FLOPs"), ("best_zc_srcc", "best zero-cost proxy"), ("kadapter_0_srcc", "K-Adapter 0-shot"),
               ("kadapter_k_srcc", f"K-Adapter {k}-shot"), ("taskcond_k_srcc", f"task-cond {k}-shot"))
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(rows)), 4))
    x = np.arange(len(rows))
    width = 0.8 / len(columns)
    for i, (key, label) in enumerate(columns):
        ax.bar(x + (i - len(columns) / 2 + 0.5) * width, [r[key] for r in rows], width=width, label=label)
    ax.set_xticks(x, [f"{r['space'].replace('tnb_', '')}/{r['task']}" for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("SRCC")
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "task_transfer.png", dpi=130)


if __name__ == "__main__":
    main()
