"""Transfer across tasks (AIO-P): adapters on a frozen, classification-pretrained CG encoder.

The backbone's node states (after the input embedding and after each layer) are computed once per
graph and stored on the ``Data`` objects (:func:`attach_backbone_states`); everything trained here
reads them, so the backbone is never run again.

- :class:`AdapterGNN`: a K-Adapter. Adapter layer i reads the concatenation of its previous output
  and backbone layer i's node states; the pooled result (plus log FLOPs / params) feeds an MLP head.
- :class:`KAdapters`: one adapter per source task; a target task's prediction is the mean of the
  adapters' predictions (AIO-P).
- :class:`TaskConditionedAdapter`: the simpler alternative, one adapter body shared by every task
  and a head conditioned on a learned task embedding. Zero-shot: the mean source-task embedding.
  Few-shot (both): :func:`predictors.few_shot.few_shot` blends, weighted by leave-one-out on the
  target samples, the zero-shot ranking, a correlation reweighting of it, and a ridge on it plus the
  backbone embedding.

Labels are z-scored per task; at transfer time with the statistics of the target samples (AIO-P).
Both are early-stopped on held-out networks of their source tasks (never the target's): a fixed
short schedule left them underfitted, by a different margin per task.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GraphConv, global_mean_pool

from .metrics import srcc
from .model import graph_statistics


@torch.no_grad()
def attach_backbone_states(encoder, graphs) -> list:
    """Copies of ``graphs`` with ``states`` = (nodes, layers + 1, width) from the frozen ``encoder``."""
    encoder.eval()
    out = []
    for batch in DataLoader(graphs, batch_size=256):
        states = torch.stack(encoder.node_states(batch), 1)
        for i, data in enumerate(batch.to_data_list()):
            data = data.clone()
            data.states = states[batch.batch == i]
            out.append(data)
    return out


class AdapterGNN(nn.Module):
    """Adapter GNN over frozen backbone states; ``embed`` -> pooled vector, ``head`` -> prediction."""

    def __init__(self, backbone_width: int, backbone_layers: int, width: int = 32, head_hidden: int = 32,
                 task_dim: int = 0):
        super().__init__()
        self.forward_convs, self.backward_convs = nn.ModuleList(), nn.ModuleList()
        for i in range(backbone_layers):
            in_dim = backbone_width + (width if i else backbone_width)
            self.forward_convs.append(GraphConv(in_dim, width))
            self.backward_convs.append(GraphConv(in_dim, width))
        self.head = nn.Sequential(nn.Linear(width + 2 + task_dim, head_hidden), nn.ReLU(), nn.Linear(head_hidden, 1))

    def embed(self, batch) -> torch.Tensor:
        states = batch.states
        h = states[:, 0]
        reverse = batch.edge_index.flip(0)
        for i, (fwd, bwd) in enumerate(zip(self.forward_convs, self.backward_convs)):
            x = torch.cat([h, states[:, i + 1]], 1)  # layer i: previous adapter output + backbone layer i
            h = torch.relu(fwd(x, batch.edge_index) + bwd(x, reverse))
        return torch.cat([global_mean_pool(h, batch.batch), graph_statistics(batch)], 1)

    def forward(self, batch, task_vector: torch.Tensor | None = None) -> torch.Tensor:
        z = self.embed(batch)
        if task_vector is not None:
            z = torch.cat([z, task_vector.expand(z.size(0), -1)], 1)
        return self.head(z).squeeze(1)


def _zscore(y: torch.Tensor) -> torch.Tensor:
    return (y - y.mean()) / y.std().clamp_min(1e-8)


def _labelled_batches(tasks: dict[str, list], batch_size: int, seed: int):
    """Per epoch: shuffled mini-batches of every task, each task's labels z-scored on all of its graphs."""
    generator = torch.Generator().manual_seed(seed)
    loaders = {}
    for task, graphs in tasks.items():
        y = _zscore(torch.cat([g.y for g in graphs]))
        items = []
        for g, target in zip(graphs, y):
            g = g.clone()
            g.y_task = target.view(1)
            items.append(g)
        loaders[task] = DataLoader(items, batch_size=batch_size, shuffle=True, generator=generator)
    return loaders


