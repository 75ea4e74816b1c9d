"""The installed commands with ZenML's registry plugged in: train registers, others take registry: references."""

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
TINY = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
        "--num_train_epochs", "1", "--no_progress", "--collapse_epochs", "0"]  # tiny data: one epoch is one class


def run(command, *args, env):
    return subprocess.run([str(BIN / command), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_train_registers_and_predict_reads_the_registry(tiny_kmer_dataset, zenml_env, tmp_path):
    import os

    env = {**os.environ, **zenml_env}
    trained = run("train", tiny_kmer_dataset / "train.parquet", "parquet", tiny_kmer_dataset / "tokenizer.json",
                  "-o", tmp_path / "run", "--register", "cli_model", *TINY, env=env)
    assert trained.returncode == 0, trained.stderr
    assert "registered as registry:cli_model@1" in trained.stdout
    predicted = run("predict", "registry:cli_model@1", "ACGTTATAATGGCATTTACGGACTTTATAATACGGCATCAGCATTAGCAGTAGCAT",
                    "-o", tmp_path / "p.tsv", env=env)
    assert predicted.returncode == 0, predicted.stderr
    rows = (tmp_path / "p.tsv").read_text().splitlines()
    assert len(rows) == 2 and "class_a" in rows[0]
    missing = run("predict", "registry:cli_model@7", "ACGT", "-o", tmp_path / "q.tsv", env=env)
    assert missing.returncode == 2 and "no such model version" in missing.stderr
    assert "Traceback" not in missing.stderr
