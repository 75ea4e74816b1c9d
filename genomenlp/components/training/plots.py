"""Figures of a training run: confusion matrix, ROC and PR curves (from probabilities), training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works on a machine without a display
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: list[list[int]], label_names: list[str], path: Path) -> Path:
    """Counts with row-normalised shading, one cell per (true, predicted) pair."""
    plt = _pyplot()
    counts = np.asarray(matrix)
    shares = counts / np.maximum(1, counts.sum(axis=1, keepdims=True))
    figure, axes = plt.subplots(figsize=(1.4 * len(label_names) + 2.5, 1.2 * len(label_names) + 2))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), value in np.ndenumerate(counts):
        axes.text(column, row, f"{value}\n{shares[row, column]:.0%}", ha="center", va="center",
                  color="white" if shares[row, column] > 0.6 else "black")
    axes.set_xticks(range(len(label_names)), label_names, rotation=30, ha="right")
    axes.set_yticks(range(len(label_names)), label_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix (test)")
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of true class")
    return _save(figure, path)


def plot_roc_pr(labels: np.ndarray, probabilities: np.ndarray, label_names: list[str], directory: Path) -> list[Path]:
    """ROC and precision–recall curves, one per class (one-vs-rest), chance marked."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    plt = _pyplot()
    classes = [1] if len(label_names) == 2 else range(len(label_names))
    roc_figure, roc_axes = plt.subplots(figsize=(5.5, 5))
    pr_figure, pr_axes = plt.subplots(figsize=(5.5, 5))
    for column in classes:
        truth = (labels == column).astype(int)
        if truth.min() == truth.max():
            continue
        false_positive, true_positive, _ = roc_curve(truth, probabilities[:, column])
        precision, recall, _ = precision_recall_curve(truth, probabilities[:, column])
        roc_axes.plot(false_positive, true_positive,
                      label=f"{label_names[column]} (AUC {auc(false_positive, true_positive):.3f})")
        pr_axes.plot(recall, precision, label=f"{label_names[column]} (AUC {auc(recall, precision):.3f})")
        pr_axes.axhline(truth.mean(), color="grey", linestyle=":", linewidth=1)
    roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    roc_axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    pr_axes.set(xlabel="recall", ylabel="precision", title="Precision–recall (test)", ylim=(0, 1.02))
    roc_axes.legend(loc="lower right")
    pr_axes.legend(loc="lower left")
    return [_save(roc_figure, directory / "roc.png"), _save(pr_figure, directory / "pr.png")]


def plot_history(history: list[dict], path: Path, best_epoch: int | None = None) -> Path:
    """Loss, F1/MCC and learning rate over epochs; the chosen epoch marked."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    figure, (loss_axes, score_axes, rate_axes) = plt.subplots(1, 3, figsize=(14, 4))
    loss_axes.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
    loss_axes.plot(epochs, [row["eval_loss"] for row in history], marker="o", label="valid")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    for key, name in (("eval_f1", "F1 (weighted)"), ("eval_mcc", "MCC"), ("eval_roc_auc", "ROC-AUC")):
        score_axes.plot(epochs, [row[key] for row in history], marker="o", label=name)
    score_axes.set(xlabel="epoch", ylabel="valid score", title="Validation")
    rate_axes.plot(epochs, [row["learning_rate"] for row in history], marker="o")
    rate_axes.set(xlabel="epoch", ylabel="learning rate (end of epoch)", title="Learning rate")
    from matplotlib.ticker import MaxNLocator

    for axes in (loss_axes, score_axes, rate_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axes in (loss_axes, score_axes):
        if best_epoch:
            axes.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"chosen (epoch {best_epoch})")
        axes.legend()
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)
    return path
