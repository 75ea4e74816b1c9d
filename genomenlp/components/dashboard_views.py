"""What a run's results look like in the Kubeflow Pipelines dashboard, built from the steps' outputs.

Pure functions from a step's output values (the metrics dicts, trial rows and tables the steps
return) to the views KFP renders: scalars (``system.Metrics``, compared across runs, so their
names never change), a confusion matrix and ROC curve (``system.ClassificationMetrics``), and
HTML or Markdown pages (``system.HTML``/``system.Markdown``). Every string that reaches HTML is
escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

# The baseline a model must beat, and the one the margin is measured against.
KMER_BASELINE = "kmer_1_4"
GC_BASELINE = "gc_content"


def _finite(value) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _scalars(pairs: Mapping[str, object]) -> dict[str, float]:
    """Only finite numbers: KFP's Metrics take floats, and NaN would break the comparison view."""
    return {name: number for name, value in pairs.items() if (number := _finite(value)) is not None}


def training_scalars(metrics: Mapping) -> dict[str, float]:
    """Test figures of a trained model beside its baselines, under names stable across runs."""
    baselines = metrics.get("baselines") or {}
    kmer = (baselines.get(KMER_BASELINE) or {}).get("test_mcc")
    return _scalars({
        "test_mcc": metrics.get("test_mcc"),
        "test_roc_auc": metrics.get("test_roc_auc"),
        "test_pr_auc": metrics.get("test_pr_auc"),
        "test_f1_weighted": metrics.get("test_f1_weighted"),
        "test_accuracy": metrics.get("test_accuracy"),
        "baseline_kmer_test_mcc": kmer,
        "baseline_gc_test_mcc": (baselines.get(GC_BASELINE) or {}).get("test_mcc"),
        "test_mcc_margin_over_kmer": metrics["test_mcc"] - kmer if kmer is not None else None,
        "best_epoch": metrics.get("best_epoch"),
        "model_epoch": metrics.get("model_epoch"),
        "train_seconds": metrics.get("train_seconds"),
        "collapsed": 1.0 if metrics.get("collapsed") else 0.0,
    })


def classification_view(metrics: Mapping) -> dict:
    """Confusion matrix (class names in label order) and the ROC curve of the positive class."""
    return {"labels": list(metrics["label_names"]), "matrix": metrics["test_confusion_matrix"],
            "roc": list(metrics.get("test_roc_curve") or []), "positive": metrics.get("roc_positive_label")}


def cross_validation_scalars(result: Mapping) -> dict[str, float]:
    """Mean and spread over folds of the model and its k-mer baseline."""
    summary = result["summary"]
    pairs: dict[str, object] = {"folds": result.get("k")}
    for key in ("test_mcc", "test_roc_auc", "test_f1"):
        pairs[f"cv_{key}_mean"] = summary.get(key, {}).get("mean")
        pairs[f"cv_{key}_sd"] = summary.get(key, {}).get("sd")
        pairs[f"baseline_kmer_cv_{key}_mean"] = summary.get(f"{KMER_BASELINE}_{key}", {}).get("mean")
    model, kmer = pairs["cv_test_mcc_mean"], pairs["baseline_kmer_cv_test_mcc_mean"]
    pairs["cv_test_mcc_margin_over_kmer"] = model - kmer if model is not None and kmer is not None else None
    return _scalars(pairs)


def _table(header: list[str], rows: list[list[object]]) -> str:
    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(value)}</td>" for value in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = ("<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin:.5em 0}"
          "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}.lost{color:#b00020;font-weight:bold}"
          "</style>")


_COLLAPSED = ("<p class='lost'>COLLAPSED: validation predictions fell to one class (or chance F1); this model "
              "was never selected or promoted. Try a narrower learning-rate range.</p>")


def _verdict(model: float | None, baseline: float | None) -> str:
    if model is None or baseline is None:
        return ""
    if model > baseline:
        return f"<p>Beats the 1–4-mer baseline by {model - baseline:+.3f} MCC.</p>"
    return f"<p class='lost'>Does not beat the 1–4-mer baseline ({model - baseline:+.3f} MCC).</p>"


