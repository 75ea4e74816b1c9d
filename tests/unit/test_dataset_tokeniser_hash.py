"""The dataset records its tokeniser's hash in the splits themselves; training refuses another tokeniser without a
manifest."""

import json
import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genomenlp.components.cli import cross_validate, kmerise, sweep, train
from genomenlp.components.filenames import TOKENIZER_SHA256_KEY
from genomenlp.components.tokenisers import load_sequence_tokenizer
from genomenlp.components.training.data import recorded_tokenizer_sha256

TINY = ["--num_train_epochs", "1", "--num_layers", "1", "--hidden_size", "16", "--num_heads", "2",
        "--intermediate_size", "32", "--max_positions", "64", "--no_progress", "-d", "cpu"]


@pytest.fixture(scope="module")
def kmer3_without_manifest(tmp_path_factory):
    """A 3-mer dataset made by ``kmerise_bio -o``, its manifest deleted, and a 4-mer tokeniser of the same files."""
    folder = tmp_path_factory.mktemp("hash")
    rng = random.Random(5)
    for name, letters in (("gc.fa", "GGGCCCAT"), ("at.fa", "AAATTTGC")):
        records = "".join(f">{name}{index}\n{''.join(rng.choice(letters) for _ in range(40))}\n" for index in range(40))
        (folder / name).write_text(records)
    inputs = [str(folder / "gc.fa"), str(folder / "at.fa")]
    data = folder / "data"
    assert kmerise.main(["-i", *inputs, "-k", "3", "-o", str(data), "--no_progress"]) == 0
    assert kmerise.main(["-i", *inputs, "-k", "4", "-t", str(folder / "k4.json")]) == 0
    (data / "manifest.json").unlink()
    return data, folder / "k4.json"


def test_every_split_records_the_hash_of_the_tokeniser_saved_beside_it(kmer3_without_manifest):
    data, _ = kmer3_without_manifest
    expected = load_sequence_tokenizer(data / "tokenizer.json").sha256()
    for split in ("train", "valid", "test"):
        metadata = pq.read_schema(data / f"{split}.parquet").metadata
        assert metadata[TOKENIZER_SHA256_KEY.encode()].decode() == expected
        assert b"huggingface" in metadata  # datasets still reads its features (the ClassLabel) back
        assert recorded_tokenizer_sha256(str(data / f"{split}.parquet"), "parquet") == expected
        assert recorded_tokenizer_sha256(str(data / split), "dataset") == expected
        info = json.loads((data / split / "dataset_info.json").read_text())
        assert expected in info["description"]
    # CSV and JSON lines have no place for it: the manifest and the re-encoding check cover them.
    assert recorded_tokenizer_sha256(str(data / "train.csv"), "csv") is None


def _refused(capsys, prog, code, tokeniser, split):
    error = capsys.readouterr().err.strip()
    assert code == 2, error
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    assert error.startswith(f"{prog}: error: {tokeniser}: is not the tokeniser {split} was encoded with "
                            "(the split records tokeniser sha256 "), error
    return error


@pytest.mark.parametrize("file_format", ["parquet", "dataset"])
def test_train_refuses_a_4mer_tokeniser_for_a_3mer_dataset_without_manifest(kmer3_without_manifest, tmp_path,
                                                                              capsys, file_format):
    data, k4 = kmer3_without_manifest
    split = data / ("train.parquet" if file_format == "parquet" else "train")
    out = tmp_path / "out"
    code = train.main([str(split), file_format, str(k4), "-o", str(out), *TINY])
    _refused(capsys, "train", code, k4, split)
    assert not out.exists()


def test_sweep_and_cross_validate_refuse_it_too(kmer3_without_manifest, tmp_path, capsys):
    data, k4 = kmer3_without_manifest
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({"method": "random", "metric": {"name": "eval/f1", "goal": "maximize"},
                                "parameters": {"learning_rate": {"values": [0.001]}}}))
    code = sweep.main([str(data / "train.parquet"), "parquet", str(k4), "-w", str(spec), "-n", "1",
                       "-o", str(tmp_path / "sweep"), *TINY])
    _refused(capsys, "sweep", code, k4, data / "train.parquet")
    code = cross_validate.main([str(data / "train.parquet"), "parquet", "--tokeniser_path", str(k4), "-k", "2",
                                "-o", str(tmp_path / "cv"), *TINY])
    _refused(capsys, "cross_validate", code, k4, data / "train.parquet")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sweep.json"]


def test_the_hash_check_needs_no_sequence_column(kmer3_without_manifest, tmp_path, capsys):
    """Without ``feature`` the re-encoding check cannot run; the recorded hash still catches the wrong tokeniser."""
    data, k4 = kmer3_without_manifest
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    for split in ("train", "valid", "test"):
        table = pq.read_table(copy / f"{split}.parquet")
        pq.write_table(table.drop_columns(["feature"]), copy / f"{split}.parquet")
    code = train.main([str(copy / "train.parquet"), "parquet", str(k4), "-o", str(tmp_path / "out"), *TINY])
    _refused(capsys, "train", code, k4, copy / "train.parquet")


def test_the_matching_tokeniser_still_trains_without_manifest(kmer3_without_manifest, tmp_path, capsys):
    data, _ = kmer3_without_manifest
    out = tmp_path / "out"
    code = train.main([str(data / "train.parquet"), "parquet", str(data / "tokenizer.json"), "-o", str(out), *TINY])
    assert code == 0, capsys.readouterr().err
    assert (Path(out) / "metrics.json").is_file()