def _split(graphs: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """(train, held-out) with ``val_fraction`` of ``graphs`` held out, at least 10 networks."""
    order = np.random.default_rng(seed).permutation(len(graphs))
    n_val = max(10, int(round(val_fraction * len(graphs))))
    return [graphs[i] for i in order[n_val:]], [graphs[i] for i in order[:n_val]]


def _held_out_srcc(score, graphs: list) -> float:
    """SRCC of ``score(batch)`` on ``graphs``' labels, without gradients (callers put the module in eval mode)."""
    with torch.no_grad():
        pred = torch.cat([score(b) for b in DataLoader(graphs, batch_size=512)]).numpy()
    return srcc(pred, torch.cat([g.y for g in graphs]).numpy())


def _train_early_stopped(module: nn.Module, loaders: dict, loss, validate, max_epochs: int, check_every: int,
                         patience: int) -> nn.Module:
    """Adam on ``loss(task, batch)`` over every loader each epoch; every ``check_every`` epochs
    ``validate()`` (held-out SRCC) is checked, and the best weights are kept. Stops after
    ``patience`` epochs without improvement. Records ``best_epoch`` and ``val_srcc`` on ``module``.

    Why: with a fixed, short schedule the adapters underfit (TransNAS macro room_layout: held-out
    SRCC 0.57 after 20 epochs, 0.81 after 60), and the best length differs per task."""
    optimiser = torch.optim.Adam(module.parameters(), lr=2e-3, weight_decay=1e-4)
    best, best_epoch, best_state = -np.inf, 0, None  # the last epoch is always checked, so one check sets it
    for epoch in range(1, max_epochs + 1):
        module.train()
        for task, loader in loaders.items():
            for batch in loader:
                optimiser.zero_grad()
                loss(task, batch).backward()
                optimiser.step()
        if epoch % check_every and epoch != max_epochs:
            continue
        module.eval()
        score = float(np.nan_to_num(validate(), nan=-1.0))
        if score > best:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(module.state_dict())
        elif epoch - best_epoch >= patience:
            break
    module.load_state_dict(best_state)
    module.best_epoch, module.val_srcc = best_epoch, best
    return module.eval()


def fit_adapter(graphs: list, backbone_width: int, backbone_layers: int, max_epochs: int = 150, seed: int = 0,
                val_fraction: float = 0.1, check_every: int = 10, patience: int = 40, **kwargs) -> AdapterGNN:
    """One K-Adapter trained on one source task (MSE on z-scored labels), early-stopped on the
    held-out SRCC of ``val_fraction`` of that task's networks (never the target's)."""
    torch.manual_seed(seed)
    adapter = AdapterGNN(backbone_width, backbone_layers, **kwargs)
    train, held_out = _split(graphs, val_fraction, seed)
    return _train_early_stopped(adapter, _labelled_batches({"task": train}, 64, seed),
                                lambda task, batch: nn.functional.mse_loss(adapter(batch), batch.y_task),
                                lambda: _held_out_srcc(adapter, held_out), max_epochs, check_every, patience)


def _frozen_embeddings(adapter: AdapterGNN, graphs: list) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([adapter.embed(b) for b in DataLoader(graphs, batch_size=512)])


class KAdapters:
    """One adapter per source task; predictions averaged (AIO-P's K-Adapter transfer)."""

    def __init__(self, adapters: dict[str, AdapterGNN]):
        self.adapters = adapters

    def predict(self, graphs: list, exclude: str | None = None) -> torch.Tensor:
        """Mean z-scored prediction of every adapter except the target task's own."""
        return torch.from_numpy(self.predictions(graphs, exclude).mean(1)).float()

    def predictions(self, graphs: list, exclude: str | None = None) -> np.ndarray:
        """(graphs, adapters) z-scored predictions of every adapter except ``exclude``'s."""
        with torch.no_grad():
            return torch.stack([a.head(_frozen_embeddings(a, graphs)).squeeze(1)
                                for t, a in self.adapters.items() if t != exclude], 1).double().numpy()


class TaskConditionedAdapter(nn.Module):
    """One adapter body for all tasks; the head reads the pooled vector and a task embedding."""

    def __init__(self, tasks: list[str], backbone_width: int, backbone_layers: int, task_dim: int = 8, seed: int = 0,
                 **kwargs):
        super().__init__()
        torch.manual_seed(seed)  # the initialisation, not only the training, must not depend on what ran before
        self.tasks = list(tasks)
        self.adapter = AdapterGNN(backbone_width, backbone_layers, task_dim=task_dim, **kwargs)
        self.task_embedding = nn.Embedding(len(self.tasks), task_dim)

    def fit(self, tasks: dict[str, list], max_epochs: int = 40, seed: int = 0, val_fraction: float = 0.1,
            check_every: int = 2, patience: int = 8) -> "TaskConditionedAdapter":
        """Early-stopped on the mean held-out SRCC over the tasks (each epoch visits every task)."""
        torch.manual_seed(seed)
        splits = {task: _split(graphs, val_fraction, seed) for task, graphs in tasks.items()}

        def vector(task):
            return self.task_embedding.weight[self.tasks.index(task)]

        def validate():
            return np.mean([_held_out_srcc(lambda b: self.adapter(b, vector(task)), held_out)
                            for task, (_, held_out) in splits.items()])

        return _train_early_stopped(self, _labelled_batches({t: train for t, (train, _) in splits.items()}, 64, seed),
                                    lambda task, batch: nn.functional.mse_loss(self.adapter(batch, vector(task)), batch.y_task),
                                    validate, max_epochs, check_every, patience)

    def predict(self, graphs: list) -> torch.Tensor:
        """Zero-shot: the head conditioned on the mean source-task embedding."""
        with torch.no_grad():
            z = _frozen_embeddings(self.adapter, graphs)
            return self.adapter.head(torch.cat([z, self.task_embedding.weight.mean(0).expand(z.size(0), -1)], 1)).squeeze(1)

    def predictions(self, graphs: list) -> np.ndarray:
        """(graphs, 1): the zero-shot prediction as a column, for :func:`predictors.few_shot.few_shot`."""
        return self.predict(graphs).double().numpy()[:, None]


def backbone_embedding(graphs: list) -> np.ndarray:
    """The frozen backbone's graph embedding (mean-pooled last states + log FLOPs / params)."""
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    pooled = global_mean_pool(batch.states[:, -1], batch.batch)
    return torch.cat([pooled, graph_statistics(batch)], 1).double().numpy()
