"""Classifier training on ``transformers.Trainer``, with callbacks for what is this project's own.

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
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from genomenlp.components.errors import InputError
from genomenlp.components.training.checkpoint import unreadable_checkpoint_is_input_error
from genomenlp.components.training.collapse import collapse_message, degenerate_reason
from genomenlp.components.training.config import (
    EvalStrategy,
    TrainConfig,
    higher_is_better,
    modern_training_arguments,
    scaling_arguments,
)
from genomenlp.components.training.data import EncodedSplit
from genomenlp.components.training.metrics import classification_metrics
from genomenlp.components.training.optim import choose_device
from genomenlp.components.training.state import (
    DEGENERATE,
    DIVERGENCE_FACTOR,
    STATE_FILE,
    FitResult,
    PruneRun,
    TrainingDiverged,
    write_json_atomically,
)

# Figures of a validation that go into its history row (and so into the Katib metric lines).
_ROW_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_weighted", "recall_weighted",
                "f1_weighted", "mcc", "roc_auc", "pr_auc", "f1", "loss")
# Overrides already announced in this process: a sweep's trials and a cross-validation's folds say it once.
_ANNOUNCED: set[str] = set()


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


class _QuietProgress(ProgressCallback):
    """Trainer's progress bars without its log dictionaries (this project prints its own metric lines)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Print nothing."""


def _announce(key: str, given, value, why: str) -> None:
    if f"{key}={given!r}" in _ANNOUNCED:
        return
    _ANNOUNCED.add(f"{key}={given!r}")
    # The output folder differs per trial or fold: the line names the rule, not each folder.
    shown = "" if key == "output_dir" else f" to {value!r}"
    print(f"training arguments: {key}={given!r} is overridden{shown}: {why}", file=sys.stderr, flush=True)


