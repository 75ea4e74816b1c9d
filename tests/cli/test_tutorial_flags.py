"""The original toolkit's flags and files as its users pass them: accepted, recorded, or refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from genomenlp.components.cli import cross_validate, fit_powerlaw, interpret, sweep, train

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "data" / "tutorial"
TINY = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
        "--max_positions", "64", "--no_progress"]


def data_args(dataset: Path) -> list[str]:
    return [str(dataset / "train.parquet"), "parquet", str(dataset / "tokenizer.json"), "-t", "test", "-v", "valid"]


@pytest.fixture(scope="module")
def renamed_dataset(tiny_kmer_dataset, tmp_path_factory):
    """The tiny dataset with its label column called ``class_id`` (as another tool might name it)."""
    folder = tmp_path_factory.mktemp("renamed") / "data"
    shutil.copytree(tiny_kmer_dataset, folder)
    for split in ("train", "test", "valid"):
        frame = pd.read_parquet(folder / f"{split}.parquet").rename(columns={"labels": "class_id"})
        frame.to_parquet(folder / f"{split}.parquet")
    return folder


@pytest.fixture(scope="module")
def trained(renamed_dataset, tmp_path_factory, one_torch_thread):
    """``train`` with the original's tracker flags, -l naming the label column, -n and --wandb_off."""
    out = tmp_path_factory.mktemp("trained") / "run"
    argv = [*data_args(renamed_dataset), "-l", "class_id", "-e", "tyagilab", "-p", "testm3", "-n", "3",
            "--wandb_off", "-o", str(out), "--num_train_epochs", "2", "--learning_rate", "0.01",
            "--per_device_train_batch_size", "8", *TINY]
    return out, argv


