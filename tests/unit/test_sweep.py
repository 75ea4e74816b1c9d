"""Local sweeps with the tutorial's format: every method, a diverging trial, hyperband, continuation."""

import csv
import json
from pathlib import Path

import pytest

from genomenlp.components.cli import sweep
from genomenlp.components.errors import InputError
from genomenlp.components.search.local import run_sweep
from genomenlp.components.search.spec import SweepSpec, load_sweep, split_settings
from genomenlp.components.training.config import ModelConfig, TrainConfig

TUTORIAL_SWEEP = str(Path(__file__).resolve().parents[2] / "data" / "tutorial" / "sweep.json")
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
# Two epochs at batch 8: the tiny model shows signal by epoch 2 at lr 0.01 (one epoch is still one class).
BASE = TrainConfig(num_train_epochs=2, per_device_train_batch_size=8, seed=1)


def spec(method, learning_rates, **extra):
    return SweepSpec(**{"method": method, "metric": {"name": "eval/f1", "goal": "maximize"},
                        "parameters": {"learning_rate": {"values": learning_rates}, "epochs": {"value": 2}}, **extra})


def states(out):
    with open(Path(out) / "trials.csv") as handle:
        return [row["state"] for row in csv.DictReader(handle)]


@pytest.mark.parametrize("method", ["random", "grid", "bayes"])
def test_each_method_survives_a_diverging_trial(method, tiny_dataset, tmp_path):
    out = tmp_path / method
    # lr=1.0 blows the loss up; the search records it as failed and goes on.
    result = run_sweep(spec(method, [0.01, 1.0]), tiny_dataset, TINY_MODEL, BASE, 3, str(out), show_progress=False)
    recorded = states(out)
    # A grid of two points is exhausted after two trials.
    assert len(recorded) == (2 if method == "grid" else 3)
    if method == "grid":
        assert recorded.count("FAIL") == 1
    assert "COMPLETE" in recorded
    assert result["hyperparameters"]["learning_rate"] == 0.01
    assert json.loads((out / "hyperparams.json").read_text())["learning_rate"] == 0.01
    assert (out / "model_files" / "model.safetensors").exists()
    assert "Best trial" in (out / "report.html").read_text() and (out / "trials.png").exists()


def test_rerun_continues_the_same_study(tiny_dataset, tmp_path):
    out = str(tmp_path / "continued")
    run_sweep(spec("random", [0.01, 0.02]), tiny_dataset, TINY_MODEL, BASE, 2, out, show_progress=False)
    run_sweep(spec("random", [0.01, 0.02]), tiny_dataset, TINY_MODEL, BASE, 3, out, show_progress=False)
    assert len(states(out)) == 3


def test_hyperband_prunes_on_epoch_reports(tiny_dataset, tmp_path):
    hyperband = spec("random", [0.01, 0.00001, 0.000011, 0.000012],
                     early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2})
    hyperband = hyperband.model_copy(update={"parameters": {
        **hyperband.parameters, "epochs": SweepSpec(parameters={"epochs": {"value": 3}}).parameters["epochs"]}})
    out = tmp_path / "hyperband"
    # Collapse detection off: the tiny learning rates would collapse before hyperband has a say.
    no_collapse = BASE.model_copy(update={"collapse_epochs": 0})
    run_sweep(hyperband, tiny_dataset, TINY_MODEL, no_collapse, 6, str(out), show_progress=False)
    recorded = states(out)
    assert len(recorded) == 6 and "COMPLETE" in recorded


def test_tutorial_sweep_file_loads_as_is():
    loaded = load_sweep(TUTORIAL_SWEEP)
    assert loaded.method == "random" and loaded.metric.key == "eval_f1"
    assert loaded.parameters["learning_rate"].max == 0.1
    train_fields, model_fields = split_settings({"batch_size": 5, "epochs": 2, "learning_rate": 0.01, "num_layers": 3})
    assert train_fields == {"per_device_train_batch_size": 5, "num_train_epochs": 2, "learning_rate": 0.01}
    assert model_fields == {"num_layers": 3}


def test_bad_sweep_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": "grid", "parameters": {"learning_rate": {"min": 0.1, "max": 0.2}}}))
    with pytest.raises(InputError, match="grid search needs values lists"):
        load_sweep(str(bad))
    bad.write_text(json.dumps({"parameters": {"momentum": {"values": [1]}}}))
    with pytest.raises(InputError, match="unknown parameters"):
        load_sweep(str(bad))


def test_tutorial_sweep_whose_every_trial_collapses_fails_and_chooses_nothing(tiny_dataset, tmp_path, capsys):
    tutorial = json.loads(Path(TUTORIAL_SWEEP).read_text())
    tutorial["parameters"]["epochs"] = {"values": [1]}  # keep the test short; the rest is the tutorial's
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(tutorial))
    out = tmp_path / "cli"
    args = [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, "-t", "test", "-v", "valid",
            "-w", str(path), "-n", "2", "-l", "labels", "-o", str(out), "--num_layers", "1", "--hidden_size", "16",
            "--num_heads", "2", "--intermediate_size", "32", "--no_progress"]
    # Seed 42 draws learning rates 0.06 and 0.087 from the tutorial's range: both fall to one class.
    assert sweep.main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "no trial to choose: 2 of 2 trials collapsed" in error and "narrow the learning-rate range" in error
    with open(out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["state"] for row in rows] == ["PRUNED", "PRUNED"]
    assert all(row["collapsed"].startswith("collapsed: every validation prediction is class") for row in rows)
    assert not (out / "hyperparams.json").exists() and not (out / "model_files").exists()


def test_sweep_command_katib_dry_run_writes_the_experiment(tmp_path, capsys):
    import yaml

    out = tmp_path / "katib"
    args = ["s3://bucket/data/train.parquet", "parquet", "s3://bucket/data/tokenizer.json", "-w", TUTORIAL_SWEEP,
            "-n", "6", "--backend", "katib", "--dry_run", "-o", str(out)]
    assert sweep.main(args) == 0
    experiment = yaml.safe_load((out / "experiment.yaml").read_text())
    assert experiment["kind"] == "Experiment"
    assert experiment["spec"]["objective"]["objectiveMetricName"] == "eval_f1"
    assert experiment["spec"]["maxTrialCount"] == 6
    local_dry_run = [a for a in args if a not in ("--backend", "katib")]
    with pytest.raises(SystemExit):  # --dry_run without --backend katib is a usage error
        sweep.main(local_dry_run)
    no_cluster = [a for a in args if a != "--dry_run"] + ["--experiment_yaml", str(tmp_path / "e.yaml")]
    assert sweep.main(no_cluster) == 2  # no kubeconfig here: one line, not a traceback