def training_arguments(config: TrainConfig, output_dir: Path, show_progress: bool,
                       file_values: dict | None = None) -> TrainingArguments:
    """HF ``TrainingArguments`` of a run, parsed by ``HfArgumentParser`` so every key means what it means in HF.

    Three layers: a ``-w`` file's keys (under today's HF names; see
    :func:`genomenlp.components.training.config.modern_training_arguments`), then :class:`TrainConfig` (which the
    file and the flags built), then what this project decides whatever the file says. Each such
    override that changes a value the file gave is printed once, on stderr.

    Args:
        config: The run's typed settings.
        output_dir: Where Trainer keeps its checkpoints.
        show_progress: Show progress bars.
        file_values: The ``-w`` file's raw mapping (``None``: HF defaults under the project's).

    Raises:
        InputError: A value HF refuses, named with HF's reason.
    """
    given = modern_training_arguments(file_values or {})[0]
    fields = {field.name for field in dataclasses.fields(TrainingArguments) if field.init}
    values = {key: value for key, value in given.items() if key in fields}
    # Project defaults where HF's do not suit; a file may still set them.
    values.setdefault("save_total_limit", 1)
    values.setdefault("logging_strategy", "epoch")
    # Every parameter of these classifiers takes part in every step: DDP need not search for unused ones.
    values.setdefault("ddp_find_unused_parameters", False)
    # A file's warm-up in whole steps stands; otherwise TrainConfig's ratio (HF takes a float < 1 as one).
    warmup = given.get("warmup_steps")
    warmup = warmup if isinstance(warmup, int | float) and warmup >= 1 else config.warmup_ratio
    evaluating = config.eval_strategy is not EvalStrategy.NO
    values.update(
        learning_rate=config.learning_rate, per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size, num_train_epochs=config.num_train_epochs,
        weight_decay=config.weight_decay, warmup_steps=warmup, max_grad_norm=config.max_grad_norm,
        adam_beta1=config.adam_beta1, adam_beta2=config.adam_beta2, adam_epsilon=config.adam_epsilon,
        seed=config.seed, metric_for_best_model=config.metric_for_best_model,
        greater_is_better=higher_is_better(config), gradient_accumulation_steps=config.gradient_accumulation_steps,
        eval_strategy=config.eval_strategy.value, load_best_model_at_end=config.load_best_model_at_end,
        dataloader_num_workers=config.dataloader_num_workers)
    if config.eval_steps is not None:
        values["eval_steps"] = config.eval_steps
    # DDP unless fsdp names options; TrainConfig holds what the file said, so it decides.
    values.pop("fsdp", None), values.pop("fsdp_config", None)
    values.update(scaling_arguments(config))
    cuda = choose_device(config.device).type == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    decided = {
        "output_dir": (str(output_dir), "checkpoints live in the run folder's checkpoints/"),
        "report_to": ("none", "figures go to metrics.json, the report and the model registry"),
        "push_to_hub": (False, "models go to the model registry (--register)"),
        # Each validation's history row is saved with its weights, so a resumed run continues from both.
        "save_strategy": (config.eval_strategy.value if evaluating else "epoch",
                          "a checkpoint is written with every validation, so a resumed run continues from it"),
        "save_only_model": (False, "a resumed run needs the optimiser and scheduler states"),
        "remove_unused_columns": (False, "batches hold only what the model takes"),
        "label_names": (["labels"], "-l/--label_names names the column; batches always call it labels"),
        "prediction_loss_only": (False, "metrics are computed from predicted probabilities"),
        "disable_tqdm": (not show_progress, "--no_progress decides"),
        "use_cpu": (not cuda, "-d/--device decides"),
        "bf16": (bf16, "bf16 on CUDA where supported, fp16 on older CUDA devices, full precision on the CPU"),
        "fp16": (cuda and not bf16, "bf16 on CUDA where supported, fp16 on older CUDA devices, full precision "
                 "on the CPU"),
        "resume_from_checkpoint": (None, "re-running the same command resumes by itself"),
        # One label per sequence, so a process's mean loss is already the loss to average; HF's cross-process
        # token count scales the classification loss by the process count (eval and test losses doubled on 2).
        "average_tokens_across_devices": (False, "one label per sequence: each process's mean loss is averaged"),
    }
    if config.eval_strategy is EvalStrategy.STEPS:
        decided["save_steps"] = (values.get("eval_steps") or values.get("logging_steps", 500),
                                 "a checkpoint is written with every validation")
    if not evaluating:
        decided["load_best_model_at_end"] = (False, "with eval_strategy no there is no validation to choose from")
    if cuda and values.get("optim", "adamw_torch_fused") == "adamw_torch":
        decided["optim"] = ("adamw_torch_fused", "fused AdamW on CUDA")
    for key, (value, why) in decided.items():
        if key in given and given[key] != value and not (key == "report_to" and given[key] in ([], "none", None)):
            _announce(key, given[key], value, why)
        values[key] = value
    try:
        (arguments,) = HfArgumentParser(TrainingArguments).parse_dict(values)
    except (ValueError, TypeError) as error:
        raise InputError("training arguments", str(error).strip().splitlines()[0]) from None
    return arguments


def _epoch(value: float) -> float | int:
    """Trainer's fractional epoch, as a whole number when it is one."""
    value = round(float(value), 4)
    return int(value) if value.is_integer() else value


