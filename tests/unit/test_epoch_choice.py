"""The epoch is chosen on the cross-validation folds' held-out rows, and a final model stops there."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from genomenlp.components.cli import cross_validate as cross_validate_command
from genomenlp.components.cli import ensemble as ensemble_command
from genomenlp.components.cli import train as train_command
from genomenlp.components.model_io import load_model
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.cross_validation import cross_validate, fold_of_rows
from genomenlp.components.training.ensemble import (
    build_ensemble_folder,
    fold_model_dirs,
    split_probabilities,
)
from genomenlp.components.training.epoch_choice import choose_epoch, held_out_figures, stop_epoch_from
from genomenlp.components.training.run import load_training_data, train_classifier

TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
# collapse_epochs 0: the tiny model's first epochs predict one class; every fold must run all three here.
THREE_EPOCHS = TrainConfig(num_train_epochs=3, per_device_train_batch_size=16, learning_rate=3e-3, seed=4,
                           collapse_epochs=0)


def _trace(values: list[float], metric: str = "f1") -> list[dict]:
    return [{"epoch": epoch, "figures": {f"test_{metric}": value}} for epoch, value in enumerate(values, start=1)]


def test_the_latest_epoch_within_one_standard_error_of_the_best_is_chosen():
    plateau = choose_epoch({0: _trace([0.6, 0.8, 0.7]), 1: _trace([0.7, 0.6, 0.7])}, THREE_EPOCHS)
    assert plateau["epochs"] == [1, 2, 3] and plateau["mean"] == pytest.approx([0.65, 0.70, 0.70])
    assert plateau["sd"][0] == pytest.approx(np.std([0.6, 0.7], ddof=1))
    # Best mean at epoch 2 (the earlier of a tie), but the folds disagree by 0.2 there: epoch 3 is as good.
    assert plateau["best_epoch"] == 2 and plateau["tolerance"] == pytest.approx(0.1)
    assert plateau["chosen_epoch"] == 3
    assert plateau["metric"] == "f1" and plateau["folds"] == [0, 1] and plateau["num_train_epochs"] == 3
    # The folds agree that epoch 3 is worse (over-fitting): epoch 2 is chosen.
    falling = choose_epoch({0: _trace([0.70, 0.80, 0.70]), 1: _trace([0.72, 0.82, 0.70])}, THREE_EPOCHS)
    assert falling["best_epoch"] == falling["chosen_epoch"] == 2


def test_a_loss_is_minimised_and_only_epochs_every_fold_reached_count():
    by_loss = THREE_EPOCHS.model_copy(update={"metric_for_best_model": "eval_loss"})
    choice = choose_epoch({0: _trace([0.5, 0.4, 0.3], "loss"), 1: _trace([0.5, 0.45], "loss")}, by_loss)
    assert choice["epochs"] == [1, 2] and choice["chosen_epoch"] == 2
    assert choose_epoch({}, THREE_EPOCHS) is None
    assert choose_epoch({0: [{"epoch": 1.5, "figures": {"test_f1": 0.9}}]}, THREE_EPOCHS) is None


def test_the_choice_carries_over_only_to_a_model_with_the_folds_schedule():
    result = {"epoch_choice": choose_epoch({0: _trace([0.6, 0.8, 0.6]), 1: _trace([0.7, 0.8, 0.6])}, THREE_EPOCHS),
              "held_out_rows": 144}
    chosen = stop_epoch_from(result, THREE_EPOCHS)
    assert chosen["stop_at_epoch"] == 2
    assert chosen["note"] == ("epoch 2 of 3, chosen on the mean held-out f1 of 2 cross-validation folds "
                              "(144 held-out rows) (the best)")
    longer = stop_epoch_from(result, THREE_EPOCHS.model_copy(update={"num_train_epochs": 8}))
    assert longer["stop_at_epoch"] is None and "trained 3 epochs and this model 8" in longer["note"]
    assert stop_epoch_from(None, THREE_EPOCHS)["stop_at_epoch"] is None


def test_folds_are_scored_at_the_chosen_epoch_from_their_held_out_predictions(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cv"
    result = cross_validate(tiny_dataset, TINY_MODEL, THREE_EPOCHS, 2, str(out), show_progress=False)
    choice = result["epoch_choice"]
    assert choice["epochs"] == [1, 2, 3] and choice["folds"] == [0, 1]
    loaded = load_training_data(tiny_dataset)
    fold_ids = fold_of_rows(loaded, 2, THREE_EPOCHS.seed)
    labels = loaded.splits["train"].labels
    per_epoch = []
    for fold in (0, 1):
        held_out = labels[fold_ids == fold]
        files = sorted((out / f"fold_{fold}" / "held_out").glob("validation_*.npy"))
        assert len(files) == 3
        figures = [held_out_figures(held_out, np.load(path), 0) for path in files]
        per_epoch.append([row["test_f1"] for row in figures])
        row = result["folds"][fold]
        assert row["epoch"] == choice["chosen_epoch"]
        at_choice = figures[choice["chosen_epoch"] - 1]
        assert row["test_mcc"] == pytest.approx(at_choice["test_mcc"])
        assert row["test_roc_auc"] == pytest.approx(at_choice["test_roc_auc"])
    means, sds = np.mean(per_epoch, axis=0), np.std(per_epoch, axis=0, ddof=1)
    assert choice["mean"] == pytest.approx(means.tolist())
    best = int(np.argmax(means))
    within = [epoch for epoch, mean in enumerate(means, start=1) if mean >= means[best] - sds[best] / np.sqrt(2)]
    assert choice["best_epoch"] == best + 1 and choice["chosen_epoch"] == max(within)
    assert np.sum(result["pooled_confusion_matrix"]) == len(labels) == result["held_out_rows"]
    page = (out / "report.html").read_text()
    assert f"{choice['chosen_epoch']} (chosen)" in page and "held-out f1 mean" in page
    assert page.count("data:image/png;base64,") == 3  # the epoch choice, the fold bars, the pooled matrix
    with (out / "folds.csv").open() as handle:
        assert {int(row["epoch"]) for row in csv.DictReader(handle)} == {choice["chosen_epoch"]}
    _fold_models_hold_the_chosen_epoch(out, result, loaded, fold_ids, capsys)


def _fold_models_hold_the_chosen_epoch(out, result, loaded, fold_ids, capsys):
    """Each fold's kept model predicts its held-out rows as it did after the chosen epoch; they ensemble."""
    chosen = result["epoch_choice"]["chosen_epoch"]
    assert result["chosen_models"] == ["fold_0/model_at_chosen_epoch", "fold_1/model_at_chosen_epoch"]
    train = loaded.splits["train"]
    for fold in (0, 1):
        model = load_model(str(out / result["chosen_models"][fold]))
        rows = [train.input_ids[index] for index in np.flatnonzero(fold_ids == fold)]
        stored = np.load(out / f"fold_{fold}" / "held_out" / f"validation_{chosen:03d}.npy")
        np.testing.assert_allclose(split_probabilities(model.model, model.tokenizer, rows), stored, atol=1e-5)
        # The per-epoch weights served the choice; the cross-validation's folder keeps only the chosen ones.
        assert not list((out / f"fold_{fold}" / "held_out").glob("weights_*"))
    members = fold_model_dirs(out, result)
    assert [name for name, _ in members] == [f"fold {fold} at epoch {chosen}" for fold in (0, 1)]
    summary = build_ensemble_folder(members, out.parent / "ensemble", loaded, "with_motif")
    test = loaded.splits["test"]
    ensemble = load_model(str(out.parent / "ensemble" / "model_files"))
    expected = held_out_figures(test.labels, split_probabilities(ensemble.model, ensemble.tokenizer, test.input_ids), 0)
    assert summary["test_mcc"] == pytest.approx(expected["test_mcc"]) and summary["roc_positive_label"] == "with_motif"
    for (_, path), row in zip(members, summary["members"], strict=True):
        member = load_model(str(path))
        alone = held_out_figures(test.labels, split_probabilities(member.model, member.tokenizer, test.input_ids), 0)
        assert row["test_roc_auc"] == pytest.approx(alone["test_roc_auc"])
    assert "kmer_1_4" in summary["baselines"]
    assert json.loads((out.parent / "ensemble" / "metrics.json").read_text())["test_mcc"] == summary["test_mcc"]
    page = (out.parent / "ensemble" / "report.html").read_text()
    assert "Ensemble of 2 models" in page and f"fold 1 at epoch {chosen}" in page
    # The command: the same members from the cross-validation folder, the same figures.
    data = Path(loaded.source).parent
    args = ["--cross_validation", str(out), "--dataset", str(data), "--tokeniser_path", str(data.parent / "k.json"),
            "--positive_label", "with_motif", "-o", str(out.parent / "ensemble_cli")]
    assert ensemble_command.main(args) == 0
    printed = capsys.readouterr().out
    assert re.search(rf"^  ensemble +{summary['test_mcc']:.3f} +{summary['test_roc_auc']:.3f} ", printed, re.M)
    assert re.search(r"^  1–4-mer baseline +\d", printed, re.M)
    assert f"ensemble MCC {summary['test_mcc'] - summary['baselines']['kmer_1_4']['test_mcc']:+.3f}" in printed


