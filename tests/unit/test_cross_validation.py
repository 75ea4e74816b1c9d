"""Cross-validation: grouped, stratified folds, a fresh model per fold, mean ± sd written."""

import json

import numpy as np
import pytest

from genomenlp.components.cli import cross_validate as cross_validate_command
from genomenlp.components.sequences import reverse_complement
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.cross_validation import cross_validate, fold_of_rows
from genomenlp.components.training.report import cv_warnings
from genomenlp.components.training.run import load_training_data

TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
ONE_EPOCH = TrainConfig(num_train_epochs=1, per_device_train_batch_size=16, learning_rate=3e-3, seed=4)


def test_no_group_crosses_folds_and_classes_are_balanced(tiny_dataset):
    loaded = load_training_data(tiny_dataset)
    folds = fold_of_rows(loaded, 2, seed=1)
    train = loaded.splits["train"]
    fold_of_molecule = {}
    for feature, fold in zip(train.features, folds, strict=True):
        key = min(feature, reverse_complement(feature))
        assert fold_of_molecule.setdefault(key, fold) == fold
    for label in np.unique(train.labels):
        counts = np.bincount(folds[train.labels == label], minlength=2)
        assert abs(counts[0] - counts[1]) <= 2  # groups are pairs (a sequence and its reverse complement)
    assert not np.array_equal(folds, fold_of_rows(loaded, 2, seed=2))


def test_every_fold_starts_from_a_fresh_model(tiny_dataset, tmp_path):
    result = cross_validate(tiny_dataset, TINY_MODEL, ONE_EPOCH, 2, str(tmp_path / "cv"), show_progress=False)
    folds = result["folds"]
    assert [row["fold"] for row in folds] == [0, 1]
    # Same seed, fresh initialisation: identical starting weights in each fold, unlike a fine-tuned model.
    assert folds[0]["initial_weights_sha256"] == folds[1]["initial_weights_sha256"]
    for fold in (0, 1):
        metrics = json.loads((tmp_path / "cv" / f"fold_{fold}" / "metrics.json").read_text())
        assert metrics["resumed_from_epoch"] == 0 and metrics["epochs_run"] == 1
    summary = result["summary"]["test_mcc"]
    assert summary["mean"] == pytest.approx(np.mean([row["test_mcc"] for row in folds]))
    assert summary["sd"] >= 0
    assert sum(row["test_rows"] for row in folds) == len(load_training_data(tiny_dataset).splits["train"])
    for name in ("cv_metrics.json", "folds.csv", "cv_metrics.png"):
        assert (tmp_path / "cv" / name).stat().st_size > 0


def test_command_takes_hyperparameters_from_a_sweep_folder(tiny_dataset, tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "hyperparams.json").write_text(json.dumps({"learning_rate": 0.003, "num_train_epochs": 1,
                                                            "per_device_train_batch_size": 16, "num_layers": 1,
                                                            "hidden_size": 16, "num_heads": 2,
                                                            "intermediate_size": 32}))
    out = tmp_path / "cv_cli"
    args = [tiny_dataset.train_path, "parquet", "-t", "test", "-v", "valid", "--config_from_run", str(sweep_dir),
            "-k", "2", "-o", str(out), "--no_progress", "--positive_label", "without"]
    assert cross_validate_command.main(args) == 0
    printed = capsys.readouterr().out
    assert "mcc:" in printed and "±" in printed and "baseline" in printed
    saved = json.loads((out / "cv_metrics.json").read_text())
    # The verdict against the baseline is printed, whichever way it goes.
    model, baseline = saved["summary"]["test_mcc"]["mean"], saved["summary"]["kmer_1_4_test_mcc"]["mean"]
    assert ("DOES NOT BEAT THE BASELINE: mean MCC" in printed) == (not model > baseline)
    assert ("beats the 1–4-mer baseline on mean MCC by" in printed) == (not cv_warnings(saved))
    assert saved["training"]["positive_label"] == "without"
    assert json.loads((out / "fold_0" / "metrics.json").read_text())["roc_positive_label"] == "without"
    assert saved["model"]["hidden_size"] == 16 and saved["training"]["learning_rate"] == 0.003
    assert cross_validate_command.main(args) == 2  # a finished run is not replaced without --overwrite
    assert cross_validate_command.main([*args, "-k", "1", "--overwrite"]) == 2
    assert "at least 2 folds" in capsys.readouterr().err


def test_report_page_is_written_and_escaped(tiny_dataset, tmp_path):
    result = cross_validate(tiny_dataset, TINY_MODEL, ONE_EPOCH, 2, str(tmp_path / "cv"), show_progress=False)
    page = (tmp_path / "cv" / "report.html").read_text()
    assert "Mean ± sd over folds" in page and "data:image/png;base64," in page and "baseline" in page
    assert page.count("data:image/png;base64,") == 2  # the fold bars and the pooled confusion matrix
    # Pooled: the sum of the folds' matrices, which is the matrix of all out-of-fold predictions.
    import pandas as pd
    from sklearn.metrics import confusion_matrix

    matrices = [json.loads((tmp_path / "cv" / f"fold_{f}" / "metrics.json").read_text())["test_confusion_matrix"]
                for f in (0, 1)]
    assert result["pooled_confusion_matrix"] == np.sum(matrices, axis=0).tolist()
    held_out = pd.concat([pd.read_csv(tmp_path / "cv" / f"fold_{f}" / "test_predictions.csv") for f in (0, 1)])
    names = result["label_names"]
    predicted = held_out[[f"p_{name}" for name in names]].to_numpy().argmax(axis=1)
    truth = held_out["label"].map(names.index).to_numpy()
    assert result["pooled_confusion_matrix"] == confusion_matrix(truth, predicted, labels=[0, 1]).tolist()
    assert sum(map(sum, result["pooled_confusion_matrix"])) == sum(row["test_rows"] for row in result["folds"])
    assert (tmp_path / "cv" / "pooled_confusion_matrix.png").stat().st_size > 0
