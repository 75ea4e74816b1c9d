"""Training end to end on tiny data: outputs, resume after interruption, hyperparameter files."""

import json
import shutil
from pathlib import Path

import pytest

from genomenlp.components.cli import kmerise, train
from genomenlp.components.training.config import ModelConfig, TrainConfig, training_config_from_hyperparams
from genomenlp.components.training.run import train_classifier

TUTORIAL_HYPERPARAMS = str(Path(__file__).resolve().parents[2] / "data" / "tutorial" / "hyperparams.json")
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
TINY_TRAINING = TrainConfig(num_train_epochs=2, per_device_train_batch_size=16, learning_rate=3e-3, seed=3)


def test_train_writes_model_metrics_history_plots_and_report(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    summary = train_classifier(tiny_dataset, TINY_MODEL, TINY_TRAINING, str(out), show_progress=False)
    printed = capsys.readouterr().out
    assert printed.count("eval_f1=") == 2 and "eval_loss=" in printed
    assert summary["epochs_run"] == 2 and 1 <= summary["best_epoch"] <= 2
    assert set(summary["baselines"]) == {"gc_content", "kmer_1_4"}
    assert 0 <= summary["test_roc_auc"] <= 1
    assert json.loads((out / "metrics.json").read_text())["test_mcc"] == summary["test_mcc"]
    for name in ("history.csv", "test_predictions.csv", "report.html", "plots/roc.png", "plots/pr.png",
                 "plots/confusion_matrix.png", "plots/history.png", "model_files/model.safetensors",
                 "model_files/tokenizer.json", "model_files/genomenlp.json"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "checkpoints").exists()
    from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast

    model = AutoModelForSequenceClassification.from_pretrained(out / "model_files")
    assert model.config.id2label == {0: "with_motif", 1: "without"}
    tokenizer = PreTrainedTokenizerFast.from_pretrained(out / "model_files")
    assert tokenizer.pad_token == "<pad>" and tokenizer.cls_token == "<s>"
    assert "data:image/png;base64," in (out / "report.html").read_text()
    # The positive class is the first class file given, in the figures, the curve and on the plots.
    import pandas as pd
    from PIL import Image
    from sklearn.metrics import average_precision_score

    assert summary["roc_positive_label"] == "with_motif"
    predictions = pd.read_csv(out / "test_predictions.csv")
    assert summary["test_pr_auc"] == pytest.approx(
        average_precision_score(predictions["label"] == "with_motif", predictions["p_with_motif"]))
    for plot in ("roc", "pr"):
        words = Image.open(out / "plots" / f"{plot}.png").text["Description"]
        assert "positive class: with_motif" in words and "without (" not in words, words


def test_finished_run_is_not_replaced_without_overwrite(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    train_classifier(tiny_dataset, TINY_MODEL, TINY_TRAINING.model_copy(update={"num_train_epochs": 1}), str(out),
                     show_progress=False, with_baselines=False)
    with pytest.raises(Exception, match="finished run"):
        train_classifier(tiny_dataset, TINY_MODEL, TINY_TRAINING, str(out), show_progress=False)


class Interrupt(Exception):
    pass


def test_resume_after_interruption_matches_an_uninterrupted_run(tiny_dataset, tmp_path):
    config = TINY_TRAINING.model_copy(update={"num_train_epochs": 3})
    whole = train_classifier(tiny_dataset, TINY_MODEL, config, str(tmp_path / "whole"), show_progress=False,
                             on_epoch=None, with_baselines=False)

    def crash_after_second(epoch, row):
        if epoch == 2:
            raise Interrupt

    out = tmp_path / "interrupted"
    with pytest.raises(Interrupt):
        train_classifier(tiny_dataset, TINY_MODEL, config, str(out), show_progress=False, on_epoch=crash_after_second,
                         with_baselines=False)
    assert (out / "checkpoints" / "state.json").exists() and not (out / "metrics.json").exists()
    resumed = train_classifier(tiny_dataset, TINY_MODEL, config, str(out), show_progress=False, on_epoch=None,
                               with_baselines=False)
    assert resumed["resumed_from_epoch"] == 2 and resumed["epochs_run"] == 3
    assert resumed["test_loss"] == pytest.approx(whole["test_loss"], rel=1e-5)
    assert resumed["eval_loss"] == pytest.approx(whole["eval_loss"], rel=1e-5)


def test_checkpoint_of_another_run_is_refused(tiny_dataset, tmp_path):
    out = tmp_path / "other"

    def stop(epoch, row):
        raise Interrupt

    with pytest.raises(Interrupt):
        train_classifier(tiny_dataset, TINY_MODEL, TINY_TRAINING, str(out), show_progress=False, on_epoch=stop)
    with pytest.raises(Exception, match="checkpoints of a different run"):
        train_classifier(tiny_dataset, TINY_MODEL, TINY_TRAINING.model_copy(update={"seed": 9}), str(out),
                         show_progress=False)


def test_tutorial_hyperparams_load_as_is_and_secrets_are_not_kept(caplog):
    config = training_config_from_hyperparams(TUTORIAL_HYPERPARAMS, {"num_train_epochs": 1})
    assert config.learning_rate == pytest.approx(7.796477400405317e-05)
    assert config.per_device_train_batch_size == 16 and config.num_train_epochs == 1
    assert config.metric_for_best_model == "eval_loss"
    warnings = [r for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(warnings) == 1 and "hub_token" not in warnings[0].getMessage()
    assert "hub_token" not in config.model_dump_json()


def test_train_command_with_tutorial_file_and_flags(tiny_dataset, tmp_path, capsys):
    shutil.copy(TUTORIAL_HYPERPARAMS, tmp_path / "hyperparams.json")
    out = tmp_path / "cli"
    args = [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, "-t", "test", "-v", "valid",
            "-w", str(tmp_path / "hyperparams.json"), "-o", str(out), "--num_train_epochs", "1",
            "--learning_rate", "0.002", "--num_layers", "1", "--hidden_size", "16", "--num_heads", "2",
            "--intermediate_size", "32", "--no_progress", "-d", "cpu", "--positive_label", "without"]
    assert train.main(args) == 0
    printed = capsys.readouterr().out
    assert "report:" in printed and "test: MCC" in printed
    saved = (out / "model_files" / "genomenlp.json").read_text()
    assert '"learning_rate": 0.002' in saved and "HUB_TOKEN" not in saved and "hub_token" not in saved
    assert json.loads((out / "metrics.json").read_text())["roc_positive_label"] == "without"


def test_train_command_bad_input_is_one_line(tiny_dataset, tmp_path, capsys):
    args = [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, "-o", str(tmp_path / "x"),
            "--hidden_size", "10", "--num_heads", "3"]
    assert train.main(args) == 2
    assert "divisible" in capsys.readouterr().err
    assert train.main([*args[:4], str(tmp_path / "z"), "--positive_label", "enhancer"]) == 2
    assert "--positive_label: 'enhancer' is not a class" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()
    wrong_tokeniser = tmp_path / "k3.json"
    assert kmerise.main(["-i", tiny_dataset.tokenizer_path.replace("k.json", "without.fa"), "-k", "3",
                         "-t", str(wrong_tokeniser)]) == 0
    assert train.main([tiny_dataset.train_path, "parquet", str(wrong_tokeniser), "-o", str(tmp_path / "y")]) == 2
    assert "not the tokeniser this dataset was encoded with" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