def test_stop_at_epoch_keeps_that_epoch_on_the_full_schedule(tiny_dataset, tmp_path):
    full = train_classifier(tiny_dataset, TINY_MODEL, THREE_EPOCHS.model_copy(update={"load_best_model_at_end": False}),
                            str(tmp_path / "full"), show_progress=False, on_epoch=None, with_baselines=False)
    stopped = train_classifier(tiny_dataset, TINY_MODEL, THREE_EPOCHS.model_copy(update={"stop_at_epoch": 2}),
                               str(tmp_path / "stopped"), show_progress=False, on_epoch=None, with_baselines=False)
    assert full["epochs_run"] == 3 and stopped["epochs_run"] == 2 and stopped["model_epoch"] == 2
    rows = [list(csv.DictReader((tmp_path / run / "history.csv").open())) for run in ("full", "stopped")]
    # The same schedule: the learning rate after epoch 2 has not decayed to zero, and epoch 2 is epoch 2 of 3.
    assert float(rows[1][1]["learning_rate"]) == pytest.approx(float(rows[0][1]["learning_rate"]))
    assert float(rows[1][1]["learning_rate"]) > 0
    assert float(rows[1][1]["eval_loss"]) == pytest.approx(float(rows[0][1]["eval_loss"]), rel=1e-5)
    # The weights kept are epoch 2's (its validation), even where another validation scored better.
    assert stopped["eval_loss"] == pytest.approx(float(rows[1][1]["eval_loss"]))


