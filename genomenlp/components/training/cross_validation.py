"""k-fold cross-validation: stratified, shuffled, seeded, grouped, every fold from a fresh model.

Rows of the training split are grouped like dataset splits are (a sequence, its reverse
complement, duplicates and the chunks of one record), and whole groups are dealt to folds. Each
fold trains a newly initialised model on the other folds, picks its epoch on the validation split
and is scored on its held-out fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genomenlp.components.dataset.splitting import assign_splits, group_records, molecule_key
from genomenlp.components.errors import InputError
from genomenlp.components.storage import prepare_resumable_dir
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.plots import plot_confusion_matrix, plot_folds
from genomenlp.components.training.report import write_cv_report
from genomenlp.components.training.run import LoadedData, TrainingData, load_training_data, train_classifier
from genomenlp.components.training.state import is_main_process, write_json_atomically

CV_METRICS_FILE = "cv_metrics.json"
FOLDS_FILE = "folds.csv"
SUMMARISED = ("test_mcc", "test_roc_auc", "test_pr_auc", "test_f1", "test_f1_macro", "test_accuracy")


def fold_of_rows(loaded: LoadedData, folds: int, seed: int) -> np.ndarray:
    """Fold number per training row; rows of one molecule or one record always share a fold."""
    train = loaded.splits["train"]
    if train.features is None:
        raise InputError(train.source, "needs the 'feature' column to keep reverse complements in one fold")
    nucleotide = loaded.tokenizer.describe()["kind"] != "protein"
    keys = [molecule_key(feature, nucleotide) for feature in train.features]
    by_record = [{int(parent).to_bytes(8, "little", signed=True)} for parent in train.parents]
    groups = group_records(keys, by_record)
    names = [f"fold_{index}" for index in range(folds)]
    assigned = assign_splits(groups, list(train.labels), dict.fromkeys(names, 1 / folds), seed)
    return np.array([names.index(name) for name in assigned])


def _mean_sd(values: list[float]) -> dict:
    array = np.asarray(values, dtype=float)
    return {"mean": float(np.nanmean(array)), "sd": float(np.nanstd(array, ddof=1)) if len(array) > 1 else 0.0}


def cross_validate(
    data: TrainingData,
    model_config: ModelConfig,
    train_config: TrainConfig,
    folds: int,
    out_dir: str,
    overwrite: bool = False,
    show_progress: bool = True,
    tracking: dict | None = None,
    training_arguments: dict | None = None,
) -> dict:
    """Train and score one model per fold; write per-fold and mean ± sd figures and a plot.

    A fold whose model collapsed (one class, or chance F1, on validation) is marked so in the fold
    table, counted in ``collapsed_folds`` and named in a banner of the report.

    Args:
        data: The dataset (folds are dealt from its training split; valid picks each fold's epoch).
        model_config: Shape of every fold's classifier.
        train_config: Optimisation settings of every fold.
        folds: Number of folds (at least 2).
        out_dir: Output folder: one run folder per fold, the fold table, summary and report.
        overwrite: Replace a finished cross-validation.
        show_progress: Show progress bars.
        tracking: The original's tracker names, recorded in ``cv_metrics.json``.
        training_arguments: A ``-w`` file's HF TrainingArguments mapping, applied to every fold as to ``train``.

    Returns:
        The content of ``cv_metrics.json`` (on every process of a distributed run; only the first writes files).
    """
    if folds < 2:
        raise InputError("-k", f"need at least 2 folds, got {folds}")
    out = (prepare_resumable_dir(out_dir, overwrite, CV_METRICS_FILE, "fold_0", "cross-validation")
           if is_main_process() else Path(out_dir))
    loaded = load_training_data(data)
    fold_ids = fold_of_rows(loaded, folds, train_config.seed)
    train = loaded.splits["train"]
    rows, matrices = [], []
    for fold in range(folds):
        held_out = np.flatnonzero(fold_ids == fold)
        kept = np.flatnonzero(fold_ids != fold)
        if len(np.unique(train.labels[held_out])) < 2:
            raise InputError(data.train_path, f"fold {fold} holds a single class: use fewer folds")
        fold_data = loaded.with_splits(train=train.subset(kept), test=train.subset(held_out))
        summary = train_classifier(fold_data, model_config, train_config, str(out / f"fold_{fold}"),
                                   overwrite=False, show_progress=show_progress, on_epoch=None, tracking=tracking,
                                   training_arguments=training_arguments)
        row = {"fold": fold, "train_rows": len(kept), "test_rows": len(held_out), "best_epoch": summary["best_epoch"],
               "initial_weights_sha256": summary["initial_weights_sha256"],
               "collapsed": summary.get("collapsed") or "",
               **{key: summary[key] for key in SUMMARISED}}
        for name, figures in summary["baselines"].items():
            row.update({f"{name}_{key}": figures[key] for key in ("test_mcc", "test_roc_auc", "test_f1")})
        rows.append(row)
        matrices.append(summary["test_confusion_matrix"])
        collapsed = f"  COLLAPSED ({summary['collapsed']})" if summary.get("collapsed") else ""
        figures = "  ".join(f"{key.removeprefix('test_')}={summary[key]:.3f}" for key in SUMMARISED[:4])
        if is_main_process():
            print(f"fold {fold}: {figures}{collapsed}", flush=True)
    numeric = [key for key in rows[0] if key not in ("fold", "initial_weights_sha256", "collapsed")]
    result = {"folds": rows, "summary": {key: _mean_sd([row[key] for row in rows]) for key in numeric},
              "k": folds, "seed": train_config.seed, "model": model_config.model_dump(mode="json"),
              "training": train_config.model_dump(mode="json"),
              "collapsed_folds": [row["fold"] for row in rows if row["collapsed"]],
              "label_names": list(loaded.names),
              # Every training row is held out exactly once, so the folds' matrices add up to one over all rows.
              "pooled_confusion_matrix": np.sum(matrices, axis=0).tolist()}
    if tracking:
        result["tracking"] = dict(tracking)
    if not is_main_process():
        return result
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / FOLDS_FILE, index=False)
    figures = [plot_folds(rows, out / "cv_metrics.png"),
               plot_confusion_matrix(result["pooled_confusion_matrix"], result["label_names"],
                                     out / "pooled_confusion_matrix.png",
                                     f"Confusion matrix, pooled over {folds} folds' held-out rows")]
    write_cv_report(out / "report.html", result, figures)
    write_json_atomically(out / CV_METRICS_FILE, result, indent=2)
    return result
