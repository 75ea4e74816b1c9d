"""Classifier training on ``transformers.Trainer``, with callbacks for what is this project's own.

The run's ``TrainingArguments`` come from :mod:`.arguments`, its callback from :mod:`.run_callback`.

Trainer does the optimisation (AdamW, the linear warm-up schedule, gradient accumulation, mixed
precision, DDP/FSDP under ``torchrun`` or ``accelerate launch``), the checkpoints and their resume
(optimiser, scheduler and RNG states included), and the choice of the best validation. The
callbacks here add: the history row of every validation and the ``name=value`` lines Katib reads,
divergence and collapse detection, a search's pruning hook, and the run's fingerprint, which
refuses to resume another run's checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from genomenlp.components.errors import InputError
from genomenlp.components.training.arguments import QuietProgress, announce_override, training_arguments
from genomenlp.components.training.checkpoint import unreadable_checkpoint_is_input_error
from genomenlp.components.training.collapse import degenerate_reason
from genomenlp.components.training.config import (
    EvalStrategy,
    TrainConfig,
)
from genomenlp.components.training.data import EncodedSplit
from genomenlp.components.training.metrics import classification_metrics
from genomenlp.components.training.run_callback import HeldOutTrace, RunCallback
from genomenlp.components.training.state import (
    STATE_FILE,
    FitResult,
    PruneRun,
)


class SplitDataset(torch.utils.data.Dataset):
    """One split's rows as the dicts a Trainer collates: token ids and class id."""

    def __init__(self, split: EncodedSplit):
        """Wrap ``split`` (not copied)."""
        self.split = split

    def __len__(self) -> int:
        """Rows in the split."""
        return len(self.split)

    def __getitem__(self, index: int) -> dict:
        """Row ``index``: its ids (already wrapped in ``<s> … </s>``) and its label."""
        return {"input_ids": self.split.input_ids[index], "labels": int(self.split.labels[index])}


@dataclasses.dataclass(frozen=True)
class PadCollator:
    """Pads a batch to its longest row with ``<pad>`` and masks the padding.

    A plain picklable object, so DataLoader worker processes can run it.
    """

    pad_id: int

    def __call__(self, rows: list[dict]) -> dict:
        """``input_ids``, ``attention_mask`` and ``labels`` tensors of one batch."""
        width = max(len(row["input_ids"]) for row in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for line, row in enumerate(rows):
            ids[line, : len(row["input_ids"])] = row["input_ids"]
            mask[line, : len(row["input_ids"])] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.tensor([row["labels"] for row in rows], dtype=torch.long)}


class Validation:
    """Trainer's ``compute_metrics``: figures from class probabilities; keeps them and the collapse verdict.

    Under DDP every process receives the gathered predictions of all rows, so each reaches the same
    verdict and they stop together.
    """

    def __init__(self, positive: int = 0):
        """Nothing evaluated yet; ``positive`` is the class whose PR-AUC two-class figures report."""
        self.positive = positive
        self.probabilities: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.reason: str | None = None

    def __call__(self, prediction) -> dict:
        """Unprefixed figures (Trainer adds ``eval_``/``test_``) of one evaluation."""
        logits = torch.from_numpy(np.asarray(prediction.predictions, dtype=np.float32))
        self.probabilities = torch.softmax(logits, dim=-1).numpy()
        self.labels = np.asarray(prediction.label_ids)
        figures = classification_metrics(self.labels, self.probabilities, positive=self.positive)
        self.reason = degenerate_reason(self.labels, self.probabilities, figures["f1"])
        return figures


class ClassifierTrainer(Trainer):
    """Trainer that also sums its training loss on the device, read only at validations (no per-step sync)."""

    def __init__(self, *args, **kwargs):
        """As :class:`transformers.Trainer`."""
        super().__init__(*args, **kwargs)
        self.loss_sum: torch.Tensor | None = None
        self.steps_at_read = 0

    def training_step(self, model, inputs, num_items_in_batch=None):
        """Trainer's step; its (accumulation-scaled) loss is added to :attr:`loss_sum`."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.loss_sum = loss if self.loss_sum is None else self.loss_sum + loss
        return loss

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        """Trainer's loop, its loss replaced by the cross-entropy of the gathered logits of every row.

        Trainer averages per-process batch losses, which under DDP weighs the rows of an uneven last
        batch unequally (1e-3 off on 2 processes); the gathered logits hold each row exactly once.
        """
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys,
                                         metric_key_prefix)
        if output.predictions is not None and output.label_ids is not None:
            logits = torch.from_numpy(np.asarray(output.predictions, dtype=np.float32))
            labels = torch.from_numpy(np.asarray(output.label_ids, dtype=np.int64))
            output.metrics[f"{metric_key_prefix}_loss"] = float(torch.nn.functional.cross_entropy(logits, labels))
        return output

    def read_train_loss(self, global_step: int) -> float:
        """Mean loss per optimiser step since the last read, averaged over processes (as Trainer logs it)."""
        total = self.loss_sum if self.loss_sum is not None else torch.zeros((), device=self.args.device)
        total = self.accelerator.reduce(total.detach().float().reshape(1), reduction="mean")
        steps = global_step - self.steps_at_read
        self.loss_sum, self.steps_at_read = None, global_step
        return float(total) / steps if steps else float("nan")


def sharding(trainer: Trainer) -> str:
    """How the run's processes held the model: ``fsdp``, ``ddp`` (a copy each) or ``single`` (one process)."""
    if trainer.is_fsdp_enabled:
        return "fsdp"
    return "ddp" if trainer.args.world_size > 1 else "single"