def test_the_commands_offer_and_check_stop_at_epoch(tiny_dataset, tmp_path, capsys):
    settings = ["-t", "test", "-v", "valid", "--no_progress", "--num_layers", "1", "--hidden_size", "16",
                "--num_heads", "2", "--intermediate_size", "32",
                "--per_device_train_batch_size", "16", "--learning_rate", "0.003", "--collapse_epochs", "0"]
    trains = [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, *settings]
    cross_validates = [tiny_dataset.train_path, "parquet", "--tokeniser_path", tiny_dataset.tokenizer_path, *settings]
    assert train_command.main([*trains, "--num_train_epochs", "2", "--stop_at_epoch", "3",
                               "-o", str(tmp_path / "late")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "stop_at_epoch (3) is after the last epoch" in error
    assert not (tmp_path / "late").exists()
    cv_args = [*cross_validates, "--num_train_epochs", "2", "-k", "2", "-o", str(tmp_path / "cv")]
    assert cross_validate_command.main(cv_args) == 0
    printed = capsys.readouterr().out
    chosen = json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())["epoch_choice"]["chosen_epoch"]
    assert f"--stop_at_epoch {chosen}" in printed
    assert train_command.main([*trains, "--num_train_epochs", "2", "--stop_at_epoch", str(chosen),
                               "-o", str(tmp_path / "final")]) == 0
    assert f"checkpoint: epoch {chosen}, where stop_at_epoch stopped training" in capsys.readouterr().out
    assert json.loads((tmp_path / "final" / "metrics.json").read_text())["model_epoch"] == chosen
