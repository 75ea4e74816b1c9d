import numpy as np
import pytest
from sklearn import metrics

from genomenlp.components.errors import InputError
from genomenlp.components.training.metrics import classification_metrics, positive_index, roc_points


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
    # The first class is the positive one unless another is named: PR-AUC is not symmetric.
    assert got["test_pr_auc"] == pytest.approx(metrics.average_precision_score(labels == 0, 1 - positive))
    second = classification_metrics(labels, probabilities, "test_", positive=1)
    assert second["test_pr_auc"] == pytest.approx(metrics.average_precision_score(labels, positive))
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


def test_positive_class_defaults_to_the_first_class_and_refuses_an_unknown_name():
    names = ["promoter", "non_promoter"]
    assert positive_index(names, None) == 0
    assert positive_index(names, "non_promoter") == 1
    with pytest.raises(InputError, match="--positive_label.*'enhancer' is not a class"):
        positive_index(names, "enhancer")
    labels = np.array([0, 0, 0, 1, 1, 0])
    probabilities = np.array([[.9, .1], [.8, .2], [.4, .6], [.3, .7], [.55, .45], [.7, .3]])
    first, second = (classification_metrics(labels, probabilities, positive=p)["pr_auc"] for p in (0, 1))
    assert first == pytest.approx(metrics.average_precision_score(labels == 0, probabilities[:, 0]))
    assert second == pytest.approx(metrics.average_precision_score(labels == 1, probabilities[:, 1]))
    assert first != pytest.approx(second)


def test_roc_points_follow_the_positive_class():
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[.9, .1], [.6, .4], [.3, .7], [.45, .55]])
    first, second = roc_points(labels, probabilities, 0), roc_points(labels, probabilities, 1)
    # Each curve is scored by its own class's column: the thresholds are that column's values.
    assert {round(p["threshold"], 2) for p in first} <= {1.0, .9, .6, .45, .3}
    assert {round(p["threshold"], 2) for p in second} <= {1.0, .1, .4, .7, .55}
    assert min(p["threshold"] for p in second) < 0.2 < min(p["threshold"] for p in first)
