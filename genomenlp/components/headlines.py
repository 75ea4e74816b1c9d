"""Headline figures of a run, as flat scalars for ZenML run and step metadata (what the dashboard lists).

The model against its k-mer baseline, how the search went, and what promotion decided: the few
numbers a reader of the run page needs before opening any report.
"""

from __future__ import annotations

from genomenlp.components.registry import BASELINE_SCORE, CV_SCORE, TEST_SCORE


def training_headlines(metrics: dict) -> dict:
    """Test MCC, the 1–4-mer baseline's, and the margin between them (absent figures are left out).

    Args:
        metrics: A training run's ``metrics.json`` content.
    """
    baseline = (metrics.get("baselines") or {}).get("kmer_1_4", {}).get(TEST_SCORE)
    figures = {TEST_SCORE: metrics.get(TEST_SCORE), BASELINE_SCORE: baseline}
    if figures[TEST_SCORE] is not None and baseline is not None:
        figures["test_mcc_margin_over_kmer"] = figures[TEST_SCORE] - baseline
    return {key: value for key, value in figures.items() if value is not None}


def sweep_headlines(trials: list[dict], metric: str | None = None, maximize: bool = True) -> dict:
    """Trial counts by outcome (complete, pruned, failed, collapsed) and the best value of ``metric``.

    Args:
        trials: One row per trial (``trials.csv``): ``state`` and, when the trainer flags it, ``collapsed``.
        metric: The column of the selection metric.
        maximize: Whether the best value is the largest.
    """
    states = [str(row.get("state", "")).upper() for row in trials]
    figures = {"trials": len(trials), "complete_trials": states.count("COMPLETE"),
               "pruned_trials": states.count("PRUNED"), "failed_trials": states.count("FAIL"),
               "collapsed_trials": sum(bool(row.get("collapsed")) for row in trials)}
    values = [row[metric] for row in trials if metric and isinstance(row.get(metric), int | float)]
    if values:
        figures[f"best_{metric}"] = max(values) if maximize else min(values)
    return figures


def promotion_headlines(version: int | None, chosen: int | None, cv_score: float | None,
                        baseline: float | None, margin: float) -> dict:
    """What promotion decided for the run's model version, and on which figures.

    Args:
        version: The run's model version (``None`` without a registry model).
        chosen: The version holding ``production`` afterwards (``None``: none qualifies).
        cv_score: The run's cross-validated MCC (mean over folds).
        baseline: The run's k-mer baseline MCC.
        margin: MCC a version had to gain over its baseline.
    """
    figures = {CV_SCORE: cv_score, BASELINE_SCORE: baseline, "promotion_margin": margin,
               "production_version": chosen, "promoted": chosen is not None and chosen == version}
    if cv_score is not None and baseline is not None:
        figures["cv_mcc_margin_over_kmer"] = cv_score - baseline
    return {key: value for key, value in figures.items() if value is not None}
