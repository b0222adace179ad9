"""``predict-train``: Lightning experiments from YAML configs.

    predict-train fit --config experiments/gennape_nb101.yaml [--trainer.max_epochs 5 ...]

Threads default to 1 (``CGPREDICT_THREADS`` to change): with another process on the second
core, torch's default threads spin and stall (STACK.md). wandb runs offline unless the user
configures a key and sets ``WANDB_MODE`` themselves.
"""
from __future__ import annotations

import os


def configure_environment() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "WANDB_MODE" not in os.environ and not os.environ.get("WANDB_API_KEY"):
        os.environ["WANDB_MODE"] = "offline"
    import torch

    torch.set_num_threads(int(os.environ.get("CGPREDICT_THREADS", "1")))


def _loggers_under_root_dir(cli) -> None:
    """A run has one directory, ``trainer.default_root_dir``: every logger that takes a ``save_dir``
    writes there (the checkpoints follow the first logger), so overriding it on the command line
    moves the whole run instead of only its Lightning defaults (a logger's own ``save_dir`` is
    overridden too: the root is the one place to set it)."""
    config = cli.config[cli.subcommand] if cli.subcommand else cli.config
    root, loggers = config.trainer.default_root_dir, config.trainer.logger
    if not root or not loggers or isinstance(loggers, bool):
        return
    for logger in loggers if isinstance(loggers, (list, tuple)) else [loggers]:
        init_args = getattr(logger, "init_args", None)
        if init_args is not None and "save_dir" in init_args:
            init_args.save_dir = root


def main(args: list[str] | None = None) -> None:
    configure_environment()
    from lightning.pytorch.cli import LightningCLI

    from bench_data.datamodule import BenchDataModule
    from predictors.lightning_module import PredictorModule

    class ExperimentCLI(LightningCLI):
        def before_instantiate_classes(self) -> None:
            _loggers_under_root_dir(self)

    ExperimentCLI(PredictorModule, BenchDataModule, seed_everything_default=0, args=args,
                  save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
