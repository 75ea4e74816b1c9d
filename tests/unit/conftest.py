"""Fixtures for the training, search and cross-validation tests: a tiny learnable dataset."""

import random

import pytest

from components.cli import kmerise
from components.training.run import TrainingData


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """2-mer dataset of two classes; the first carries a motif, so there is something to learn."""
    folder = tmp_path_factory.mktemp("tiny_training")
    rng = random.Random(0)
    for name, motif in (("with_motif", "TATAATTATAAT"), ("without", None)):
        with open(folder / f"{name}.fa", "w") as handle:
            for index in range(60):
                sequence = "".join(rng.choice("ACGT") for _ in range(40))
                if motif:
                    sequence = sequence[:10] + motif + sequence[22:]
                handle.write(f">{name}{index}\n{sequence}\n")
    data = folder / "data"
    args = ["-i", str(folder / "with_motif.fa"), str(folder / "without.fa"), "-k", "2", "-t", str(folder / "k.json"),
            "-o", str(data), "--no_progress", "--split_train", "0.6", "--split_test", "0.2", "--split_val", "0.2"]
    assert kmerise.main(args) == 0
    return TrainingData(str(data / "train.parquet"), "parquet", str(folder / "k.json"))