def warn_if_not_sharded(trainer: Trainer) -> None:
    """Say once, on the first process, when ``fsdp`` was asked for and Accelerate runs without it.

    Accelerate 1.x enables FSDP only for multi-accelerator runs (CUDA and the like); on the CPU, and
    in a single process, the same settings train with DDP or alone, which is correct but unsharded.
    """
    if trainer.args.fsdp and not trainer.is_fsdp_enabled and trainer.is_world_process_zero():
        announce_override("fsdp", True, sharding(trainer),
                  "Accelerate shards only across GPUs (or other accelerators); this run is not sharded")


def _resume_point(checkpoint_dir: Path, fingerprint: str) -> tuple[FitResult, str | None]:
    """The result so far and the checkpoint to resume from, or a fresh start; refuse another run's checkpoints."""
    path = checkpoint_dir / STATE_FILE
    if not path.exists():
        return FitResult(), None
    with unreadable_checkpoint_is_input_error(checkpoint_dir):
        state = json.loads(path.read_text())
        if state["fingerprint"] != fingerprint:
            raise InputError(str(checkpoint_dir), "holds checkpoints of a different run (other data or settings); "
                             "use a new output folder or --overwrite")
        folder = checkpoint_dir / state["checkpoint"]
        _check_readable(folder)
        return FitResult.from_state(state), str(folder)


def _check_readable(folder: Path) -> None:
    """Open what Trainer will load from a checkpoint, so a damaged one fails here in one line, not mid-resume."""
    from safetensors import safe_open

    json.loads((folder / "trainer_state.json").read_text())
    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        weights.keys()
    # weights_only: the optimiser file is plain tensors and numbers; a pickled object is refused, never run.
    torch.load(folder / "optimizer.pt", weights_only=True, map_location="cpu")


def fit(
    model,
    train: EncodedSplit,
    valid: EncodedSplit,
    config: TrainConfig,
    pad_id: int,
    checkpoint_dir: Path,
    fingerprint: str,
    on_epoch: Callable[[int, dict], None] | None = None,
    show_progress: bool = True,
    file_values: dict | None = None,
    held_out: tuple[EncodedSplit, Path] | None = None,
) -> tuple[FitResult, ClassifierTrainer]:
    """Train with Trainer, validating as ``config.eval_strategy`` says; resume a previous state in ``checkpoint_dir``.

    Args:
        model: A freshly built classifier.
        train: Training rows.
        valid: Validation rows (the best validation is chosen on these, never on test).
        config: The run's settings.
        pad_id: Id of ``<pad>``.
        checkpoint_dir: Trainer's checkpoints and the run's resume record.
        fingerprint: Identifies the run; a checkpoint of another run is refused.
        on_epoch: Called on the main process with (validation number, history row) after each validation's
            checkpoint; may raise to stop (pruning).
        show_progress: Show progress bars.
        file_values: A ``-w`` file's TrainingArguments mapping (see :func:`training_arguments`).
        held_out: Rows to predict after every validation and the folder for their probabilities (a
            cross-validation's held-out fold; see :class:`HeldOutTrace`). They never choose this run's weights.

    A run whose first ``config.collapse_epochs`` validations (fewer when it has fewer epochs) are all
    degenerate stops with ``collapsed`` set; one that showed signal and then stays degenerate for that
    many validations stops with ``stopped_early`` set.

    Returns:
        The result and the trainer, whose model holds the weights training ended with.

    Raises:
        TrainingDiverged: The training loss became NaN or infinite, or far above chance.
    """
    from transformers.utils import logging as hf_logging

    # Trainer's own lines (device, batch counts, checkpoint ordering) and its checkpoint-writing bars are
    # noise beside the progress bar and metric lines; its errors still raise.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    result, resume = _resume_point(checkpoint_dir, fingerprint)
    arguments = training_arguments(config, checkpoint_dir, show_progress, file_values)
    validation = Validation(model.config.label2id[config.positive_label] if config.positive_label else 0)
    evaluating = config.eval_strategy is not EvalStrategy.NO
    trainer = ClassifierTrainer(model=model, args=arguments, train_dataset=SplitDataset(train),
                                eval_dataset=SplitDataset(valid), data_collator=PadCollator(pad_id),
                                compute_metrics=validation)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if show_progress:
        trainer.add_callback(QuietProgress)
    trainer.add_callback(RunCallback(trainer, result, config, checkpoint_dir, fingerprint, validation, on_epoch))
    if held_out is not None:
        # After RunCallback: its on_evaluate reads the validation's verdict before predict replaces it.
        trainer.add_callback(HeldOutTrace(trainer, SplitDataset(held_out[0]), held_out[1], result))
    warn_if_not_sharded(trainer)
    try:
        trainer.train(resume_from_checkpoint=resume)
    except PruneRun:
        if result.collapsed is None:
            raise
    if not evaluating:
        # No validation during training: one now, so the run still has figures on valid and a history row.
        trainer.evaluate()
    best_loaded = arguments.load_best_model_at_end and trainer.state.best_model_checkpoint is not None
    result.model_index = result.best_index if best_loaded else len(result.history) - 1
    return result, trainer


def evaluate(trainer: ClassifierTrainer, split: EncodedSplit, prefix: str) -> tuple[dict, np.ndarray]:
    """Metrics (``prefix``-named, loss and confusion matrix included) and class probabilities on one split."""
    output = trainer.predict(SplitDataset(split), metric_key_prefix=prefix.rstrip("_"))
    validation: Validation = trainer.compute_metrics
    figures = classification_metrics(validation.labels, validation.probabilities, prefix, validation.positive)
    figures[f"{prefix}loss"] = float(output.metrics[f"{prefix}loss"])
    return figures, validation.probabilities
