"""Figures of a training run: confusion matrix, ROC and PR curves (from probabilities), training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works on a machine without a display
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: list[list[int]], label_names: list[str], path: Path,
                          title: str = "Confusion matrix (test)") -> Path:
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
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of true class")
    return _save(figure, path)


def plot_roc_pr(labels: np.ndarray, probabilities: np.ndarray, label_names: list[str], directory: Path,
                positive: int = 0) -> list[Path]:
    """ROC and precision–recall curves of the positive class (one-vs-rest for every class above two).

    The positive class is named in the title, axes and legend, so nobody reads the curve of the
    other class by mistake.
    """
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    plt = _pyplot()
    labels = np.asarray(labels)
    two = len(label_names) == 2
    classes = [positive] if two else range(len(label_names))
    subject = f"positive class: {label_names[positive]}" if two else "one class vs rest"
    roc_figure, roc_axes = plt.subplots(figsize=(5.5, 5))
    pr_figure, pr_axes = plt.subplots(figsize=(5.5, 5))
    for column in classes:
        truth = (labels == column).astype(int)
        if truth.min() == truth.max():
            continue
        false_positive, true_positive, _ = roc_curve(truth, probabilities[:, column])
        precision, recall, _ = precision_recall_curve(truth, probabilities[:, column])
        name = label_names[column]
        roc_axes.plot(false_positive, true_positive, label=f"{name} (AUC {auc(false_positive, true_positive):.3f})")
        pr_axes.plot(recall, precision,
                     label=f"{name} (AP {average_precision_score(truth, probabilities[:, column]):.3f})")
        pr_axes.axhline(truth.mean(), color="grey", linestyle=":", linewidth=1,
                        label=f"chance ({name} share {truth.mean():.2f})")
    roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    named = f" ({label_names[positive]})" if two else ""
    roc_axes.set(xlabel=f"false positive rate{named}", ylabel=f"true positive rate{named}",
                 title=f"ROC (test), {subject}")
    pr_axes.set(xlabel=f"recall{named}", ylabel=f"precision{named}", title=f"Precision–recall (test), {subject}",
                ylim=(0, 1.02))
    roc_axes.legend(loc="lower right", title=subject)
    pr_axes.legend(loc="lower left", title=subject)
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


FOLD_METRICS = ("test_mcc", "test_roc_auc", "test_f1")
REFERENCE = "kmer_1_4"


def _sd(values: np.ndarray) -> float:
    return float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0


def bar_limits(series: list[np.ndarray]) -> tuple[float, float]:
    """A y range around the values and their mean ± sd, with a margin, so their differences show (not from 0)."""
    spread = [(np.nanmin(v), np.nanmax(v), np.nanmean(v), _sd(v)) for v in map(np.asarray, series)]
    low = min(min(lowest, mean - sd) for lowest, _, mean, sd in spread)
    high = max(max(highest, mean + sd) for _, highest, mean, sd in spread)
    margin = max(0.02, 0.15 * (high - low))
    return float(low - margin), float(high + margin)


def plot_folds(rows: list[dict], path: Path) -> Path:
    """Per-fold MCC, ROC-AUC and F1 of the model beside the 1–4-mer baseline, then their means ± sd.

    The y axis spans the values, not 0 to 1: a 0.59 against 0.61 gap must be visible. The baseline's
    mean is a reference line across each panel, and the legend sits below the panels, off the bars.
    """
    plt = _pyplot()
    figure, panels = plt.subplots(1, len(FOLD_METRICS), figsize=(13, 4.4))
    folds = np.arange(len(rows))
    mean_at = len(rows) + 0.5
    for axes, key in zip(panels, FOLD_METRICS, strict=True):
        model = np.array([row[key] for row in rows], dtype=float)
        baseline_key = f"{REFERENCE}_{key}"
        baseline = np.array([row[baseline_key] for row in rows], dtype=float) if baseline_key in rows[0] else None
        shown = [model] if baseline is None else [model, baseline]
        axes.bar(folds - 0.2, model, width=0.4, color="C0", label="model")
        axes.bar(mean_at - 0.2, np.nanmean(model), yerr=_sd(model), width=0.4, color="C0", edgecolor="black",
                 capsize=5, label="model mean ± sd")
        if baseline is not None:
            axes.bar(folds + 0.2, baseline, width=0.4, color="#b0b0b0", label="1–4-mer baseline")
            axes.bar(mean_at + 0.2, np.nanmean(baseline), yerr=_sd(baseline), width=0.4, color="#b0b0b0",
                     edgecolor="black", capsize=5, label="baseline mean ± sd")
            axes.axhline(np.nanmean(baseline), color="#555555", linestyle="--", linewidth=1.2,
                         label="baseline mean (reference)")
        axes.set_ylim(*bar_limits(shown))
        axes.set_xticks([*folds, mean_at], [*(str(row["fold"]) for row in rows), "mean"])
        title = key.removeprefix("test_").upper().replace("_", "-")
        axes.set(title=title, xlabel="fold", ylabel=f"{title} (axis not from 0)")
    handles, names = panels[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(figure, path, layout=False)


def plot_epoch_choice(choice: dict, path: Path) -> Path:
    """Mean ± sd over folds of the held-out selection metric after every epoch; the chosen epoch marked."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(7, 4))
    means, sds = np.asarray(choice["mean"]), np.asarray(choice["sd"])
    axes.errorbar(choice["epochs"], means, yerr=sds, marker="o", capsize=4,
                  label=f"mean ± sd over {len(choice['folds'])} folds")
    axes.axvline(choice["chosen_epoch"], color="grey", linestyle="--", linewidth=1,
                 label=f"chosen (epoch {choice['chosen_epoch']})")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    metric = choice["metric"].upper().replace("_", "-")
    axes.set(title=f"Epoch choice: held-out {metric} after each epoch", xlabel="epoch",
             ylabel=f"held-out {metric} (axis not from 0)")
    axes.legend()
    return _save(figure, path)


def figure_text(figure) -> str:
    """Every title, axis label and legend entry of a figure, one per line."""
    texts = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    for axes in figure.get_axes():
        texts += [axes.get_title(), axes.get_xlabel(), axes.get_ylabel()]
        legend = axes.get_legend()
        if legend is not None:
            texts += [legend.get_title().get_text(), *(text.get_text() for text in legend.get_texts())]
    return "\n".join(text for text in texts if text)


def _save(figure, path: Path, layout: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        figure.tight_layout()
    # The words on the figure travel in the PNG, so a test or a reader's tool can check what it shows.
    figure.savefig(path, dpi=110, metadata={"Description": figure_text(figure)})
    _pyplot().close(figure)
    return path