class RunCallback(TrainerCallback):
    """This project's part of a run: history rows, best validation, divergence, collapse, resume state, hooks.

    Args:
        trainer: The run's trainer (its training loss is read at every validation).
        result: The result so far (a resumed run's history is in it).
        config: The run's settings.
        checkpoint_dir: Where the resume record goes.
        fingerprint: Identifies the run.
        validation: The trainer's ``compute_metrics`` (its collapse verdict is read here).
        on_epoch: Called with (validation number, history row) once that validation is checkpointed.
    """

    def __init__(self, trainer: ClassifierTrainer, result: FitResult, config: TrainConfig, checkpoint_dir: Path,
                 fingerprint: str, validation: Validation, on_epoch: Callable[[int, dict], None] | None):
        """Hold the run's parts."""
        self.trainer, self.result, self.config = trainer, result, config
        self.checkpoint_dir, self.fingerprint, self.validation, self.on_epoch = (checkpoint_dir, fingerprint,
                                                                                 validation, on_epoch)
        self.chance = math.log(trainer.model.config.num_labels)
        self.reported = len(result.history)
        self.last_loss = result.history[-1]["train_loss"] if result.history else float("nan")
        self.window_started = self.last_step_ended = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        """Count training loss from the (possibly resumed) current step."""
        self.trainer.steps_at_read = state.global_step
        self.window_started = self.last_step_ended = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """Note when training last stepped (a validation's time is not training time)."""
        self.last_step_ended = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        """Without validations, divergence is checked at every epoch's end."""
        if args.eval_strategy == "no" and state.global_step > self.trainer.steps_at_read:
            self._train_loss(state)

    def _train_loss(self, state) -> float:
        """The training loss since the last check (the last one again when no step was taken); raise if it diverged."""
        if state.global_step == self.trainer.steps_at_read:
            return self.last_loss
        loss = self.last_loss = self.trainer.read_train_loss(state.global_step)
        epoch = _epoch(state.epoch or 0)
        if not math.isfinite(loss):
            raise TrainingDiverged("learning_rate", f"training loss became {loss} by epoch {epoch}: "
                                   f"{self.config.learning_rate:g} is likely too high")
        if loss > DIVERGENCE_FACTOR * self.chance:
            raise TrainingDiverged("learning_rate", f"mean training loss {loss:.2f} by epoch {epoch} is over "
                                   f"{DIVERGENCE_FACTOR:g}× chance ({self.chance:.2f}): "
                                   f"{self.config.learning_rate:g} is likely too high")
        return loss

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        """One history row per validation; track the best; stop a collapsed run."""
        seconds = self.last_step_ended - self.window_started
        row = {"epoch": _epoch(state.epoch or 0), "train_loss": self._train_loss(state),
               "learning_rate": self.trainer.lr_scheduler.get_last_lr()[0], "epoch_seconds": seconds}
        row.update({f"eval_{name}": float(metrics[f"eval_{name}"]) for name in _ROW_METRICS})
        reason = self.validation.reason
        row[DEGENERATE] = float(reason is not None)
        result = self.result
        result.history.append(row)
        value = row[self.config.metric_for_best_model]
        better = value > result.best_value if higher_is_better(self.config) else value < result.best_value
        if result.best_index < 0 or better:
            result.best_index, result.best_value = len(result.history) - 1, value
        if self._collapse_check(reason):
            control.should_training_stop = True
        self.window_started = time.perf_counter()
        return control

    def on_save(self, args, state, control, **kwargs):
        """Record the checkpoint just written with the history up to it; then run the hook on new rows."""
        if state.is_world_process_zero:
            write_json_atomically(self.checkpoint_dir / STATE_FILE,
                                  self.result.to_state(self.fingerprint, f"checkpoint-{state.global_step}"))
            for index in range(self.reported, len(self.result.history)):
                self.reported = index + 1
                if self.on_epoch is not None:
                    try:
                        self.on_epoch(index + 1, self.result.history[index])
                    except PruneRun:
                        # A collapsed run stops here anyway, and its collapse is the reason to report.
                        if self.result.collapsed is None:
                            raise
        self.reported = len(self.result.history)
        return control

    def _collapse_check(self, reason: str | None) -> bool:
        """Record a collapse (or a late fall to one class); whether training should stop.

        Counted in epochs, so validating every N steps judges the same span as validating every epoch.
        """
        patience, result = self.config.collapse_epochs, self.result
        if not patience or reason is None:
            return False
        history = result.history
        epoch = history[-1]["epoch"]
        if not any(row.get(DEGENERATE) == 0 for row in history):
            # Never any signal: decide after `patience` epochs, or at the end of a shorter run.
            if epoch >= min(patience, self.config.num_train_epochs) - 1e-6:
                result.collapsed = collapse_message(reason, math.ceil(epoch - 1e-6), self.config.learning_rate)
                return True
            return False
        recent = [row for row in history if row["epoch"] > epoch - patience + 1e-6]
        if epoch >= patience - 1e-6 and len(recent) < len(history) and all(row.get(DEGENERATE) == 1 for row in recent):
            result.stopped_early = (f"stopped after epoch {epoch}: {reason} for {patience} epochs; "
                                    f"epoch {result.best_epoch} is kept")
            return True
        return False


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
        _announce("fsdp", True, sharding(trainer),
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
        trainer.add_callback(_QuietProgress)
    trainer.add_callback(RunCallback(trainer, result, config, checkpoint_dir, fingerprint, validation, on_epoch))
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
