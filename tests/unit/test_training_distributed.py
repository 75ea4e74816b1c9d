"""``train`` under ``torchrun`` on the CPU (gloo): one set of outputs, one registry version, the 1-process result."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from genomenlp.components.cli import train

NAME = "genomic_bert_ddp"
# Dropout off: each process draws its own dropout masks, so only without dropout are 2 processes and 1 the
# same computation. Then they differ by float summation order alone; this is the tolerance stated.
TOLERANCE = 1e-4
TINY = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
        "--max_positions", "64", "--dropout", "0", "--num_train_epochs", "3", "--learning_rate", "0.01",
        "--seed", "1", "--collapse_epochs", "0", "--no_progress", "-d", "cpu"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]



def test_torchrun_two_processes_write_once_and_match_one_process(client, tiny_dataset, tmp_path, one_torch_thread):
    data = [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, "-t", "test", "-v", "valid"]
    # The same global batch: 8 rows in one process, 4 in each of two.
    assert train.main([*data, *TINY, "-o", str(tmp_path / "one"), "--per_device_train_batch_size", "8",
                       "--no_register"]) == 0
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    command = [str(bin_dir / "torchrun"), "--no-python", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "train", *data, *TINY, "-o", str(tmp_path / "two"),
               "--per_device_train_batch_size", "4", "--register", NAME]
    assert shutil.which("train", path=env["PATH"])
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    printed = finished.stdout
    # Metric lines, the summary and the registration come from the first process only.
    assert printed.count("eval_f1=") == 3 and printed.count("test: MCC") == 1
    assert printed.count(f"registered as registry:{NAME}@1") == 1
    assert [v.number for v in client.list_model_versions(model=NAME, size=10)] == [1]

    two = tmp_path / "two"
    assert sorted(path.name for path in two.iterdir()) == ["history.csv", "metrics.json", "model_files", "plots",
                                                           "report.html", "test_predictions.csv"]
    assert not list(two.rglob(".*.tmp"))
    single = json.loads((tmp_path / "one" / "metrics.json").read_text())
    double = json.loads((two / "metrics.json").read_text())
    assert double["processes"] == 2 and single["processes"] == 1
    assert double["test_mcc"] == single["test_mcc"] > 0.5 and double["best_epoch"] == single["best_epoch"]
    for key in ("eval_loss", "test_loss", "test_roc_auc", "eval_f1"):
        assert double[key] == pytest.approx(single[key], rel=TOLERANCE), key
    histories = [(tmp_path / run / "history.csv").read_text().splitlines() for run in ("one", "two")]
    column = histories[0][0].split(",").index("train_loss")
    for left, right in zip(histories[0][1:], histories[1][1:], strict=True):
        assert float(right.split(",")[column]) == pytest.approx(float(left.split(",")[column]), rel=TOLERANCE)
    # Test predictions are gathered back into the split's row order, whatever the sharding.
    tables = [[line.split(",") for line in (tmp_path / run / "test_predictions.csv").read_text().splitlines()[1:]]
              for run in ("one", "two")]
    for left, right in zip(*tables, strict=True):
        assert left[:3] == right[:3]
        assert [float(p) for p in right[3:]] == pytest.approx([float(p) for p in left[3:]], rel=TOLERANCE)


def test_torchrun_cross_validation_keeps_each_folds_whole_weights_at_the_chosen_epoch(tiny_dataset, tmp_path,
                                                                                      one_torch_thread):
    import numpy as np

    from genomenlp.components.model_io import load_model
    from genomenlp.components.training.cross_validation import fold_of_rows
    from genomenlp.components.training.ensemble import split_probabilities
    from genomenlp.components.training.run import load_training_data

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "WANDB_MODE": "disabled"}
    out = tmp_path / "cv"
    command = [str(bin_dir / "torchrun"), "--no-python", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "cross_validate", tiny_dataset.train_path, "parquet", "-t", "test",
               "-v", "valid", "--tokeniser_path", tiny_dataset.tokenizer_path, *TINY, "-k", "2", "-o", str(out),
               "--per_device_train_batch_size", "4", "--wandb_off"]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads((out / "cv_metrics.json").read_text())
    chosen = result["epoch_choice"]["chosen_epoch"]
    loaded = load_training_data(tiny_dataset)
    fold_ids = fold_of_rows(loaded, 2, 1)
    for fold, folder in enumerate(result["chosen_models"]):
        # The weights gathered from both processes predict the held-out rows as the run did after that epoch.
        model = load_model(str(out / folder))
        rows = [loaded.splits["train"].input_ids[index] for index in np.flatnonzero(fold_ids == fold)]
        stored = np.load(out / f"fold_{fold}" / "held_out" / f"validation_{chosen:03d}.npy")
        np.testing.assert_allclose(split_probabilities(model.model, model.tokenizer, rows), stored, atol=1e-4)
    assert len(result["chosen_models"]) == 2
