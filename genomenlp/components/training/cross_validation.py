"""k-fold cross-validation: stratified, shuffled, seeded, grouped, every fold from a fresh model.

Rows of the training split are grouped like dataset splits are (a sequence, its reverse
complement, duplicates and the chunks of one record), and whole groups are dealt to folds. Each
fold trains a newly initialised model on the other folds and predicts its held-out fold after every
epoch; one epoch is chosen on the folds' mean held-out figures (see ``epoch_choice``),
and every fold is scored at that epoch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from genomenlp.components.dataset.splitting import assign_splits, group_records, molecule_key
from genomenlp.components.errors import InputError
from genomenlp.components.filenames import CHOSEN_MODEL_DIR, HELD_OUT_DIR, MODEL_DIR, held_out_weights_file
from genomenlp.components.storage import prepare_resumable_dir
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.epoch_choice import choose_epoch, describe_choice, figures_at, fold_trace
from genomenlp.components.training.metrics import positive_index
from genomenlp.components.training.plots import plot_confusion_matrix, plot_epoch_choice, plot_folds
from genomenlp.components.training.report import write_cv_report
from genomenlp.components.training.run import LoadedData, TrainingData, load_training_data, train_classifier
from genomenlp.components.training.state import is_main_process, write_json_atomically

CV_METRICS_FILE = "cv_metrics.json"
# Written before the first fold trains: what the folds are trained with. Its presence makes the folder
# this command's resumable state; a re-run with the same settings keeps the finished folds.
CV_STATE_FILE = "cv_state.json"
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
        The content of ``cv_metrics.json``. In a distributed run only the first process reads the held-out
        predictions, chooses the epoch and writes files; the others return their folds' own figures.
    """
    if folds < 2:
        raise InputError("-k", f"need at least 2 folds, got {folds}")
    out = (prepare_resumable_dir(out_dir, overwrite, CV_METRICS_FILE, CV_STATE_FILE, "cross-validation")
           if is_main_process() else Path(out_dir))
    loaded = load_training_data(data)
    fold_ids = fold_of_rows(loaded, folds, train_config.seed)
    if is_main_process():
        _record_state(out, _fingerprint(loaded, fold_ids, model_config, train_config, training_arguments))
    train = loaded.splits["train"]
    positive = positive_index(list(loaded.names), train_config.positive_label)
    finished = []
    for fold in range(folds):
        held_out = np.flatnonzero(fold_ids == fold)
        kept = np.flatnonzero(fold_ids != fold)
        if len(np.unique(train.labels[held_out])) < 2:
            raise InputError(data.train_path, f"fold {fold} holds a single class: use fewer folds")
        fold_data = loaded.with_splits(train=train.subset(kept), test=train.subset(held_out))
        fold_dir = out / f"fold_{fold}"
        # A fold finished before an interruption is kept: the state file vouches for its settings.
        summary = _finished_fold(fold_dir) or train_classifier(
            fold_data, model_config, train_config, str(fold_dir), overwrite=False, show_progress=show_progress,
            on_epoch=None, tracking=tracking, training_arguments=training_arguments, trace_test=True)
        trace = fold_trace(fold_dir, train.labels[held_out], positive) if is_main_process() else []
        finished.append((fold, kept, held_out, summary, trace))
        if is_main_process():
            metric = train_config.metric_for_best_model.removeprefix("eval_")
            per_epoch = " ".join(f"{row['figures'][f'test_{metric}']:.3f}" for row in trace)
            print(f"fold {fold}: held-out {metric} after each epoch: {per_epoch}", flush=True)
    choice = choose_epoch({fold: trace for fold, _, _, summary, trace in finished if not summary.get("collapsed")},
                          train_config) if is_main_process() else None
    rows, matrices = [], []
    for fold, kept, held_out, summary, trace in finished:
        at_choice = figures_at(trace, choice["chosen_epoch"]) if choice else None
        figures = at_choice or summary
        row = {"fold": fold, "train_rows": len(kept), "test_rows": len(held_out),
               "epoch": choice["chosen_epoch"] if at_choice else summary["model_epoch"],
               "initial_weights_sha256": summary["initial_weights_sha256"],
               "collapsed": summary.get("collapsed") or "",
               **{key: figures[key] for key in SUMMARISED}}
        for name, baseline in summary["baselines"].items():
            row.update({f"{name}_{key}": baseline[key] for key in ("test_mcc", "test_roc_auc", "test_f1")})
        rows.append(row)
        matrices.append(figures["test_confusion_matrix"])
        collapsed = f"  COLLAPSED ({summary['collapsed']})" if summary.get("collapsed") else ""
        shown = "  ".join(f"{key.removeprefix('test_')}={row[key]:.3f}" for key in SUMMARISED[:4])
        if is_main_process():
            print(f"fold {fold} (epoch {row['epoch']}): {shown}{collapsed}", flush=True)
    if choice:
        print(f"cross-validation: {describe_choice(choice, len(train))}", flush=True)
    numeric = [key for key in rows[0] if key not in ("fold", "initial_weights_sha256", "collapsed")]
    result = {"folds": rows, "summary": {key: _mean_sd([row[key] for row in rows]) for key in numeric},
              "k": folds, "seed": train_config.seed, "model": model_config.model_dump(mode="json"),
              "training": train_config.model_dump(mode="json"),
              "collapsed_folds": [row["fold"] for row in rows if row["collapsed"]],
              "label_names": list(loaded.names),
              # Every training row is held out exactly once, so the folds' matrices add up to one over all rows.
              "pooled_confusion_matrix": np.sum(matrices, axis=0).tolist(),
              # Fold figures are those after this epoch; a final model stops there (stop_at_epoch).
              "epoch_choice": choice, "held_out_rows": len(train)}
    if tracking:
        result["tracking"] = dict(tracking)
    if not is_main_process():
        return result
    if choice:
        result["chosen_models"] = keep_chosen_models(out, finished, choice["chosen_epoch"])
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / FOLDS_FILE, index=False)
    figures = [plot_folds(rows, out / "cv_metrics.png"),
               plot_confusion_matrix(result["pooled_confusion_matrix"], result["label_names"],
                                     out / "pooled_confusion_matrix.png",
                                     f"Confusion matrix, pooled over {folds} folds' held-out rows")]
    if choice:
        figures.insert(0, plot_epoch_choice(choice, out / "epoch_choice.png"))
    write_cv_report(out / "report.html", result, figures)
    write_json_atomically(out / CV_METRICS_FILE, result, indent=2)
    for fold in range(folds):
        for snapshot in (out / f"fold_{fold}" / HELD_OUT_DIR).glob("weights_*.safetensors"):
            snapshot.unlink()
    return result