def training_html(metrics: Mapping) -> str:
    """A one-page summary of a trained model: test figures beside the baselines, confusion matrix."""
    from genomenlp.components.training.epoch_choice import checkpoint_choice

    checkpoint = checkpoint_choice(metrics)
    keys = ("test_mcc", "test_roc_auc", "test_pr_auc", "test_f1", "test_accuracy")
    rows = [["model", *(metrics.get(key, float("nan")) for key in keys)]]
    rows += [[name, *(figures.get(key, float("nan")) for key in keys)]
             for name, figures in (metrics.get("baselines") or {}).items()]
    names = list(metrics["label_names"])
    matrix = [[f"true {name}", *row] for name, row in zip(names, metrics["test_confusion_matrix"], strict=True)]
    kmer = (metrics.get("baselines") or {}).get(KMER_BASELINE, {}).get("test_mcc")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>genomicBERT test results</title>{_STYLE}"
            f"</head><body><h1>genomicBERT: {html.escape(' vs '.join(names))}</h1>"
            f"{_COLLAPSED if metrics.get('collapsed') else ''}{_verdict(metrics.get('test_mcc'), kmer)}"
            f"{_table(['', *(key.removeprefix('test_') for key in keys)], rows)}"
            f"<h2>Confusion matrix (test)</h2>{_table(['', *(f'predicted {n}' for n in names)], matrix)}"
            f"<p>{html.escape(checkpoint[0].upper() + checkpoint[1:])}.</p></body></html>")


def cross_validation_html(result: Mapping) -> str:
    """Per-fold and mean ± sd figures of the model and its k-mer baseline."""
    keys = ("test_mcc", "test_roc_auc", "test_f1")
    header = ["fold", *(key.removeprefix("test_") for key in keys), *(f"1–4-mer {key.removeprefix('test_')}"
                                                                      for key in keys)]
    rows = [[row["fold"], *(row.get(key, float("nan")) for key in keys),
             *(row.get(f"{KMER_BASELINE}_{key}", float("nan")) for key in keys)] for row in result["folds"]]
    summary = result["summary"]
    rows.append(["mean ± sd", *(f"{summary[key]['mean']:.3f} ± {summary[key]['sd']:.3f}" for key in keys),
                 *(f"{summary[f'{KMER_BASELINE}_{key}']['mean']:.3f}" if f"{KMER_BASELINE}_{key}" in summary
                   else "" for key in keys)])
    model = summary.get("test_mcc", {}).get("mean")
    kmer = summary.get(f"{KMER_BASELINE}_test_mcc", {}).get("mean")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Cross-validation</title>{_STYLE}</head>"
            f"<body><h1>{html.escape(str(result.get('k')))}-fold cross-validation</h1>{_verdict(model, kmer)}"
            f"{_table(header, rows)}</body></html>")


def _markdown_cell(value) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(map(_markdown_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_markdown_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def sweep_markdown(best: Mapping, trials: list[Mapping]) -> str:
    """The sweep's best settings, and where to find its trials (a Katib Experiment, or the local table)."""
    lines = ["# Hyperparameter sweep", ""]
    katib = [row for row in trials if "experiment" in row]
    if katib:
        row = katib[0]
        lines += [f"Katib Experiment `{row['experiment']}` (Experiments (AutoML) in the Kubeflow dashboard), "
                  f"best trial `{row.get('best_trial')}`.", "",
                  _markdown_table(["", "value"], [[key, value] for key, value in row.items()
                                                  if key not in ("experiment", "best_trial")]), ""]
    else:
        lines += [f"{len(trials)} trials, run in the pipeline's own pod (Optuna).", ""]
    lines += ["## Best settings", "", _markdown_table(["setting", "value"], [[k, v] for k, v in best.items()])]
    return "\n".join(lines) + "\n"


def table_markdown(title: str, rows: list[Mapping]) -> str:
    """Any list of records (a WeightWatcher summary, interpretation rows) as a Markdown table."""
    header = list(dict.fromkeys(key for row in rows for key in row))
    return f"# {title}\n\n" + _markdown_table(header, [[row.get(key, "") for key in header] for row in rows]) + "\n"


def pretraining_scalars(metrics: Mapping) -> dict[str, float]:
    """Masked-LM figures of a pre-trained encoder (numbers only)."""
    return _scalars({key: value for key, value in metrics.items() if not isinstance(value, bool)})


def promotion_markdown(version: int | None) -> str:
    """What the promotion step decided."""
    if version is None:
        return ("# Promotion\n\nNo version was promoted: none beats its k-mer baseline in cross-validation "
                "(see the cross-validation output).\n")
    return f"# Promotion\n\nVersion {version} of `genomic_bert` is now `production`.\n"
