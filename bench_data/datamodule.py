"""``BenchDataModule``: labelled CG datasets as a ``LightningDataModule`` with seeded splits."""
from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import ConcatDataset
from torch_geometric.loader import DataLoader

from .datasets import CGDataset


class BenchDataModule(L.LightningDataModule):
    """Args:
        keys: dataset keys, e.g. ``["nb101/val_acc_108"]``; several keys are concatenated.
        batch_size: graphs per batch (256 was fastest on the 2-core CPU, STACK.md).
        split: train / validation / test fractions of each key.
        train_size: optional absolute number of training graphs (few-shot); the rest is split
            between validation and test by ``split``'s proportions.
        seed: the split seed (recorded in checkpoints through the hyperparameters).
        min_label: drop training graphs whose label is below it (GENNAPE drops NB-101 networks under
            80 %: a few failed trainings would otherwise dominate a squared loss); validation and
            test splits keep everything.
        limit: use the first ``limit`` architectures of each space (quick runs and tests).
        data_root, workers: where labels live; processes for building CGs (cached after).
    """

    def __init__(self, keys: list[str] | str = "nb101/val_acc_108", batch_size: int = 256,
                 split: tuple[float, float, float] = (0.8, 0.1, 0.1), train_size: int | None = None,
                 seed: int = 0, min_label: float | None = None, limit: int | None = None, data_root: str | None = None,
                 workers: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.keys = [keys] if isinstance(keys, str) else list(keys)

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train_set", None) is not None:
            return
        hp = self.hparams
        parts = {"train": [], "val": [], "test": []}
        for key in self.keys:
            dataset = CGDataset(key, hp.data_root, hp.workers, hp.limit)
            order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(hp.seed))
            n_train = hp.train_size if hp.train_size is not None else int(len(dataset) * hp.split[0])
            rest = len(dataset) - n_train
            n_val = int(round(rest * hp.split[1] / max(hp.split[1] + hp.split[2], 1e-9)))
            train = order[:n_train]
            if hp.min_label is not None:
                train = train[dataset.y[train] >= hp.min_label]
            parts["train"].append(dataset[train])
            parts["val"].append(dataset[order[n_train:n_train + n_val]])
            parts["test"].append(dataset[order[n_train + n_val:]])
        self.train_set, self.val_set, self.test_set = (_join(parts[k]) for k in ("train", "val", "test"))

    def train_dataloader(self, shuffle: bool = True):
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=shuffle, drop_last=False)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=512)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=512)


class _Joined(ConcatDataset):
    """Concatenated datasets that still expose ``y`` and ``macs`` for fitting label transforms."""

    @property
    def y(self) -> torch.Tensor:
        return torch.cat([d.y for d in self.datasets])

    @property
    def macs(self) -> torch.Tensor:
        return torch.cat([d.macs for d in self.datasets])


def _join(datasets):
    return datasets[0] if len(datasets) == 1 else _Joined(datasets)