def keep_chosen_models(out: Path, finished: list, epoch: int) -> list[str]:
    """Each fold's model with the weights it had after ``epoch`` (``fold_K/model_at_chosen_epoch``), for an ensemble.

    A fold keeps its best epoch on valid in ``model_files``; the ensemble's members are to be the procedure the
    cross-validated figures describe, so they take the chosen epoch's weights. Collapsed folds, and folds
    trained before weights were kept per validation, give none.

    Returns:
        The folders written, relative to ``out``.
    """
    import shutil

    kept = []
    for fold, _, _, summary, trace in finished:
        number = next((row["validation"] for row in trace if row["epoch"] == epoch), None)
        fold_dir = out / f"fold_{fold}"
        snapshot = fold_dir / HELD_OUT_DIR / held_out_weights_file(number) if number else None
        if summary.get("collapsed") or snapshot is None or not snapshot.is_file():
            continue
        target, staging = fold_dir / CHOSEN_MODEL_DIR, fold_dir / f".{CHOSEN_MODEL_DIR}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(fold_dir / MODEL_DIR, staging)
        shutil.copyfile(snapshot, staging / "model.safetensors")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        kept.append(f"fold_{fold}/{CHOSEN_MODEL_DIR}")
    return kept


def _fingerprint(loaded: LoadedData, fold_ids: np.ndarray, model_config: ModelConfig, train_config: TrainConfig,
                 training_arguments: dict | None) -> str:
    """What every fold's result depends on: settings, tokeniser, and which rows each fold holds."""
    digest = hashlib.sha256(json.dumps([model_config.model_dump(mode="json"), train_config.model_dump(mode="json"),
                                        loaded.tokenizer.sha256(), training_arguments or {}], sort_keys=True,
                                       default=str).encode())
    digest.update(np.ascontiguousarray(fold_ids, dtype=np.int64).tobytes())
    for split in loaded.splits.values():
        digest.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _record_state(out: Path, fingerprint: str) -> None:
    """Write the folder's state, or check that an interrupted cross-validation in it used the same settings."""
    state = out / CV_STATE_FILE
    if state.is_file():
        try:
            recorded = json.loads(state.read_text()).get("fingerprint")
        except (ValueError, AttributeError):
            recorded = None
        if recorded != fingerprint:
            raise InputError(str(out), "holds an interrupted cross-validation with other settings or data; pass "
                             "--overwrite to start over, or choose another folder")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(state, {"fingerprint": fingerprint})


def _finished_fold(fold_dir: Path) -> dict | None:
    from genomenlp.components.filenames import METRICS_FILE

    metrics = fold_dir / METRICS_FILE
    return json.loads(metrics.read_text()) if metrics.is_file() else None
