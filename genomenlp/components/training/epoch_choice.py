"""The epoch count chosen on a cross-validation's held-out folds rather than on the small validation split.

Every fold records its held-out rows' probabilities after each validation (``held_out/``). For each
whole epoch the selection metric (``metric_for_best_model`` without ``eval_``) is computed per fold
and averaged. The chosen epoch is the latest whose mean is within one standard error (sd over folds
/ √folds) of the best mean: epochs the folds cannot tell apart are equally good on their evidence,
and the later one sits further down the decaying learning-rate schedule, so its weights, and with
them its decision threshold, are more settled. (Stopped at epoch 6 of 8, one seed's model scored
test MCC 0.613; at epoch 7, 0.728, with the same ROC-AUC: mid-schedule weights swing.) Training
that over-fits shows as a mean falling by more than that, and then an earlier epoch is chosen.

Thousands of held-out rows decide instead of the few hundred of one validation split, and a model
trained on all the training rows with the same schedule, stopped at that epoch (``stop_at_epoch``),
is the procedure the cross-validated figures describe.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from genomenlp.components.errors import InputError
from genomenlp.components.filenames import HELD_OUT_DIR, HISTORY_FILE, held_out_file
from genomenlp.components.training.config import TrainConfig, higher_is_better
from genomenlp.components.training.metrics import classification_metrics


def held_out_figures(labels: np.ndarray, probabilities: np.ndarray, positive: int) -> dict:
    """``test_``-named figures of held-out rows, cross-entropy (``test_loss``) included."""
    figures = classification_metrics(labels, probabilities, "test_", positive)
    chosen = np.clip(probabilities[np.arange(len(labels)), np.asarray(labels, dtype=int)], 1e-12, 1.0)
    figures["test_loss"] = float(-np.log(chosen).mean())
    return figures


def fold_trace(fold_dir: Path, labels: np.ndarray, positive: int) -> list[dict]:
    """``{"epoch", "validation", "figures"}`` of each validation of a finished fold with held-out probabilities kept."""
    history = fold_dir / HISTORY_FILE
    if not history.is_file():
        return []
    with history.open(newline="") as handle:
        epochs = [float(row["epoch"]) for row in csv.DictReader(handle)]
    trace = []
    for number, epoch in enumerate(epochs, start=1):
        path = fold_dir / HELD_OUT_DIR / held_out_file(number)
        if not path.is_file():
            continue
        probabilities = np.load(path, allow_pickle=False)
        if len(probabilities) != len(labels):
            raise InputError(str(path), f"holds {len(probabilities)} rows, the fold holds out {len(labels)}")
        trace.append({"epoch": int(epoch) if epoch.is_integer() else epoch, "validation": number,
                      "figures": held_out_figures(labels, probabilities, positive)})
    return trace


def choose_epoch(traces: dict[int, list[dict]], config: TrainConfig) -> dict | None:
    """The latest whole epoch whose mean held-out selection metric is within one standard error of the best.

    Args:
        traces: Per fold, its :func:`fold_trace` (collapsed folds left out by the caller).
        config: The folds' settings (``metric_for_best_model`` and its direction).

    Returns:
        ``metric``, ``folds``, per-epoch ``epochs``/``mean``/``sd``, ``best_epoch`` (best mean), ``tolerance`` (its
        standard error) and ``chosen_epoch`` (of ``num_train_epochs``), or ``None`` when no whole epoch was
        validated in every fold.
    """
    metric = config.metric_for_best_model.removeprefix("eval_")
    used = {fold: trace for fold, trace in traces.items() if trace}
    if not used:
        return None
    by_epoch = [{row["epoch"]: row["figures"][f"test_{metric}"] for row in trace if isinstance(row["epoch"], int)}
                for trace in used.values()]
    epochs = sorted(set.intersection(*(set(values) for values in by_epoch)))
    if not epochs:
        return None
    values = np.array([[fold[epoch] for fold in by_epoch] for epoch in epochs], dtype=float)
    means = values.mean(axis=1)
    sds = values.std(axis=1, ddof=1) if values.shape[1] > 1 else np.zeros(len(epochs))
    # Signed so that larger is better whatever the metric's direction.
    sign = 1.0 if higher_is_better(config) else -1.0
    best = int(np.argmax(sign * means))
    tolerance = float(sds[best] / np.sqrt(values.shape[1]))
    chosen = max(index for index in range(len(epochs)) if sign * means[index] >= sign * means[best] - tolerance)
    return {"metric": metric, "folds": sorted(used), "epochs": epochs, "mean": means.tolist(), "sd": sds.tolist(),
            "best_epoch": epochs[best], "tolerance": tolerance, "chosen_epoch": epochs[chosen],
            "num_train_epochs": config.num_train_epochs}


def figures_at(trace: list[dict], epoch: int | None) -> dict | None:
    """A fold's held-out figures after ``epoch`` (``None``: the fold has none for it)."""
    return next((row["figures"] for row in trace if row["epoch"] == epoch), None)


def describe_choice(choice: dict, rows: int | None = None) -> str:
    """One line: the epoch, out of how many, chosen on what."""
    scored = f" ({rows:,} held-out rows)" if rows else ""
    rule = ("the best" if choice["chosen_epoch"] == choice["best_epoch"]
            else f"within one standard error of the best, epoch {choice['best_epoch']}")
    return (f"epoch {choice['chosen_epoch']} of {choice['num_train_epochs']}, chosen on the mean held-out "
            f"{choice['metric']} of {len(choice['folds'])} cross-validation folds{scored} ({rule})")


def stop_epoch_from(cv_result: dict | None, config: TrainConfig) -> dict:
    """Where a final model trained with ``config`` should stop after ``cv_result``, and why, as ``epoch_choice``.

    The chosen epoch carries over only when the folds trained as many epochs (the same schedule) as
    the final model.

    Returns:
        ``stop_at_epoch`` (``None``: choose on the validation split as usual) and ``note``, one line.
    """
    choice = (cv_result or {}).get("epoch_choice")
    if not choice:
        return {"stop_at_epoch": None, "note": "no epoch was chosen by cross-validation"}
    folds_trained = choice["num_train_epochs"]
    if folds_trained != config.num_train_epochs:
        return {"stop_at_epoch": None, "note": f"the cross-validation folds trained {_epochs(folds_trained)} and this "
                f"model {_epochs(config.num_train_epochs)}, so their choice does not apply"}
    return {"stop_at_epoch": choice["chosen_epoch"], "note": describe_choice(choice, cv_result.get("held_out_rows"))}


def checkpoint_choice(metrics: dict) -> str:
    """Which epoch's weights a trained model holds, and what chose it, from its ``metrics.json``."""
    epoch = metrics.get("model_epoch", metrics.get("best_epoch"))
    if epoch is None:
        return "checkpoint: not recorded"
    choice = metrics.get("epoch_choice") or {}
    if choice.get("stop_at_epoch") is not None:
        return f"checkpoint: {choice['note']}"
    if metrics.get("stop_at_epoch") is not None:
        return f"checkpoint: epoch {epoch}, where stop_at_epoch stopped training"
    chosen = ("chosen on the validation split" if epoch == metrics.get("best_epoch", epoch)
              else "the last (not chosen)")
    why = f"; {choice['note']}" if choice.get("note") else ""
    return f"checkpoint: epoch {epoch} of {metrics.get('epochs_run', '?')}, {chosen}{why}"


def _epochs(count: int) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"
