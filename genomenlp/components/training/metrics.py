"""Evaluation figures from class probabilities (never from hard labels alone)."""

from __future__ import annotations

import numpy as np

from genomenlp.components.errors import InputError


def positive_index(names: list[str], positive_label: str | None) -> int:
    """Label id of the positive class: ``positive_label``, else the first class (the first class file given).

    Raises:
        InputError: ``positive_label`` is not one of ``names``.
    """
    if positive_label is None:
        return 0
    if positive_label not in names:
        raise InputError("--positive_label", f"{positive_label!r} is not a class of this dataset: one of {names}")
    return names.index(positive_label)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, prefix: str = "",
                           positive: int = 0) -> dict:
    """Accuracy, precision/recall/F1 (macro and weighted), MCC, ROC-AUC, PR-AUC and the confusion matrix.

    ROC-AUC and PR-AUC use the probabilities: the positive class's for two classes, one-vs-rest
    macro averages above that. ``f1`` is the weighted F1, as the original toolkit reports it.

    Args:
        labels: True class ids, shape (n,).
        probabilities: Class probabilities, shape (n, classes).
        prefix: Put before every key (``eval_``, ``test_``).
        positive: The positive class of two (PR-AUC depends on it; the first class, the class of interest).
    """
    from sklearn import metrics

    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    everything = list(range(classes))
    figures = {
        "accuracy": metrics.accuracy_score(labels, predicted),
        "precision_macro": metrics.precision_score(labels, predicted, average="macro", labels=everything,
                                                   zero_division=0),
        "recall_macro": metrics.recall_score(labels, predicted, average="macro", labels=everything, zero_division=0),
        "f1_macro": metrics.f1_score(labels, predicted, average="macro", labels=everything, zero_division=0),
        "precision_weighted": metrics.precision_score(labels, predicted, average="weighted", labels=everything,
                                                      zero_division=0),
        "recall_weighted": metrics.recall_score(labels, predicted, average="weighted", labels=everything,
                                                zero_division=0),
        "f1_weighted": metrics.f1_score(labels, predicted, average="weighted", labels=everything, zero_division=0),
        "mcc": metrics.matthews_corrcoef(labels, predicted),
        "roc_auc": float("nan"),
        "pr_auc": float("nan"),
    }
    figures["f1"] = figures["f1_weighted"]
    present = np.unique(labels)
    if len(present) > 1:
        if classes == 2:
            truth = (labels == positive).astype(int)
            figures["roc_auc"] = metrics.roc_auc_score(truth, probabilities[:, positive])
            figures["pr_auc"] = metrics.average_precision_score(truth, probabilities[:, positive])
        else:
            one_hot = np.eye(classes)[labels]
            columns = [c for c in everything if 0 < one_hot[:, c].sum() < len(labels)]
            figures["roc_auc"] = metrics.roc_auc_score(one_hot[:, columns], probabilities[:, columns], average="macro")
            figures["pr_auc"] = metrics.average_precision_score(one_hot[:, columns], probabilities[:, columns],
                                                                average="macro")
    result = {f"{prefix}{name}": float(value) for name, value in figures.items()}
    result[f"{prefix}confusion_matrix"] = metrics.confusion_matrix(labels, predicted, labels=everything).tolist()
    return result


def roc_points(labels: np.ndarray, probabilities: np.ndarray, positive: int = 0, limit: int = 200) -> list[dict]:
    """The ROC curve of class ``positive`` against the rest, as at most ``limit`` points.

    The first class is the positive one by default: the class of interest is the first class
    file a user gives (``promoter`` in the tutorial).

    Returns:
        ``{"threshold", "fpr", "tpr"}`` rows in order of decreasing threshold (empty with one class).
    """
    from sklearn.metrics import roc_curve

    truth = np.asarray(labels) == positive
    if truth.all() or not truth.any():
        return []
    false_positive, true_positive, thresholds = roc_curve(truth, np.asarray(probabilities)[:, positive])
    keep = np.unique(np.linspace(0, len(thresholds) - 1, min(limit, len(thresholds))).round().astype(int))
    # roc_curve's first threshold is +inf (nothing predicted positive); JSON has no infinity.
    return [{"threshold": float(min(thresholds[i], 1.0)), "fpr": float(false_positive[i]),
             "tpr": float(true_positive[i])} for i in keep]