def test_train_takes_the_label_column_tracker_flags_and_notes(trained, capsys):
    out, argv = trained
    assert train.main(argv) == 0
    printed = capsys.readouterr()
    notes = [line for line in printed.err.splitlines() if "note:" in line]
    assert len(notes) == 2 and "--wandb_off has no effect" in notes[0] and "-n 3 is ignored" in notes[1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tracking"] == {"entity_name": "tyagilab", "project_name": "testm3", "group_name": "train"}
    assert "tyagilab" in (out / "report.html").read_text()


def test_a_missing_label_column_is_one_line(renamed_dataset, tmp_path, capsys):
    argv = [*data_args(renamed_dataset), "-l", "labels", "-o", str(tmp_path / "x"), *TINY]
    assert train.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "lacks columns ['labels']" in error
    assert train.main([*argv[:-len(TINY)], "-l", "a", "b", *TINY]) == 2
    assert "give one label column, got 2" in capsys.readouterr().err


def test_interpret_label_names_are_class_display_names(trained, tmp_path, capsys):
    out, argv = trained
    if not (out / "model_files").exists():
        assert train.main(argv) == 0
    model = str(out / "model_files")
    assert interpret.main([model, "ACGTACGTAACCGGTT", "-l", "POS", "NEG", "-o", str(tmp_path / "i"), "-n", "4",
                           "--no_progress"]) == 0
    header = (tmp_path / "i" / "summary.tsv").read_text().splitlines()[0]
    assert "p_POS\tp_NEG" in header
    capsys.readouterr()
    assert interpret.main([model, "ACGTACGTAA", "-l", "ONLY", "-o", str(tmp_path / "j")]) == 2
    error = capsys.readouterr().err
    assert "got 1 names for the model's 2 classes" in error and "--true_labels" in error


def test_fit_powerlaw_takes_models_through_m_or_positionally(capsys, tmp_path):
    args = fit_powerlaw.build_parser().parse_args(["x", "-m", "a", "b", "-m", "c"])
    assert args.models == ["x"] and args.model_paths == ["a", "b", "c"]
    assert fit_powerlaw.main(["-o", str(tmp_path / "fit")]) == 2
    assert "give at least one model folder" in capsys.readouterr().err


def test_wrong_kind_of_json_for_w_is_one_line_pointing_at_the_right_file(tiny_kmer_dataset, tmp_path, capsys):
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    hyperparams, spec = str(TUTORIAL / "hyperparams.json"), str(TUTORIAL / "sweep.json")
    cases = [
        (sweep.main, hyperparams, ["is a training-arguments file", "data/tutorial/sweep.json"]),
        (sweep.main, str(array), ["is a JSON array (2 items)", "data/tutorial/sweep.json"]),
        (train.main, spec, ["is a sweep specification", "data/tutorial/hyperparams.json"]),
        (train.main, str(array), ["is a JSON array (2 items)", "data/tutorial/hyperparams.json"]),
    ]
    for main, path, expected in cases:
        capsys.readouterr()
        assert main([*data_args(tiny_kmer_dataset), "-w", path, "-o", str(tmp_path / "out"), *TINY]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1, error
        assert all(text in error for text in expected), error
    assert not (tmp_path / "out").exists()
    capsys.readouterr()
    assert cross_validate.main([str(tiny_kmer_dataset / "train.parquet"), "parquet", "-w", spec, "-o",
                                str(tmp_path / "cv")]) == 2
    assert "is a sweep specification" in capsys.readouterr().err


def test_config_from_run_that_resolves_to_nothing_says_what_it_could_be(tiny_kmer_dataset, tmp_path, capsys):
    argv = [str(tiny_kmer_dataset / "train.parquet"), "parquet", "--config_from_run", "p9do3gzl", "-m",
            str(tmp_path / "no_sweep"), "-o", str(tmp_path / "cv")]
    assert cross_validate.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "'p9do3gzl' is not a trial id of a sweep folder given with -m" in error
    assert "registry:NAME@VERSION" in error and "Best run <id>" in error


def test_ctrl_c_during_a_sweep_is_one_line_and_the_study_resumes(tiny_kmer_dataset, tmp_path, one_torch_thread):
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"method": "random", "metric": {"name": "eval/f1", "goal": "maximize"},
                                "parameters": {"learning_rate": {"values": [0.01]}, "epochs": {"value": 3}}}))
    out = tmp_path / "sweep_out"
    argv = [*data_args(tiny_kmer_dataset), "-w", str(spec), "-n", "2", "-o", str(out),
            "--per_device_train_batch_size", "4", "--collapse_epochs", "0", *TINY]
    code = "import sys; from genomenlp.components.cli import sweep; sys.exit(sweep.main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-u", "-c", code, *argv], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in process.stdout:
        if line.startswith("trial=1 epoch=1"):  # the first trial finished, the second is training
            break
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    assert process.returncode == 130
    lines = error.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in error, error
    assert lines[0].startswith(f"sweep: interrupted; kept {out / 'study.db'} with 1 finished trial(s) and their "
                               f"models in {out / 'trials' / 'trial_0000'}; the unfinished trial was discarded")
    assert lines[0].endswith("run the same command again to continue the study")
    assert (out / "trials" / "trial_0000" / "model_files").is_dir() and not (out / "trials" / "trial_0001").exists()
    # The same command continues: the interrupted trial does not count, so two trials finish in all.
    assert sweep.main(argv) == 0
    states = pd.read_csv(out / "trials.csv")["state"].tolist()
    assert states == ["COMPLETE", "INTERRUPTED", "COMPLETE"]


def test_ctrl_c_during_train_is_one_line_naming_the_kept_checkpoint(tiny_kmer_dataset, tmp_path, one_torch_thread):
    out = tmp_path / "run"
    argv = [*data_args(tiny_kmer_dataset), "-o", str(out), "--num_train_epochs", "8",
            "--per_device_train_batch_size", "4", "--collapse_epochs", "0", *TINY]
    code = "import sys; from genomenlp.components.cli import train; sys.exit(train.main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-u", "-c", code, *argv], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in process.stdout:
        if " eval_f1=" in line:  # epoch 1 is checkpointed
            break
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    assert process.returncode == 130
    lines = error.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in error, error
    assert lines[0].startswith("train: interrupted; kept the checkpoint of epoch ")
    assert lines[0].endswith(f"in {out / 'checkpoints'}; run the same command again to resume from it")
    assert train.main(argv) == 0
    assert json.loads((out / "metrics.json").read_text())["resumed_from_epoch"] >= 1
