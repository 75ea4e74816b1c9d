"""Collapse: one-class or chance-level validation predictions stop a run, mark it, and keep it from selection."""

import json

import numpy as np
import pytest

from genomenlp.components.registry import Candidate, choose_production, version_metadata
from genomenlp.components.training.collapse import TrainingCollapsed, chance_f1, degenerate_reason
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.run import train_classifier

TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)


def test_chance_f1_is_the_sum_of_squared_class_shares():
    assert chance_f1(np.array([0, 1, 0, 1])) == pytest.approx(0.5)
    assert chance_f1(np.array([0, 0, 0, 1])) == pytest.approx(0.625)


def test_degenerate_validation_results():
    labels = np.array([0, 0, 1, 1])
    one_class = np.array([[0.6, 0.4]] * 4)
    assert degenerate_reason(labels, one_class, 0.333) == "every validation prediction is class 0"
    # Two classes predicted, but wrong as often as right: chance.
    half_right = np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    assert "no better than chance (0.500)" in degenerate_reason(labels, half_right, 0.5)
    right = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    assert degenerate_reason(labels, right, 1.0) is None


def test_a_collapsing_run_stops_after_two_epochs_and_says_so(tiny_dataset, tmp_path, one_torch_thread):
    # lr 1e-5 for 6 epochs: the tiny model predicts one class for its first two validations.
    config = TrainConfig(learning_rate=1e-5, num_train_epochs=6, per_device_train_batch_size=16, seed=1)
    summary = train_classifier(tiny_dataset, TINY_MODEL, config, str(tmp_path / "run"), show_progress=False,
                               on_epoch=None)
    assert summary["epochs_run"] == 2
    assert summary["collapsed"].startswith("collapsed: every validation prediction is class")
    assert "in epochs 1-2 (learning_rate 1e-05" in summary["collapsed"]
    assert "COLLAPSED:" in (tmp_path / "run" / "report.html").read_text()
    with pytest.raises(TrainingCollapsed, match="collapsed: "):
        train_classifier(tiny_dataset, TINY_MODEL, config, str(tmp_path / "dropped"), show_progress=False,
                         on_epoch=None, keep_collapsed=False)
    assert not (tmp_path / "dropped" / "metrics.json").exists()
    # With detection off the same run trains all its epochs.
    off_config = config.model_copy(update={"collapse_epochs": 0, "num_train_epochs": 3})
    off = train_classifier(tiny_dataset, TINY_MODEL, off_config, str(tmp_path / "off"), show_progress=False,
                           on_epoch=None, with_baselines=False)
    assert off["epochs_run"] == 3 and off["collapsed"] is None


def test_a_learning_run_is_not_collapsed(tiny_dataset, tmp_path, one_torch_thread):
    config = TrainConfig(learning_rate=0.01, num_train_epochs=2, per_device_train_batch_size=8, seed=1)
    summary = train_classifier(tiny_dataset, TINY_MODEL, config, str(tmp_path / "run"), show_progress=False,
                               on_epoch=None, with_baselines=False)
    assert summary["collapsed"] is None and summary["epochs_run"] == 2 and summary["eval_f1"] > 0.6


def test_collapsed_versions_are_never_promoted():
    assert choose_production([Candidate(1, 0.9, 0.5, collapsed=True), Candidate(2, 0.7, 0.5)]) == 2
    assert choose_production([Candidate(1, 0.9, 0.5, collapsed=True)]) is None
    flat = version_metadata({"test_mcc": 0.0, "collapsed": "collapsed: …", "tracking": {"entity_name": "team"}})
    assert flat["collapsed"] == 1 and flat["entity_name"] == "team"


def test_collapse_advice_keeps_the_range_under_the_collapses():
    from genomenlp.components.search.local import collapse_advice

    rows = [{"state": "PRUNED", "collapsed": "collapsed: …", "param_learning_rate": 0.06},
            {"state": "PRUNED", "collapsed": "collapsed: …", "param_learning_rate": 0.05},
            {"state": "COMPLETE", "collapsed": "", "param_learning_rate": 0.02}]
    advice = collapse_advice(rows)
    assert advice.startswith("2 of 3 trials collapsed") and "at learning_rate 0.05-0.06" in advice
    assert advice.endswith('"learning_rate": {"min": 1e-05, "max": 0.02}')
    assert collapse_advice(rows[:2]).endswith('"max": 0.001}')
    slow = [{"state": "PRUNED", "collapsed": "collapsed: …", "param_learning_rate": 1e-5}]
    assert "raise the range's min or the epochs" in collapse_advice(slow)


def test_cross_validate_prints_and_reports_collapsed_folds(tiny_dataset, tmp_path, capsys, one_torch_thread):
    from genomenlp.components.cli import cross_validate

    out = tmp_path / "cv"
    argv = [tiny_dataset.train_path, "parquet", "--tokeniser_path", tiny_dataset.tokenizer_path, "-k", "2",
            "-o", str(out), "--learning_rate", "1e-5", "--num_train_epochs", "4", "--num_layers", "1",
            "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32", "--max_positions", "64",
            "--no_progress"]
    assert cross_validate.main(argv) == 0
    printed = capsys.readouterr().out
    assert "fold 0: " in printed and "COLLAPSED (collapsed: every validation prediction is class" in printed
    assert "COLLAPSED: 2 of 2 folds (0, 1) predicted one class or no better than chance" in printed
    result = json.loads((out / "cv_metrics.json").read_text())
    assert result["collapsed_folds"] == [0, 1] and all(row["epoch"] <= 2 for row in result["folds"])
    assert "COLLAPSED: 2 of 2 folds (0, 1)" in (out / "report.html").read_text()


def test_a_collapsed_katib_trial_exits_non_zero_so_it_is_never_chosen(tiny_dataset, tmp_path, capsys,
                                                                       one_torch_thread):
    from genomenlp.components.cli import train as train_command
    from genomenlp.components.katib.config import KatibConfig
    from genomenlp.components.katib.experiment import trial_command
    from genomenlp.components.search.spec import SweepSpec

    spec = SweepSpec(parameters={"learning_rate": {"min": 1e-5, "max": 1e-3}})
    assert "--fail_on_collapse" in trial_command(spec, KatibConfig())
    arguments = [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, "-t", "test", "-v", "valid",
                 "-o", str(tmp_path / "trial"), "--learning_rate", "1e-5", "--num_train_epochs", "6",
                 "--per_device_train_batch_size", "16", "--seed", "1", "--num_layers", "1", "--hidden_size", "16",
                 "--num_heads", "2", "--intermediate_size", "32", "--max_positions", "64", "--no_register",
                 "--no_progress"]
    assert train_command.main([*arguments, "--fail_on_collapse"]) == train_command.COLLAPSED_EXIT
    error = capsys.readouterr().err.strip()
    assert "collapsed: every validation prediction is class" in error and len(error.splitlines()) == 1
