"""The tutorial's TrainingArguments file applies as HF applies it, on transformers.Trainer."""

import json
from pathlib import Path

import pytest

from genomenlp.components.training.config import ModelConfig, read_hyperparams, training_config_from_mapping
from genomenlp.components.training.run import print_metric_lines, train_classifier

TUTORIAL_HYPERPARAMS = str(Path(__file__).resolve().parents[2] / "data" / "tutorial" / "hyperparams.json")
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)


class Stop(Exception):
    pass


def tutorial(**changes) -> dict:
    """The tutorial's 101-key file with some keys changed: 3 epochs at a learning rate the tiny model learns at,
    collapse detection off (an early validation of a tiny model may well be one class)."""
    return {**read_hyperparams(TUTORIAL_HYPERPARAMS), "num_train_epochs": 3, "learning_rate": 0.01,
            "collapse_epochs": 0, **changes}


def run(values: dict, out: Path, data, on_epoch=print_metric_lines) -> dict:
    """``train -w FILE`` as the command runs it: TrainConfig from the file, the file's other keys to Trainer."""
    config = training_config_from_mapping(values, "hyperparams.json")
    return train_classifier(data, TINY_MODEL, config, str(out), show_progress=False, on_epoch=on_epoch,
                            with_baselines=False, training_arguments=values)


def steps_of_first_epoch(tiny_dataset, values: dict, out: Path) -> int:
    """Optimiser steps Trainer took in epoch 1 (the checkpoint named in the resume record)."""

    def stop(epoch, row):
        raise Stop

    with pytest.raises(Stop):
        run(values, out, on_epoch=stop, data=tiny_dataset)
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    return int(state["checkpoint"].removeprefix("checkpoint-"))


def test_gradient_accumulation_steps_takes_effect(tiny_dataset, tmp_path, one_torch_thread):
    one = steps_of_first_epoch(tiny_dataset, tutorial(gradient_accumulation_steps=1), tmp_path / "one")
    two = steps_of_first_epoch(tiny_dataset, tutorial(gradient_accumulation_steps=2), tmp_path / "two")
    assert one > 2 and two == -(-one // 2)


def test_eval_strategy_takes_effect(tiny_dataset, tmp_path, capsys, one_torch_thread):
    # The tutorial's file still says evaluation_strategy (transformers 4's name); eval_strategy wins over it.
    steps = run(tutorial(eval_strategy="steps", eval_steps=2, num_train_epochs=1), tmp_path / "steps",
                data=tiny_dataset)
    lines = capsys.readouterr().out.count("eval_f1=")
    assert steps["epochs_run"] == lines > 1
    history = (tmp_path / "steps" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + lines and any("." in row.split(",")[0] for row in history[1:])
    never = run(tutorial(eval_strategy="no", num_train_epochs=2), tmp_path / "never", data=tiny_dataset)
    # No validation while training (no metric lines); one at the end for the report.
    assert capsys.readouterr().out.count("eval_f1=") == 0
    assert never["epochs_run"] == 1 and never["model_epoch"] == 2


def test_load_best_model_at_end_takes_effect(tiny_dataset, tmp_path, one_torch_thread):
    # Select on the highest validation loss: the first epoch, so the best and the last differ.
    worst = {"metric_for_best_model": "loss", "greater_is_better": True}
    best = run(tutorial(load_best_model_at_end=True, **worst), tmp_path / "best", data=tiny_dataset)
    last = run(tutorial(load_best_model_at_end=False, **worst), tmp_path / "last", data=tiny_dataset)
    assert best["best_epoch"] == last["best_epoch"] == 1
    assert best["model_epoch"] == 1 and last["model_epoch"] == 3
    assert last["test_loss"] != pytest.approx(best["test_loss"])
    history = [line.split(",") for line in (tmp_path / "last" / "history.csv").read_text().splitlines()]
    loss_column = history[0].index("eval_loss")
    assert last["eval_loss"] == pytest.approx(float(history[-1][loss_column]))


def test_overrides_are_printed_once_and_old_keys_are_renamed(tiny_dataset, tmp_path, capsys, one_torch_thread):
    config = training_config_from_mapping(tutorial(), "hyperparams.json")
    assert config.eval_strategy == "epoch" and config.load_best_model_at_end
    values = tutorial(num_train_epochs=1)
    from genomenlp.components.training import arguments

    arguments._ANNOUNCED.clear()  # earlier tests of this process have had them announced already
    for name in ("a", "b"):
        run(values, tmp_path / name, data=tiny_dataset)
    error = capsys.readouterr().err
    assert error.count("report_to=['wandb'] is overridden to 'none'") == 1
    assert error.count("output_dir='./sweep_out/random' is overridden: checkpoints live") == 1
    assert "hub_token" not in error and "HUB_TOKEN" not in error
