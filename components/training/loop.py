"""The training loop: AdamW with warm-up and linear decay, per-epoch validation, checkpoints and resume.

Data order and dropout are seeded from (seed, epoch), so a run resumed from the checkpoint of
epoch n continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.errors import InputError
from components.training.collapse import collapse_message, degenerate_reason
from components.training.config import TrainConfig, higher_is_better
from components.training.data import EncodedSplit, batches
from components.training.metrics import classification_metrics
from components.training.optim import adamw, autocast_dtype, choose_device, linear_warmup_schedule, to_device

# An epoch whose mean training loss is this many times chance level (ln of the class count) is
# not learning but blowing up: stop it rather than spend the remaining epochs.
DIVERGENCE_FACTOR = 4.0
# History column: 1 when that epoch's validation predictions were one class or at chance (a Katib
# metric line too, so its early stopping can act on it).
DEGENERATE = "eval_degenerate"
STATE_FILE = "state.json"
LAST_WEIGHTS = "last.safetensors"
BEST_WEIGHTS = "best.safetensors"
OPTIMIZER_FILE = "optimizer.pt"


class TrainingDiverged(InputError):
    """The loss became NaN or infinite (usually a learning rate far too high)."""


class PruneRun(Exception):
    """Raised by an ``on_epoch`` callback to stop a run after this epoch (a search pruning a poor trial)."""


@dataclass
class FitResult:
    """What training produced: per-epoch history, the epoch chosen on validation, and why it stopped early.

    Attributes:
        collapsed: Set when no epoch ever showed signal (see ``components.training.collapse``).
        stopped_early: Set when a run that had shown signal fell to one class or chance for good.
    """

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float = float("nan")
    resumed_from: int = 0
    collapsed: str | None = None
    stopped_early: str | None = None


def predict_probabilities(model, split: EncodedSplit, batch_size: int, pad_id: int, device) -> tuple[np.ndarray, float]:
    """Class probabilities for every row and the mean cross-entropy loss."""
    import torch

    model.eval()
    dtype = autocast_dtype(device)
    outputs, losses = [], []
    with torch.inference_mode():
        for ids, mask, labels in batches(split, batch_size, pad_id):
            ids_t, mask_t, labels_t = (to_device(array, device) for array in (ids, mask, labels))
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                result = model(input_ids=ids_t, attention_mask=mask_t, labels=labels_t)
            outputs.append(torch.softmax(result.logits.float(), dim=-1).cpu().numpy())
            losses.append(float(result.loss) * len(labels))
    return np.concatenate(outputs), sum(losses) / len(split)


def evaluate(model, split: EncodedSplit, batch_size: int, pad_id: int, device, prefix: str) -> tuple[dict, np.ndarray]:
    """Metrics (``prefix``-named, loss included) and probabilities on one split."""
    probabilities, loss = predict_probabilities(model, split, batch_size, pad_id, device)
    figures = classification_metrics(split.labels, probabilities, prefix)
    figures[f"{prefix}loss"] = loss
    return figures, probabilities


def _save_state(directory: Path, model, optimizer, scheduler, result: FitResult, epoch: int, fingerprint: str) -> None:
    import torch
    from safetensors.torch import save_model

    temporary = directory / f".{LAST_WEIGHTS}.tmp"
    save_model(model, str(temporary))
    os.replace(temporary, directory / LAST_WEIGHTS)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               directory / f".{OPTIMIZER_FILE}.tmp")
    os.replace(directory / f".{OPTIMIZER_FILE}.tmp", directory / OPTIMIZER_FILE)
    state = {"epoch": epoch, "fingerprint": fingerprint, "history": result.history,
             "best_epoch": result.best_epoch, "best_value": result.best_value}
    (directory / f".{STATE_FILE}.tmp").write_text(json.dumps(state))
    os.replace(directory / f".{STATE_FILE}.tmp", directory / STATE_FILE)


def _load_state(directory: Path, model, optimizer, scheduler, fingerprint: str) -> tuple[int, FitResult]:
    """Resume from ``directory``; a damaged checkpoint is one line saying how to start afresh."""
    from components.training.checkpoint import unreadable_checkpoint_is_input_error

    with unreadable_checkpoint_is_input_error(directory):
        return _read_state(directory, model, optimizer, scheduler, fingerprint)


def _read_state(directory: Path, model, optimizer, scheduler, fingerprint: str) -> tuple[int, FitResult]:
    import torch
    from safetensors.torch import load_model

    path = directory / STATE_FILE
    if not path.exists():
        return 0, FitResult()
    state = json.loads(path.read_text())
    if state["fingerprint"] != fingerprint:
        raise InputError(str(directory), "holds checkpoints of a different run (other data or settings); "
                         "use a new output folder or --overwrite")
    load_model(model, str(directory / LAST_WEIGHTS))
    # weights_only: the optimizer file is plain tensors and numbers, never arbitrary objects.
    saved = torch.load(directory / OPTIMIZER_FILE, weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    result = FitResult(state["history"], state["best_epoch"], state["best_value"], resumed_from=state["epoch"])
    return state["epoch"], result


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
) -> FitResult:
    """Train, validating after every epoch; keep the best epoch's weights in ``checkpoint_dir``.

    Args:
        model: A freshly built classifier.
        train: Training rows.
        valid: Validation rows (the checkpoint is chosen on these, never on test).
        config: Optimisation settings.
        pad_id: Id of ``<pad>``.
        checkpoint_dir: Where the last and best weights live; a previous state there is resumed.
        fingerprint: Identifies the run; a checkpoint of another run is refused.
        on_epoch: Called with (epoch, history row) after each epoch; may raise to stop (pruning).
        show_progress: Show a progress bar per epoch.

    A run whose first ``config.collapse_epochs`` validations (fewer when it has fewer epochs) are all
    degenerate stops with ``collapsed`` set; one that showed signal and then stays degenerate for that
    many epochs stops with ``stopped_early`` set, keeping its best epoch.

    Raises:
        TrainingDiverged: The training loss became NaN or infinite.
    """
    import torch

    from components.progress import progress

    device = choose_device(config.device)
    model.to(device)
    torch.manual_seed(config.seed)
    optimizer = adamw(model, config.learning_rate, config.weight_decay, (config.adam_beta1, config.adam_beta2),
                      config.adam_epsilon, device)
    steps_per_epoch = math.ceil(len(train) / config.per_device_train_batch_size)
    scheduler = linear_warmup_schedule(optimizer, steps_per_epoch * config.num_train_epochs, config.warmup_ratio)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    start_epoch, result = _load_state(checkpoint_dir, model, optimizer, scheduler, fingerprint)
    dtype = autocast_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
    better = higher_is_better(config)

    for epoch in range(start_epoch + 1, config.num_train_epochs + 1):
        model.train()
        torch.manual_seed(config.seed * 1000 + epoch)
        rng = np.random.default_rng([config.seed, epoch])
        running, seen = 0.0, 0
        epoch_started = time.perf_counter()
        stream = batches(train, config.per_device_train_batch_size, pad_id, rng)
        for ids, mask, labels in progress(stream, f"epoch {epoch}/{config.num_train_epochs}", show_progress,
                                          steps_per_epoch):
            ids_t, mask_t, labels_t = (to_device(array, device) for array in (ids, mask, labels))
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = model(input_ids=ids_t, attention_mask=mask_t, labels=labels_t).loss
            if not torch.isfinite(loss):
                raise TrainingDiverged("learning_rate", f"training loss became {float(loss)} in epoch {epoch}: "
                                       f"{config.learning_rate:g} is likely too high")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running += float(loss.detach()) * len(labels)
            seen += len(labels)
        chance = math.log(model.config.num_labels)
        if running / seen > DIVERGENCE_FACTOR * chance:
            raise TrainingDiverged("learning_rate", f"mean training loss {running / seen:.2f} in epoch {epoch} is over "
                                   f"{DIVERGENCE_FACTOR:g}× chance ({chance:.2f}): "
                                   f"{config.learning_rate:g} is likely too high")
        figures, probabilities = evaluate(model, valid, config.per_device_eval_batch_size, pad_id, device, "eval_")
        row = {"epoch": epoch, "train_loss": running / seen, "learning_rate": scheduler.get_last_lr()[0],
               "epoch_seconds": time.perf_counter() - epoch_started}
        row.update({k: v for k, v in figures.items() if k != "eval_confusion_matrix"})
        reason = degenerate_reason(valid.labels, probabilities, figures["eval_f1"])
        row[DEGENERATE] = float(reason is not None)
        result.history.append(row)
        value = row[config.metric_for_best_model]
        if result.best_epoch == 0 or (value > result.best_value if better else value < result.best_value):
            from safetensors.torch import save_model

            save_model(model, str(checkpoint_dir / f".{BEST_WEIGHTS}.tmp"))
            os.replace(checkpoint_dir / f".{BEST_WEIGHTS}.tmp", checkpoint_dir / BEST_WEIGHTS)
            result.best_epoch, result.best_value = epoch, value
        _save_state(checkpoint_dir, model, optimizer, scheduler, result, epoch, fingerprint)
        stop = _collapse_check(result, reason, config)
        if on_epoch is not None:
            try:
                on_epoch(epoch, row)
            except PruneRun:
                # A collapsed run stops here anyway, and its collapse is the reason to report.
                if result.collapsed is None:
                    raise
        if stop:
            break
    return result


def _collapse_check(result: FitResult, reason: str | None, config: TrainConfig) -> bool:
    """Record a collapse (or a late fall to one class) in ``result``; whether training should stop."""
    patience = config.collapse_epochs
    if not patience or reason is None:
        return False
    history = result.history
    if not any(row.get(DEGENERATE) == 0 for row in history):
        # Never any signal: decide after `patience` epochs, or at the end of a shorter run.
        if len(history) >= min(patience, config.num_train_epochs):
            result.collapsed = collapse_message(reason, len(history), config.learning_rate)
            return True
        return False
    if len(history) >= patience and all(row.get(DEGENERATE) == 1 for row in history[-patience:]):
        result.stopped_early = (f"stopped after epoch {history[-1]['epoch']}: {reason} for {patience} epochs; "
                                f"epoch {result.best_epoch} is kept")
        return True
    return False
