"""One training run: data in, model folder, metrics, history, plots and report out.

The output folder doubles as the checkpoint store: re-running the same command after a crash
resumes from the last finished epoch; ``metrics.json`` is written last and marks a finished run.
Under ``torchrun``/``accelerate launch`` every process trains; only the first writes files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genomenlp.components.errors import InputError
from genomenlp.components.filenames import (  # noqa: F401
    CHECKPOINT_DIR,
    HELD_OUT_DIR,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_DIR,
    REPORT_FILE,
    TOKENIZER_FILE,
)
from genomenlp.components.model_io import MODEL_METADATA
from genomenlp.components.storage import is_remote, prepare_resumable_dir
from genomenlp.components.tokenisers.common import BOS, EOS, PAD, as_pretrained_tokenizer, load_sequence_tokenizer
from genomenlp.components.training.baselines import fit_baselines
from genomenlp.components.training.collapse import TrainingCollapsed
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.data import (
    dataset_manifest,
    load_split,
    recorded_tokenizer_sha256,
    resolve_split_path,
    validate_splits,
)
from genomenlp.components.training.metrics import positive_index, roc_points
from genomenlp.components.training.model import build_classifier
from genomenlp.components.training.plots import plot_confusion_matrix, plot_history, plot_roc_pr
from genomenlp.components.training.report import beats_baseline, write_report
from genomenlp.components.training.state import is_main_process, write_json_atomically

PREDICTIONS_FILE = "test_predictions.csv"


@dataclass(frozen=True)
class TrainingData:
    """Where a run's splits and tokeniser come from.

    Attributes:
        train_path: The training split file (or ``save_to_disk`` folder).
        file_format: parquet, csv, json or dataset.
        tokenizer_path: The tokeniser the data was encoded with.
        test: Test split: a path, or a split name beside the training file.
        valid: Validation split, likewise.
        label_column: The column holding class ids (HF ``TrainingArguments.label_names``).
    """

    train_path: str
    file_format: str
    tokenizer_path: str
    test: str = "test"
    valid: str = "valid"
    label_column: str = "labels"

    @classmethod
    def from_dataset_dir(cls, dataset_dir: str | Path) -> TrainingData:
        """The splits of a ``create_dataset_bio`` folder (parquet) and the tokeniser saved beside them."""
        return cls(str(Path(dataset_dir, "train.parquet")), "parquet", str(Path(dataset_dir, TOKENIZER_FILE)))


@dataclass(frozen=True)
class LoadedData:
    """Splits, tokeniser, class names and manifest of a run, read and checked.

    Attributes:
        source: The training file, for reports.
        tokenizer: The tokeniser the data was encoded with.
        splits: ``train``, ``valid`` and ``test`` rows.
        names: Class names by label id.
        manifest: The dataset's manifest (empty when the files came without one).
    """

    source: str
    tokenizer: object
    splits: dict
    names: list
    manifest: dict

    def with_splits(self, **splits) -> LoadedData:
        """The same data with some splits replaced (cross-validation folds)."""
        return LoadedData(self.source, self.tokenizer, {**self.splits, **splits}, self.names, self.manifest)


def print_metric_lines(epoch: int, row: dict) -> None:
    """One ``TIMESTAMP name=value`` line per figure.

    Katib's stdout collector reads these; the RFC 3339 timestamp lets it order the epochs for
    early stopping.
    """
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, value in row.items():
        if name not in ("epoch", "epoch_seconds"):
            print(f"{stamp} {name}={value:.6g}", flush=True)


def load_training_data(data: TrainingData) -> LoadedData:
    """Read the three splits and the tokeniser; refuse a tokeniser the data was not encoded with."""
    manifest = dataset_manifest(data.train_path) or {}
    stride = manifest.get("tokenizer", {}).get("stride", 1)
    tokenizer = load_sequence_tokenizer(data.tokenizer_path, stride=stride)
    expected = manifest.get("tokenizer", {}).get("sha256")
    if expected and expected != tokenizer.sha256():
        raise InputError(data.tokenizer_path, "is not the tokeniser this dataset was encoded with "
                         f"(manifest beside {data.train_path} records another); use the dataset's tokenizer.json")
    paths = {name: resolve_split_path(path, data.train_path, data.file_format)
             for name, path in (("train", data.train_path), ("valid", data.valid), ("test", data.test))}
    for path in paths.values():
        _check_recorded_tokenizer(path, data, tokenizer)
    splits = {name: load_split(path, data.file_format, data.label_column) for name, path in paths.items()}
    top_label = max(int(split.labels.max()) for split in splits.values())
    names = manifest.get("label_names") or [str(index) for index in range(max(2, top_label + 1))]
    if top_label >= len(names):
        raise InputError(data.train_path, f"label {top_label} has no name in the manifest ({len(names)} classes)")
    return LoadedData(data.train_path, tokenizer, splits, names, manifest)


def _check_recorded_tokenizer(path: str, data: TrainingData, tokenizer) -> None:
    """Refuse a tokeniser other than the one whose hash the split records (no manifest needed)."""
    recorded, given = recorded_tokenizer_sha256(path, data.file_format), tokenizer.sha256()
    if recorded and recorded != given:
        raise InputError(data.tokenizer_path, f"is not the tokeniser {path} was encoded with (the split records "
                         f"tokeniser sha256 {recorded[:12]}…, this one is {given[:12]}…); use the tokenizer.json "
                         "built with the dataset")


def weights_digest(model) -> str:
    """SHA-256 over a model's parameters: equal digests, equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def save_model_folder(model, tokenizer, names: list[str], directory: Path, metadata: dict) -> Path:
    """HF ``save_pretrained`` (safetensors) of the model and its tokeniser, plus our metadata."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model.save_pretrained(directory, safe_serialization=True)
    as_pretrained_tokenizer(tokenizer).save_pretrained(directory)
    (directory / MODEL_METADATA).write_text(json.dumps({"label_names": names, **metadata}, indent=2, default=str))
    return directory


def train_classifier(
    data: TrainingData | LoadedData,
    model_config: ModelConfig,
    train_config: TrainConfig,
    out_dir: str,
    overwrite: bool = False,
    show_progress: bool = True,
    on_epoch: Callable[[int, dict], None] | None = print_metric_lines,
    with_baselines: bool = True,
    keep_collapsed: bool = True,
    tracking: dict | None = None,
    training_arguments: dict | None = None,
    trace_test: bool = False,
    epoch_note: str | None = None,
) -> dict:
    """Train one classifier, keep its best epoch on valid (or the one stop_at_epoch names), report on test.

    Args:
        data: Where the splits are, or the splits themselves.
        model_config: Shape of the classifier.
        train_config: Optimisation settings.
        out_dir: The run folder (also its checkpoint store).
        overwrite: Replace a finished run in ``out_dir``.
        show_progress: Show progress bars.
        on_epoch: Called with (epoch, history row) after each epoch.
        with_baselines: Fit the GC and k-mer baselines on the same split.
        keep_collapsed: Finish and report a collapsed run (marked ``collapsed`` in ``metrics.json`` and a
            banner in the report); when false, raise :class:`TrainingCollapsed` instead.
        tracking: The original's tracker names (entity, project, group), recorded in ``metrics.json``.
        training_arguments: A ``-w`` file's HF TrainingArguments mapping: its keys that are not
            ``train_config``'s apply as HF applies them (see
            :func:`genomenlp.components.training.trainer.training_arguments`).
        trace_test: Also predict the test split after every validation, into ``held_out/`` (a
            cross-validation's fold, whose test split is its held-out fold; never used to choose this run's weights).
        epoch_note: What chose ``stop_at_epoch`` (a cross-validation), for the report.

    Returns:
        The content of ``metrics.json`` (on every process of a distributed run; only the first writes it).

    Raises:
        TrainingCollapsed: The run collapsed and ``keep_collapsed`` is false.
    """
    if is_remote(out_dir):
        raise InputError(out_dir, "train writes to a local folder; copy it to object storage afterwards")
    import torch

    from genomenlp.components.training.trainer import evaluate, fit, sharding

    loaded = data if isinstance(data, LoadedData) else load_training_data(data)
    tokenizer, splits, names, manifest = loaded.tokenizer, loaded.splits, loaded.names, loaded.manifest
    if train_config.metric_for_best_model not in _known_metrics():
        raise InputError("metric_for_best_model",
                         f"{train_config.metric_for_best_model!r} is not one of {sorted(_known_metrics())}")
    positive = positive_index(names, train_config.positive_label)
    vocab = tokenizer.tokenizer.get_vocab()
    validate_splits(splits, tokenizer, names, model_config.max_positions, str(getattr(data, 'tokenizer_path', '')))
    # Checked (and, with --overwrite, cleared) only once the data is known to be usable; under torchrun by the
    # first process, the others train beside it.
    out = (prepare_resumable_dir(out_dir, overwrite, METRICS_FILE, CHECKPOINT_DIR) if is_main_process()
           else Path(out_dir))
    torch.manual_seed(train_config.seed)
    model = build_classifier(model_config, len(vocab), names, {t: vocab[t] for t in (BOS, EOS, PAD)})
    if train_config.init_from:
        from genomenlp.components.pretraining.transfer import init_classifier_from_encoder

        init_classifier_from_encoder(model, train_config.init_from, tokenizer)
    initial_weights = weights_digest(model)
    fingerprint = _fingerprint(model_config.model_dump(mode="json"), train_config.model_dump(mode="json"),
                               tokenizer.sha256(), [len(s) for s in splits.values()], training_arguments or {})
    started = time.perf_counter()
    result, trainer = fit(model, splits["train"], splits["valid"], train_config, vocab[PAD], out / CHECKPOINT_DIR,
                          fingerprint, on_epoch, show_progress, training_arguments,
                          (splits["test"], out / HELD_OUT_DIR) if trace_test else None)
    train_seconds = time.perf_counter() - started
    if result.collapsed and not keep_collapsed:
        raise TrainingCollapsed("learning_rate", result.collapsed)

    test_metrics, probabilities = evaluate(trainer, splits["test"], "test_")
    # Every process has the test figures; the first writes the run's files once the others are done with
    # the checkpoints it removes.
    trainer.accelerator.wait_for_everyone()
    device = trainer.args.device
    model = trainer.model
    baselines = {}
    if with_baselines and splits["train"].features and splits["test"].features:
        baselines = fit_baselines(splits["train"].features, splits["train"].labels, splits["test"].features,
                                  splits["test"].labels, train_config.seed, positive)
    model_row = result.history[result.model_index]
    metadata = {"tokenizer": tokenizer.describe(), "model": model_config.model_dump(mode="json"),
                "training": train_config.model_dump(mode="json"), "dataset": manifest.get("config"),
                "record_lengths": manifest.get("record_lengths")}
    writing = is_main_process()
    if writing:
        save_model_folder(model.cpu(), tokenizer, names, out / MODEL_DIR, metadata)
        _write_csv(out / HISTORY_FILE, result.history)
        _write_csv(out / PREDICTIONS_FILE, [
            {"row": i, "parent": int(splits["test"].parents[i]), "label": names[int(label)],
             **{f"p_{name}": float(p) for name, p in zip(names, probabilities[i], strict=True)}}
            for i, label in enumerate(splits["test"].labels)
        ])
        plots = out / "plots"
        figures = [plot_history(result.history, plots / "history.png", result.best_epoch),
                   plot_confusion_matrix(test_metrics["test_confusion_matrix"], names, plots / "confusion_matrix.png"),
                   *plot_roc_pr(splits["test"].labels, probabilities, names, plots, positive)]
    parameters = sum(p.numel() for p in model.parameters())
    summary = {
        **test_metrics,
        **{key: value for key, value in model_row.items() if key.startswith("eval_")},
        "best_epoch": result.best_epoch,
        "model_epoch": model_row["epoch"],
        "stop_at_epoch": train_config.stop_at_epoch,
        "epochs_run": len(result.history),
        "resumed_from_epoch": result.resumed_from,
        "initial_weights_sha256": initial_weights,
        "train_seconds": round(train_seconds, 2),
        "parameters": parameters,
        "processes": trainer.args.world_size,
        "sharding": sharding(trainer),
        "label_names": names,
        "baselines": baselines,
        "beats_kmer_baseline": beats_baseline(test_metrics, baselines) if baselines else None,
        "test_roc_curve": roc_points(splits["test"].labels, probabilities, positive),
        "roc_positive_label": names[positive],
        "collapsed": result.collapsed,
        "stopped_early": result.stopped_early,
    }
    if tracking:
        summary["tracking"] = dict(tracking)
    if not writing:
        return summary
    if train_config.stop_at_epoch is not None:
        why = epoch_note or "as stop_at_epoch says"
        kept = f"kept: epoch {model_row['epoch']}, {why}; best on valid: {result.best_epoch}"
    elif result.model_index == result.best_index:
        kept = f"chosen: {result.best_epoch} on valid"
    else:
        kept = f"best on valid: {result.best_epoch}; kept: the last, {model_row['epoch']}"
    if baselines:
        write_report(out / REPORT_FILE, f"genomicBERT: {' vs '.join(names)}", test_metrics, baselines, figures, {
            "training data": loaded.source, "rows (train/valid/test)": "/".join(str(len(s)) for s in splits.values()),
            "model": (f"{model_config.architecture} {model_config.num_layers}×{model_config.hidden_size}, "
                      f"{parameters:,} parameters"),
            "tokeniser": json.dumps(tokenizer.describe()),
            "epochs": f"{len(result.history)} ({kept})",
            "training time": (f"{train_seconds:.1f} s on {device.type}"
                              + (f" × {trainer.args.world_size} processes" if trainer.args.world_size > 1 else "")),
            **({"stopped early": result.stopped_early} if result.stopped_early else {}),
            **{name.removesuffix("_name"): value for name, value in (tracking or {}).items()},
        }, banner=result.collapsed)
    shutil.rmtree(out / CHECKPOINT_DIR)
    write_json_atomically(out / METRICS_FILE, summary, indent=2)
    return summary


def _known_metrics() -> set[str]:
    base = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_weighted", "recall_weighted",
            "f1_weighted", "mcc", "roc_auc", "pr_auc", "f1", "loss")
    return {f"eval_{name}" for name in base}
