"""Ctrl-C (SIGINT) in every long-running command: one line, no traceback, and a state the message describes.

Each command runs in a subprocess, as a user's terminal runs it, and gets SIGINT once it is demonstrably
mid-work (its checkpoint, staging folder or temporary file exists). ``train`` and ``sweep`` have theirs in
tests/cli/test_tutorial_flags.py.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genomenlp.components.cli import cross_validate, predict, pretrain
from genomenlp.components.tokenisers.kmer import build_kmer_tokenizer

REPO = Path(__file__).resolve().parents[2]
TINY = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
        "--max_positions", "64", "--no_progress", "-d", "cpu"]
TRAINING = [*TINY, "--learning_rate", "0.003", "--per_device_train_batch_size", "8", "--collapse_epochs", "0"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def interrupt_when(module: str, argv: list[str], ready, timeout: float = 120) -> tuple[int, list[str]]:
    """Run ``components.cli.<module>``, send SIGINT once ``ready(pid)`` holds; return its status and stderr lines."""
    code = f"import sys; from genomenlp.components.cli import {module}; sys.exit({module}.main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + timeout
    while not ready(process.pid):
        assert process.poll() is None, f"{module} ended before it could be interrupted: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"{module} never reached the point to interrupt"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    assert "Traceback" not in error, error
    lines = error.strip().splitlines()
    assert len(lines) == 1, error
    return process.returncode, lines


def test_cross_validate_keeps_finished_folds_and_the_same_command_continues(tiny_dataset, tmp_path):
    out = tmp_path / "cv"
    argv = [tiny_dataset.train_path, "parquet", "-k", "2", "-o", str(out), "--num_train_epochs", "2", *TRAINING]
    code, (line,) = interrupt_when("cross_validate", argv, lambda pid: (out / "fold_0" / "metrics.json").is_file())
    assert code == 130
    assert line.startswith(f"cross_validate: interrupted; kept the finished folds {out / 'fold_0'}"), line
    assert line.endswith("no summary was written; run the same command again to continue (finished folds are "
                         "kept), or with --overwrite to start over"), line
    assert not (out / "cv_metrics.json").exists()
    finished = (out / "fold_0" / "metrics.json").read_bytes()
    # Other settings would mix folds of two experiments: refused in one line.
    assert cross_validate.main([*argv, "--seed", "9"]) == 2
    assert cross_validate.main(argv) == 0
    assert (out / "fold_0" / "metrics.json").read_bytes() == finished  # kept, not trained again
    result = json.loads((out / "cv_metrics.json").read_text())
    assert [row["fold"] for row in result["folds"]] == [0, 1]


def test_a_cross_validation_with_other_settings_is_not_continued(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cv"
    out.mkdir()
    (out / "cv_state.json").write_text(json.dumps({"fingerprint": "another experiment"}))
    argv = [tiny_dataset.train_path, "parquet", "-k", "2", "-o", str(out), "--num_train_epochs", "1", *TRAINING]
    assert cross_validate.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"cross_validate: error: {out}: holds an interrupted cross-validation with other settings or "
                     "data; pass --overwrite to start over, or choose another folder")
    assert sorted(path.name for path in out.iterdir()) == ["cv_state.json"]


@pytest.fixture
def genome(tmp_path):
    rng = random.Random(3)
    path = tmp_path / "genome.fa.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(">chr\n" + "".join(rng.choice("ACGT") for _ in range(6000)) + "\n")
    tokens = tmp_path / "k3.json"
    tokens.write_text(build_kmer_tokenizer(3).to_json())
    return str(path), str(tokens)


def test_pretrain_keeps_its_checkpoint_and_the_same_command_resumes(genome, tmp_path):
    out = tmp_path / "encoder"
    argv = [*genome, "-o", str(out), "--max_steps", "24", "--checkpoint_every", "2", "--logging_steps", "2",
            "--per_device_train_batch_size", "8", "--shuffle_buffer", "32", *TINY]
    code, (line,) = interrupt_when("pretrain", argv, lambda pid: (out / "checkpoints" / "state.json").is_file())
    assert code == 130
    assert line.startswith("pretrain: interrupted; kept the checkpoint of step ") and line.endswith(
        f"in {out / 'checkpoints'}; run the same command again to resume from it"), line
    step = int(line.split("step ")[1].split()[0])
    assert not (out / "metrics.json").exists()
    assert pretrain.main(argv) == 0
    assert json.loads((out / "metrics.json").read_text())["resumed_from_step"] == step


@pytest.fixture
def model_and_records(tmp_path, random_classifier_folder):
    model = random_classifier_folder(tmp_path / "model", build_kmer_tokenizer(3), ["a", "b"], 64)
    rng = random.Random(4)
    fasta = tmp_path / "records.fa"
    fasta.write_text("".join(f">r{index}\n{''.join(rng.choice('ACGT') for _ in range(60))}\n"
                             for index in range(4000)))
    return model, str(fasta)


def test_predict_interrupted_writes_nothing(model_and_records, tmp_path):
    model, fasta = model_and_records
    output = tmp_path / "predictions.tsv"
    code, lines = interrupt_when("predict", [model, fasta, "-o", str(output), "-d", "cpu"],
                                 lambda pid: any(tmp_path.glob(".predictions.tsv.*.tmp")))
    assert code == 130 and lines == ["predict: interrupted; no output was written"]
    assert not output.exists() and not list(tmp_path.glob(".predictions.tsv.*"))
    # Nothing is in the way of the next run.
    assert predict.main([model, fasta, "-o", str(output), "-d", "cpu"]) == 0 and output.is_file()


def test_interpret_interrupted_writes_nothing(model_and_records, tmp_path):
    model, fasta = model_and_records
    out = tmp_path / "pages"
    code, lines = interrupt_when("interpret", [model, fasta, "-o", str(out), "--no_progress", "-n", "4"],
                                 lambda pid: any(tmp_path.glob(".pages.*.tmp")))
    assert code == 130 and lines == ["interpret: interrupted; no output was written"]
    assert not out.exists() and not list(tmp_path.glob(".pages.*"))


def test_an_interrupt_raised_inside_a_finalizer_still_stops_the_command_with_one_line():
    # A signal can land while a weakref callback or __del__ runs, where Python only prints
    # "Exception ignored in …" and goes on: the command must still stop, with its one line.
    code = (
        "import sys, time\n"
        "from genomenlp.components.cli.common import run_command\n"
        "class Finalised:\n"
        "    def __del__(self):\n"
        "        raise KeyboardInterrupt\n"
        "def body(argv):\n"
        "    Finalised()\n"
        "    deadline = time.monotonic() + 10\n"
        "    while time.monotonic() < deadline:\n"
        "        pass\n"
        "    print('never interrupted')\n"
        "sys.exit(run_command(body, [], 'demo'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines() == ["demo: interrupted; no output was written"]
    assert "never interrupted" not in done.stdout
