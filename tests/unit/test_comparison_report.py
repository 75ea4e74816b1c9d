"""The comparison page: a column per model (so some twenty figures fit a 1280-px window), every cell escaped."""

import pandas as pd

from genomenlp.components.compare.report import WIDE, comparison_page


def test_summary_is_a_column_per_model_escaped_and_rounded(tmp_path):
    summary = pd.DataFrame([{"model": "<b>run_a</b>", "architecture": "bert", "layers": 9, "alpha_mean": 5.20912,
                             "test_mcc": float("nan")},
                            {"model": "distil", "architecture": "distilbert", "layers": 7, "alpha_mean": 4.1,
                             "test_mcc": 0.41}])
    page = comparison_page(tmp_path, summary)
    assert "<th>&lt;b&gt;run_a&lt;/b&gt;</th>" in page and "<b>run_a" not in page
    assert "<th>alpha_mean</th>" in page and "<td>5.209</td>" in page and "<td>0.410</td>" in page
    assert "nan" not in page.lower().replace("dataframe", "")


def test_many_models_stay_a_row_each(tmp_path):
    summary = pd.DataFrame([{"model": f"m{index}", "alpha_mean": 1.0} for index in range(WIDE + 1)])
    page = comparison_page(tmp_path, summary)
    assert "<th>model</th>" in page and page.count("<td>m") == WIDE + 1
