"""What every task's LightningModule shares: the config and class info it is built from and keeps
in its checkpoints, the optimizer, and the evaluation steps, which feed the task's `Evaluation`
and log its scalars, so that the logger, the checkpoint monitor, `metrics.json` and the report read
the same numbers. Each task's module adds its network, loss, forward, training and predict steps."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar

from lightning import LightningModule
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from ..config import Config, TestTimeAugmentation
from ..task_evaluation import TaskEvaluation
from ..tta import View, views
from .finetuning import backbone_norms, backbone_parameter_names, freeze, split_parameters
from .network import backbone_name
from .optimization import apply_settings, configure_optimization, planned_schedule

BatchT = TypeVar("BatchT")
OutputT = TypeVar("OutputT", bound=Tensor | Mapping[str, Any])
"""What the evaluation steps return: Lightning takes a tensor or a mapping."""


class TaskModule(LightningModule, abc.ABC, Generic[BatchT, OutputT]):
    """A task's model, built from `config` (a `Config`, or its plain data as stored in a
    checkpoint) and `class_info`, what the data module says of its classes.

    Both are stored as plain data, so `Model.load_from_checkpoint(path)` needs no other argument
    and the checkpoint loads with `torch.load(path, weights_only=True)`.
    """

    evaluation: TaskEvaluation[OutputT, BatchT]
    """Set by each task's `__init__`: a submodule, so its metrics follow the model's device."""
    network: nn.Module
    """Set by each task's `__init__`: what `inference.py` and `export` run."""

    def __init__(self, config: Config | Mapping[str, Any], class_info: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = config if isinstance(config, Config) else Config.from_data(config)
        self.class_names: list[str] = list(class_info["class_names"])
        # Stored in checkpoints; loggers get the flat config from the runner instead.
        self.save_hyperparameters({"config": self.config.to_data(), **class_info}, logger=False)
        self._backbone_frozen = False
        self._frozen_norms: list[nn.Module] = []
        """The backbone's BatchNorm layers while `model.freeze_backbone_epochs` holds it frozen."""

    @abc.abstractmethod
    def evaluation_step(self, batch: BatchT) -> tuple[OutputT, Tensor | None]:
        """What the evaluation is fed for `batch`, and the loss, where the model computes one in eval mode."""

    def validation_step(self, batch: BatchT, batch_idx: int) -> OutputT:
        """The outputs, for the evaluation and the report's pictures."""
        return self._evaluate(batch, "val")

    def test_step(self, batch: BatchT, batch_idx: int) -> OutputT:
        return self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_scalars("val")

    def on_test_epoch_end(self) -> None:
        self._log_scalars("test")

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        backbone, head = self.backbone_and_head()
        return configure_optimization(
            backbone, head, self.config.optim, planned_schedule(self.trainer, self.config.optim)
        )

    def backbone_and_head(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """The network's parameters in the backbone (`models.finetuning`), and the others."""
        return split_parameters(self.network, self._backbone_parameters())

    def on_train_start(self) -> None:
        """A resumed fit's optimizer and schedule come back from its checkpoint with the values it
        was trained with; the configured ones (`key_policy.POLICY` lets a resume change them) go in now."""
        (optimizer,) = self.trainer.optimizers
        (schedule,) = self.trainer.lr_scheduler_configs
        assert isinstance(schedule.scheduler, LambdaLR)
        apply_settings(
            optimizer, schedule.scheduler, self.config.optim, planned_schedule(self.trainer, self.config.optim)
        )

    def on_train_epoch_start(self) -> None:
        """The backbone trains from epoch `model.freeze_backbone_epochs` on; before it, it is frozen."""
        frozen = self.current_epoch < self.config.model.freeze_backbone_epochs
        if frozen == self._backbone_frozen:
            return
        names = self._backbone_parameters()
        parameters = [parameter for name, parameter in self.network.named_parameters() if name in names]
        norms = backbone_norms(self.network, names)
        freeze(parameters, norms, frozen)
        self._backbone_frozen = frozen
        self._frozen_norms = norms if frozen else []

    def train(self, mode: bool = True) -> TaskModule[BatchT, OutputT]:
        """Training mode, but for the BatchNorm layers of a frozen backbone, which keep their statistics."""
        super().train(mode)
        for module in self._frozen_norms:
            module.eval()
        return self

    @property
    def tta(self) -> TestTimeAugmentation:
        """The test-time augmentation of evaluation and prediction now: `model.tta`, but none in
        training and in fit's validation epochs, which pick the best checkpoint cheaply."""
        fitting = self._trainer is not None and self.trainer.state.fn == TrainerFn.FITTING
        return "none" if fitting else self.config.model.tta

    def views(self) -> tuple[View, ...]:
        """The views of each image that evaluation and prediction merge now, the image itself first."""
        return views(self.tta)

    def _backbone_parameters(self) -> set[str]:
        return backbone_parameter_names(self.network, backbone_name(self.config.model))

    def _evaluate(self, batch: BatchT, split: Literal["val", "test"]) -> OutputT:
        outputs, loss = self.evaluation_step(batch)
        if loss is not None:
            self.log(f"{split}_loss", loss, prog_bar=split == "val")
        self.evaluation.update(outputs, batch)
        return outputs

    def _log_scalars(self, split: Literal["val", "test"]) -> None:
        """`<split>_<name>` for each of the evaluation's scalars; then the evaluation starts afresh.
        (The report, where one is written, has read its result already: Lightning calls the
        callbacks' epoch-end hooks before the model's.)"""
        scalars = self.evaluation.scalars()
        shown = self.evaluation.progress_bar if split == "val" else ()
        for name, value in scalars.items():
            self.log(f"{split}_{name}", value, prog_bar=name in shown)
        self.evaluation.reset()
