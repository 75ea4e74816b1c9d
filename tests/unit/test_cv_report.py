"""The cross-validation page tells the truth: a red banner when the model loses or collapses, bars that show
the gap, a per-fold table with the baselines, and a confusion matrix pooled over the folds."""

import numpy as np
import pytest
from PIL import Image

from genomenlp.components.training.cross_validation import _mean_sd
from genomenlp.components.training.plots import bar_limits, plot_confusion_matrix, plot_folds
from genomenlp.components.training.report import cv_warnings, write_cv_report


def synthetic_result(model_mcc, baseline_mcc, collapsed=None):
    """A ``cv_metrics.json`` as cross_validate writes it, from per-fold model and 1–4-mer MCCs."""
    rows = []
    for fold, (model, baseline) in enumerate(zip(model_mcc, baseline_mcc, strict=True)):
        rows.append({"fold": fold, "train_rows": 900, "test_rows": 300, "best_epoch": 2,
                     "collapsed": (collapsed or {}).get(fold, ""),
                     "test_mcc": model, "test_roc_auc": 0.8 + model / 10, "test_pr_auc": 0.8, "test_f1": 0.8,
                     "test_f1_macro": 0.8, "test_accuracy": 0.8,
                     "gc_content_test_mcc": 0.3, "gc_content_test_roc_auc": 0.7, "gc_content_test_f1": 0.6,
                     "kmer_1_4_test_mcc": baseline, "kmer_1_4_test_roc_auc": 0.8 + baseline / 10,
                     "kmer_1_4_test_f1": 0.8})
    numeric = [key for key in rows[0] if key not in ("fold", "collapsed")]
    return {"folds": rows, "summary": {key: _mean_sd([row[key] for row in rows]) for key in numeric},
            "k": len(rows), "seed": 1, "model": {}, "training": {},
            "collapsed_folds": [row["fold"] for row in rows if row["collapsed"]],
            "label_names": ["promoter", "non_promoter"], "pooled_confusion_matrix": [[10, 2], [3, 9]]}


def page_of(result, tmp_path):
    figures = [plot_folds(result["folds"], tmp_path / "folds.png"),
               plot_confusion_matrix(result["pooled_confusion_matrix"], result["label_names"], tmp_path / "m.png")]
    return write_cv_report(tmp_path / "report.html", result, figures).read_text()


def test_no_banner_when_the_model_beats_the_baseline(tmp_path):
    page = page_of(synthetic_result([0.70, 0.72, 0.68], [0.60, 0.61, 0.62]), tmp_path)
    assert "flag banner" not in page and "⚠" not in page
    assert "beats the 1–4-mer baseline on mean MCC over 3 folds, by 0.090 (ahead in 3 of 3 folds)" in page


def test_red_banner_when_the_model_does_not_beat_the_baseline(tmp_path):
    # The case: 0.593 ± 0.020 against 0.606 must not pass silently.
    result = synthetic_result([0.573, 0.593, 0.613], [0.606, 0.600, 0.612])
    assert [headline for headline, _ in cv_warnings(result)] == ["DOES NOT BEAT THE BASELINE"]
    page = page_of(result, tmp_path)
    assert '<p class="flag banner">⚠ DOES NOT BEAT THE BASELINE: mean MCC 0.593 ± 0.020' in page
    assert "0.606 ±" in page and "beats the 1–4-mer baseline" not in page
    assert page.index("flag banner") < page.index("<h2>Mean ± sd")


def test_a_model_at_mcc_zero_is_flagged_even_against_a_worse_baseline(tmp_path):
    result = synthetic_result([0.0, 0.0], [-0.02, -0.01])
    assert [headline for headline, _ in cv_warnings(result)] == ["NO BETTER THAN CHANCE"]
    assert "⚠ NO BETTER THAN CHANCE: mean MCC 0.000" in page_of(result, tmp_path)


def test_red_banner_when_any_fold_collapsed_even_if_the_mean_wins(tmp_path):
    result = synthetic_result([0.9, 0.9, 0.0], [0.5, 0.5, 0.5],
                              collapsed={2: "collapsed: every validation prediction is class <0> & more"})
    assert [headline for headline, _ in cv_warnings(result)] == ["COLLAPSED"]
    page = page_of(result, tmp_path)
    assert "⚠ COLLAPSED: 1 of 3 folds (2): collapsed: every validation prediction is class &lt;0&gt; &amp; more" in page
    assert "<0>" not in page


def test_per_fold_table_shows_every_baseline_column_and_flags_losing_folds(tmp_path):
    page = page_of(synthetic_result([0.70, 0.50], [0.60, 0.61]), tmp_path)
    table = page[page.index('<table class="folds">'):]
    table = table[:table.index("</table>")]
    for column in ("model MCC", "model ROC-AUC", "1–4-mer MCC", "1–4-mer ROC-AUC", "1–4-mer F1", "GC MCC", "GC F1"):
        assert f">{column}</th>" in table, column
    assert '<td class="flag">0.500</td>' in table and "<td>0.700</td>" in table
    assert "900 / 300" in table


def test_fold_bars_do_not_start_at_zero_and_show_the_gap_with_a_reference_line(tmp_path):
    low, high = bar_limits([np.array([0.573, 0.593, 0.613]), np.array([0.606, 0.600, 0.612])])
    assert 0.5 < low < 0.57 and 0.62 < high < 0.7  # a 0.013 gap is a visible share of the axis
    words = Image.open(plot_folds(synthetic_result([0.573, 0.593, 0.613], [0.606, 0.600, 0.612])["folds"],
                                  tmp_path / "folds.png")).text["Description"]
    for entry in ("model mean ± sd", "baseline mean ± sd", "baseline mean (reference)", "MCC (axis not from 0)"):
        assert entry in words, words


@pytest.mark.parametrize("names", [["promoter", "non_promoter"], ["a", "b", "c"]])
def test_pooled_confusion_matrix_plot_is_titled_as_pooled(tmp_path, names):
    matrix = np.arange(len(names) ** 2).reshape(len(names), -1).tolist()
    path = plot_confusion_matrix(matrix, names, tmp_path / "m.png", "Confusion matrix, pooled over 5 folds")
    assert Image.open(path).text["Description"].startswith("Confusion matrix, pooled over 5 folds")
