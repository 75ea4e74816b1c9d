"""The Kubeflow dashboard views built from the steps' outputs: stable names, numbers only, escaped HTML."""

import math

from genomenlp.components import dashboard_views as views

METRICS = {
    "test_mcc": 0.6, "test_roc_auc": 0.9, "test_pr_auc": 0.88, "test_f1_weighted": 0.8, "test_f1": 0.8,
    "test_accuracy": 0.8, "best_epoch": 3, "epochs_run": 4, "train_seconds": 12.5,
    "label_names": ["promoter", "<b>non</b>"], "test_confusion_matrix": [[40, 10], [8, 42]],
    "test_roc_curve": [{"threshold": 1.0, "fpr": 0.0, "tpr": 0.0}, {"threshold": 0.2, "fpr": 0.4, "tpr": 0.9}],
    "roc_positive_label": "promoter",
    "baselines": {"kmer_1_4": {"test_mcc": 0.55, "test_roc_auc": 0.85}, "gc_content": {"test_mcc": 0.5}},
}


def test_training_scalars_have_stable_names_and_the_margin():
    scalars = views.training_scalars(METRICS)
    assert scalars["test_mcc_margin_over_kmer"] == 0.6 - 0.55
    assert scalars["baseline_kmer_test_mcc"] == 0.55 and scalars["baseline_gc_test_mcc"] == 0.5
    assert all(isinstance(value, float) for value in scalars.values())


def test_nan_figures_are_left_out_rather_than_breaking_the_comparison_view():
    scalars = views.training_scalars({**METRICS, "test_roc_auc": float("nan"), "baselines": {}})
    assert "test_roc_auc" not in scalars and "test_mcc_margin_over_kmer" not in scalars
    assert all(math.isfinite(value) for value in scalars.values())


def test_class_names_are_escaped_in_html_and_a_loss_is_said_plainly():
    page = views.training_html({**METRICS, "test_mcc": 0.5})
    assert "<b>non</b>" not in page and "&lt;b&gt;non&lt;/b&gt;" in page
    assert "Does not beat the 1–4-mer baseline" in page


def test_classification_view_keeps_label_order_and_the_roc_points():
    view = views.classification_view(METRICS)
    assert view["labels"] == ["promoter", "<b>non</b>"] and view["matrix"] == [[40, 10], [8, 42]]
    assert view["roc"][-1] == {"threshold": 0.2, "fpr": 0.4, "tpr": 0.9} and view["positive"] == "promoter"


def test_a_katib_sweep_names_its_experiment_and_best_trial():
    text = views.sweep_markdown({"learning_rate": 0.001}, [{"experiment": "tiny-ab12cd", "best_trial": "t-1",
                                                            "eval_f1": 0.8, "trials": 2}])
    assert "Katib Experiment `tiny-ab12cd`" in text and "best trial `t-1`" in text
    assert "| learning_rate | 0.001 |" in text


def test_markdown_cells_cannot_break_the_table():
    text = views.table_markdown("T", [{"a": "x|y\nz"}])
    assert "x\\|y z" in text


def test_a_collapsed_model_says_so_on_its_page_and_in_its_scalars():
    assert "COLLAPSED" in views.training_html({**METRICS, "collapsed": True})
    assert "COLLAPSED" not in views.training_html(METRICS)
    assert views.training_scalars({**METRICS, "collapsed": True})["collapsed"] == 1.0
