"""predict: equal to the model's own forward pass, long sequences windowed, raw sequences, bad input."""

import csv
import itertools
import random

import numpy as np
import pytest
import torch

from genomenlp.components.cli import predict
from genomenlp.components.inference.config import PredictConfig
from genomenlp.components.inference.inputs import InputRecord
from genomenlp.components.inference.predict import predict_records
from genomenlp.components.model_io import load_model
from genomenlp.components.sequences import chunk_spans
from genomenlp.components.tokenisers import build_kmer_tokenizer, train_unigram_tokenizer

LABELS = ["promoter", "other", "odd"]
MAX_POSITIONS = 24  # 22 content tokens per window: short enough that tests can exercise windowing


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_sequences(count: int, low: int, high: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("ACGT") for _ in range(rng.randint(low, high))) for _ in range(count)]


@pytest.fixture(scope="module")
def models(tmp_path_factory, random_classifier_folder):
    build = random_classifier_folder
    root = tmp_path_factory.mktemp("predict_models")
    unigram = train_unigram_tokenizer(random_sequences(60, 40, 80, seed=1), vocab_size=40, show_progress=False)
    return {"kmer": build(root / "kmer", build_kmer_tokenizer(3), LABELS, MAX_POSITIONS),
            "unigram": build(root / "unigram", unigram, LABELS, MAX_POSITIONS)}


def read_tsv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def write_fasta(path, sequences, prefix="r") -> str:
    path.write_text("".join(f">{prefix}{i} description\n{s[:30]}\n{s[30:]}\n" for i, s in enumerate(sequences)))
    return str(path)


def forward_probabilities(loaded, ids: list[int]) -> np.ndarray:
    """What the model itself says about one tokenised input."""
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    return torch.softmax(logits.logits, dim=-1)[0].numpy()


@pytest.mark.parametrize("kind", ["kmer", "unigram"])
def test_predictions_equal_the_models_forward_pass(models, kind, tmp_path):
    sequences = random_sequences(9, 5, 20, seed=2)  # short enough for one window, lengths differ (padding)
    out = tmp_path / "predictions.tsv"
    assert predict.main([models[kind], write_fasta(tmp_path / "in.fa", sequences), "-o", str(out),
                         "--batch_size", "4", "-d", "cpu"]) == 0
    rows = read_tsv(out)
    assert list(rows[0]) == ["id", "predicted_label", "p_promoter", "p_other", "p_odd", "length", "chunks", "flags"]
    loaded = load_model(models[kind])
    for row, sequence in zip(rows, sequences, strict=True):
        expected = forward_probabilities(loaded, loaded.tokenizer.encode_batch([sequence])[0].ids)
        got = np.array([float(row[f"p_{name}"]) for name in LABELS])
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert row["predicted_label"] == LABELS[int(expected.argmax())]
        assert (int(row["length"]), int(row["chunks"])) == (len(sequence), 1)
    spread = np.ptp([float(row["p_promoter"]) for row in rows])
    assert spread > 0.05, "the test model should not give every input the same probabilities"


def test_long_kmer_sequence_is_windowed_and_probabilities_averaged(models, tmp_path):
    sequence = random_sequences(1, 100, 100, seed=3)[0]
    out = tmp_path / "p.tsv"
    assert predict.main([models["kmer"], sequence, "-o", str(out), "--window_overlap", "0.5"]) == 0
    row = read_tsv(out)[0]
    loaded = load_model(models["kmer"])
    # 98 overlapping 3-mers in windows of 22 tokens sharing 11; window (a, b) reads bases a … b + 1.
    windows = list(chunk_spans(98, 22, 11))
    expected = np.mean([forward_probabilities(loaded, loaded.tokenizer.encode_batch([sequence[a : b + 2]])[0].ids)
                        for a, b in windows], axis=0)
    assert int(row["chunks"]) == len(windows) > 1
    np.testing.assert_allclose([float(row[f"p_{name}"]) for name in LABELS], expected, atol=1e-6)


def test_long_unigram_sequence_is_windowed_in_token_space(models, tmp_path):
    sequence = random_sequences(1, 300, 300, seed=4)[0]
    loaded = load_model(models["unigram"])
    [prediction] = predict_records(loaded, [InputRecord("long", sequence, "test")], PredictConfig(device="cpu"))
    ids = loaded.tokenizer.encode_batch([sequence])[0].ids[1:-1]
    windows = list(chunk_spans(len(ids), 22, round(22 * 0.25)))
    expected = np.mean([forward_probabilities(loaded, [0, *ids[a:b], 1]) for a, b in windows], axis=0)
    assert prediction.chunks == len(windows) > 1
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-6)


def test_raw_sequences_and_fasta_records_mix(models, tmp_path):
    fasta = write_fasta(tmp_path / "in.fa", ["ACGTTGCAACGT"])
    out = tmp_path / "p.tsv"
    assert predict.main([models["kmer"], "acgttgcaacgt", fasta, "TTTT", "-o", str(out)]) == 0
    rows = read_tsv(out)
    assert [row["id"] for row in rows] == ["seq_1", "r0", "seq_2"]
    assert rows[0]["p_promoter"] == rows[1]["p_promoter"]  # lower case is read as upper case


def test_predictions_stream_lazily(models):
    loaded = load_model(models["kmer"])
    endless = (InputRecord(f"r{i}", "ACGTAGCTAGCTAGGAT", "generated") for i in itertools.count())
    first = list(itertools.islice(predict_records(loaded, endless, PredictConfig(batch_size=4, device="cpu")), 10))
    assert [p.record.id for p in first] == [f"r{i}" for i in range(10)]


@pytest.mark.parametrize("content, message", [
    (b">a\nACGT\n>b\nAC!GT\n", "record 2 'b' (line 3): character '!'"),
    (b"", "empty file"),
])
def test_bad_fasta_is_one_line_and_exit_2_with_nothing_written(models, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.fa"
    bad.write_bytes(content)
    out = tmp_path / "p.tsv"
    assert predict.main([models["kmer"], str(bad), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("predict: error:") and message in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fa"]


def test_argument_that_is_neither_file_nor_sequence(models, tmp_path, capsys):
    assert predict.main([models["kmer"], "missing.fa", "-o", str(tmp_path / "p.tsv")]) == 2
    assert "missing.fa: no such file, and not a dna sequence" in capsys.readouterr().err


def test_existing_output_needs_overwrite(models, tmp_path, capsys):
    out = tmp_path / "p.tsv"
    out.write_text("keep me")
    assert predict.main([models["kmer"], "ACGTACGT", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep me"
    assert predict.main([models["kmer"], "ACGTACGT", "-o", str(out), "--overwrite"]) == 0
    assert read_tsv(out)[0]["id"] == "seq_1"


def test_predict_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="extra"):
        PredictConfig(batchsize=3)
