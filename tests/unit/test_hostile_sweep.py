"""sweep on hostile specs: validated before the first trial, failed trials recorded, no study.db left."""

import csv
import json
from pathlib import Path

import pytest

from genomenlp.components.cli import sweep
from genomenlp.components.errors import InputError
from genomenlp.components.search.local import run_sweep
from genomenlp.components.search.spec import SweepSpec, load_sweep
from genomenlp.components.training.config import ModelConfig, TrainConfig

TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
# Two trials on tiny data may read as collapsed; this module is about failed settings, not collapse.
BASE = TrainConfig(num_train_epochs=1, per_device_train_batch_size=16, seed=1, collapse_epochs=0)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cli(tiny_dataset, spec_path, out) -> list[str]:
    return [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, "-t", "test", "-v", "valid",
            "-w", str(spec_path), "-n", "2", "-o", str(out), "--num_layers", "1", "--hidden_size", "16",
            "--num_heads", "2", "--intermediate_size", "32", "--no_progress"]


def test_a_json_array_is_one_line(tiny_dataset, tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text("[1, 2]")
    assert sweep.main(cli(tiny_dataset, path, tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert "JSON object" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_a_learning_rate_range_beyond_the_models_limit_is_refused_up_front(tiny_dataset, tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"parameters": {"learning_rate": {"min": 10, "max": 100}}}))
    with pytest.raises(InputError, match=r"parameters.learning_rate: 10 is out of range \(.*less than or equal to 1"):
        load_sweep(str(path))
    assert sweep.main(cli(tiny_dataset, path, tmp_path / "out")) == 2
    assert "trial=" not in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_unknown_metric_leaves_no_study(tiny_dataset, tmp_path):
    spec = SweepSpec(metric={"name": "eval/wobble"}, parameters={"learning_rate": {"values": [0.003]}})
    with pytest.raises(InputError, match="wobble"):
        run_sweep(spec, tiny_dataset, TINY_MODEL, BASE, 1, str(tmp_path / "out"), show_progress=False)
    assert not (tmp_path / "out" / "study.db").exists()


def test_a_trial_whose_settings_fail_is_recorded_and_the_search_goes_on(tiny_dataset, tmp_path):
    # hidden_size 16 is not divisible by 3 heads: that trial fails, the 4-head one trains.
    spec = SweepSpec(method="grid", parameters={"num_heads": {"values": [3, 4]}, "learning_rate": {"value": 0.003}})
    out = tmp_path / "out"
    result = run_sweep(spec, tiny_dataset, TINY_MODEL, BASE, 2, str(out), show_progress=False)
    with open(Path(out) / "trials.csv") as handle:
        rows = {int(float(row["param_num_heads"])): row["state"] for row in csv.DictReader(handle)}
    assert rows == {3: "FAIL", 4: "COMPLETE"}
    assert result["hyperparameters"]["num_heads"] == 4


def test_a_folder_of_other_files_is_not_written_into(tiny_dataset, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    spec = SweepSpec(parameters={"learning_rate": {"values": [0.003]}})
    with pytest.raises(InputError, match="not empty"):
        run_sweep(spec, tiny_dataset, TINY_MODEL, BASE, 1, str(out), show_progress=False)
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt"]
