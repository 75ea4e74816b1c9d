"""This project's part of a ``transformers.Trainer`` run, as one callback.

History rows and the ``name=value`` lines Katib reads, the best validation, divergence and collapse
detection, the resume record and a search's pruning hook.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from transformers import Trainer, TrainerCallback

from genomenlp.components.filenames import held_out_file, held_out_weights_file
from genomenlp.components.training.collapse import collapse_message
from genomenlp.components.training.config import TrainConfig, higher_is_better
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

    def __init__(self, trainer: Trainer, result: FitResult, config: TrainConfig, checkpoint_dir: Path,
                 fingerprint: str, validation: Callable[[object], dict], on_epoch: Callable[[int, dict], None] | None):
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
        """Stop after ``stop_at_epoch`` (still validated and saved there); without validations, check divergence."""
        if args.eval_strategy == "no" and state.global_step > self.trainer.steps_at_read:
            self._train_loss(state)
        stop = self.config.stop_at_epoch
        if stop is not None and (state.epoch or 0) >= stop - 1e-6:
            control.should_training_stop = True
        return control

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


class HeldOutTrace(TrainerCallback):
    """Class probabilities of held-out rows and the weights after every validation, for a cross-validation.

    A fold's model never sees these figures: they are written for the cross-validation, which chooses
    one epoch for all folds on their mean (the final model stops there, and each fold's weights of that
    epoch become an ensemble member). Files are named by the validation's number, so a resumed fold
    keeps the ones written before the interruption.

    Args:
        trainer: The run's trainer (its ``predict`` scores the rows).
        rows: A torch dataset of the held-out rows.
        directory: Where ``validation_NNN.npy`` files go (written by the first process only).
        result: The run's result, whose history length numbers the validations.
    """

    def __init__(self, trainer: Trainer, rows, directory: Path, result: FitResult):
        """Hold the run's parts."""
        self.trainer, self.rows, self.directory, self.result = trainer, rows, directory, result

    def on_evaluate(self, args, state, control, **kwargs):
        """Predict the held-out rows and gather the weights (every process takes part; the first writes the files)."""
        import numpy as np
        import torch
        from safetensors.torch import save_file

        output = self.trainer.predict(self.rows, metric_key_prefix="held_out")
        # Whole tensors even when FSDP shards them (a collective call); copies, so no two names share memory.
        weights = {name: tensor.detach().to("cpu", copy=True).contiguous()
                   for name, tensor in self.trainer.accelerator.get_state_dict(self.trainer.model).items()}
        if state.is_world_process_zero:
            logits = torch.from_numpy(np.asarray(output.predictions, dtype=np.float32))
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / held_out_file(len(self.result.history))
            temporary = path.with_name(f".{path.name}.tmp.npy")
            np.save(temporary, torch.softmax(logits, dim=-1).numpy())
            temporary.replace(path)
            path = self.directory / held_out_weights_file(len(self.result.history))
            temporary = path.with_name(f".{path.name}.tmp")
            save_file(weights, str(temporary), {"format": "pt"})
            temporary.replace(path)
        return control
