"""predict and interpret on hostile records: long ones streamed or refused up front, limits, flags."""

import csv
import random

import numpy as np
import pytest

from genomenlp.components.cli import interpret, predict
from genomenlp.components.inference.config import PredictConfig
from genomenlp.components.inference.inputs import InputRecord
from genomenlp.components.inference.predict import predict_records
from genomenlp.components.model_io import load_model
from genomenlp.components.tokenisers import build_kmer_tokenizer

LABELS = ["yes", "no"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def kmer_model(tmp_path_factory, random_classifier_folder):
    return random_classifier_folder(tmp_path_factory.mktemp("hostile_model") / "m", build_kmer_tokenizer(3), LABELS,
                                    24)


def _random(length: int, seed: int) -> str:
    return "".join(random.Random(seed).choices("ACGT", k=length))


def test_long_records_streamed_in_windows_give_the_same_probabilities(kmer_model, monkeypatch):
    import genomenlp.components.inference.windows as windows

    loaded = load_model(kmer_model)
    records = [InputRecord(f"r{i}", _random(length, i), "test") for i, length in enumerate((30, 700, 45, 1500))]
    config = PredictConfig(batch_size=7, device="cpu")
    whole = list(predict_records(loaded, records, config))
    monkeypatch.setattr(windows, "LONG_RECORD_BASES", 500)
    streamed = list(predict_records(loaded, records, config))
    assert [p.record.id for p in streamed] == ["r0", "r1", "r2", "r3"]
    for before, after in zip(whole, streamed, strict=True):
        assert before.chunks == after.chunks
        np.testing.assert_allclose(before.probabilities, after.probabilities, atol=1e-6)


def test_record_over_max_record_length_is_refused_naming_it(kmer_model, tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    fasta.write_text(f">ok\nACGTACGT\n>huge_one\n{_random(3000, 1)}\n")
    out = tmp_path / "p.tsv"
    assert predict.main([kmer_model, str(fasta), "-o", str(out), "--max_record_length", "1000"]) == 2
    error = capsys.readouterr().err
    assert "huge_one" in error and "--max_record_length 1,000" in error and "Traceback" not in error
    assert not out.exists()


def test_interpret_refuses_a_long_record_up_front(kmer_model, tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    fasta.write_text(f">short\nACGTACGTAC\n>chromosome\n{_random(5000, 2)}\n")
    out = tmp_path / "why"
    code = interpret.main([kmer_model, str(fasta), "-o", str(out), "--max_interpret_length", "1000",
                           "--no_progress"])
    assert code == 2
    error = capsys.readouterr().err
    assert "'chromosome'" in error and "--max_interpret_length 1,000" in error
    assert len(error.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [fasta]


def test_interpret_default_refuses_1_mbp_before_any_attribution(kmer_model, tmp_path, capsys, monkeypatch):
    import genomenlp.components.inference.interpret as interpretation

    def fail(*args, **kwargs):
        raise AssertionError("attribution started")

    monkeypatch.setattr(interpretation, "attribute_windows", fail)
    fasta = tmp_path / "mbp.fa"
    fasta.write_text(f">mbp\n{_random(1_000_000, 3)}\n")
    assert interpret.main([kmer_model, str(fasta), "-o", str(tmp_path / "o"), "--no_progress"]) == 2
    assert "--max_interpret_length 100,000" in capsys.readouterr().err


def read_tsv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_mostly_n_and_too_short_records_are_flagged(kmer_model, tmp_path):
    import json

    from genomenlp.components.model_io import MODEL_METADATA

    metadata_path = tmp_path / "model"
    import shutil

    shutil.copytree(kmer_model, metadata_path)
    metadata = json.loads((metadata_path / MODEL_METADATA).read_text())
    metadata["record_lengths"] = {"train_min": 40, "train_max": 80}
    (metadata_path / MODEL_METADATA).write_text(json.dumps(metadata))
    fasta = tmp_path / "in.fa"
    fasta.write_text(f">ok\n{_random(60, 4)}\n>ns\n{'N' * 50}ACGTACGTAC\n>short\nA\n")
    out = tmp_path / "p.tsv"
    assert predict.main([str(metadata_path), str(fasta), "-o", str(out)]) == 0
    flags = {row["id"]: row["flags"] for row in read_tsv(out)}
    assert flags == {"ok": "", "ns": "mostly_N", "short": "shorter_than_training"}
    why = tmp_path / "why"
    assert interpret.main([str(metadata_path), str(fasta), "-o", str(why), "--no_progress", "-n", "4"]) == 0
    summary = {row["record_id"]: row["flags"] for row in read_tsv(why / "summary.tsv")}
    assert summary == flags
