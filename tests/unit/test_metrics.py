import numpy as np
import pytest
from sklearn import metrics

from genomenlp.components.training.metrics import classification_metrics


def test_binary_metrics_match_scikit_learn_on_fixed_predictions():
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    positive = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.2, 0.7, 0.3])
    probabilities = np.column_stack([1 - positive, positive])
    predicted = (positive > 0.5).astype(int)
    got = classification_metrics(labels, probabilities, "test_")
    assert got["test_accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted))
    assert got["test_mcc"] == pytest.approx(metrics.matthews_corrcoef(labels, predicted))
    assert got["test_f1"] == pytest.approx(metrics.f1_score(labels, predicted, average="weighted"))
    assert got["test_f1_macro"] == pytest.approx(metrics.f1_score(labels, predicted, average="macro"))
    # From probabilities, not hard labels: the curve is not degenerate.
    assert got["test_roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, positive))
    assert got["test_roc_auc"] != pytest.approx(metrics.roc_auc_score(labels, predicted))
    assert got["test_pr_auc"] == pytest.approx(metrics.average_precision_score(labels, positive))
    assert got["test_confusion_matrix"] == [[3, 1], [1, 3]]


def test_multiclass_roc_is_one_vs_rest():
    labels = np.array([0, 1, 2, 2, 1, 0])
    probabilities = np.array([[.7, .2, .1], [.2, .5, .3], [.1, .2, .7], [.3, .3, .4], [.5, .4, .1], [.6, .3, .1]])
    got = classification_metrics(labels, probabilities)
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, probabilities, multi_class="ovr"))
    assert np.array(got["confusion_matrix"]).sum() == 6


def test_single_class_split_gives_nan_auc_not_an_error():
    got = classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]))
    assert np.isnan(got["roc_auc"]) and got["accuracy"] == 0.5
