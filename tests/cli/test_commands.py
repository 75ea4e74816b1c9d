"""The commands end to end on the bundled data, as a user following the tutorial runs them."""

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest

from genomenlp.components.cli import create_dataset, kmerise, tokenise
from genomenlp.components.sequences import reverse_complement

DATA = Path(__file__).resolve().parents[2] / "data" / "ecoli_promoter"
PROMOTER, NON_PROMOTER = str(DATA / "promoter.fasta.gz"), str(DATA / "non_promoter.fasta.gz")
COLUMNS = ["idx", "feature", "labels", "input_ids", "token_type_ids", "attention_mask"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("commands")


@pytest.fixture(scope="module")
def tokens(workdir):
    path = workdir / "tokens.json"
    assert tokenise.main(["-i", PROMOTER, NON_PROMOTER, "-t", str(path), "--no_progress"]) == 0
    return path


@pytest.fixture(scope="module")
def dataset_dir(workdir, tokens):
    out = workdir / "data"
    assert create_dataset.main([PROMOTER, NON_PROMOTER, str(tokens), "-o", str(out), "--no_progress"]) == 0
    return out


def molecule(sequence):
    return min(sequence, reverse_complement(sequence))


def test_tokenise_bio_writes_a_loadable_tokeniser(tokens):
    tokenizer = json.loads(tokens.read_text())
    assert tokenizer["model"]["type"] == "Unigram"
    assert [token["content"] for token in tokenizer["added_tokens"]] == ["<s>", "</s>", "<unk>", "<pad>", "<mask>"]
    assert tokenizer["post_processor"]["type"] == "TemplateProcessing"
    assert 1000 < len(tokenizer["model"]["vocab"]) <= 32000


def test_create_dataset_bio_writes_every_format(dataset_dir):
    for split in ("train", "test", "valid"):
        frame = pd.read_parquet(dataset_dir / f"{split}.parquet")
        assert list(frame.columns[:6]) == COLUMNS
        assert (dataset_dir / f"{split}.csv").stat().st_size > 0
        assert len(pd.read_json(dataset_dir / f"{split}.json", lines=True)) == len(frame)
        on_disk = datasets.load_from_disk(str(dataset_dir / split))
        assert on_disk.features["labels"].names == ["promoter", "non_promoter"]
        assert len(on_disk) == len(frame)
        assert all(ids[0] == 0 and ids[-1] == 1 for ids in frame["input_ids"])  # <s> … </s>
    assert not list(dataset_dir.glob(".*"))  # no working files left behind


def test_splits_are_stratified_and_leakage_free(dataset_dir):
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    splits = manifest["splits"]
    assert {split: info["records"] for split, info in splits.items()} == {"train": 6088, "test": 338, "valid": 338}
    assert splits["test"]["rows_per_class"] == {"promoter": 169, "non_promoter": 169}
    # Training rows are doubled by reverse complements; evaluation rows are not.
    assert splits["train"]["rows"] == 2 * 6088
    molecules = {
        split: set(map(molecule, pd.read_parquet(dataset_dir / f"{split}.parquet")["feature"]))
        for split in ("train", "test", "valid")
    }
    assert not molecules["train"] & molecules["test"]
    assert not molecules["train"] & molecules["valid"]
    assert not molecules["test"] & molecules["valid"]
    assert [entry["records"] for entry in manifest["classes"]] == [3382, 3382]
    assert len(manifest["tokenizer"]["sha256"]) == 64 and len(manifest["classes"][0]["sha256"]) == 64


def test_same_seed_gives_identical_splits(workdir, tokens, dataset_dir):
    again = workdir / "again"
    assert create_dataset.main([PROMOTER, NON_PROMOTER, str(tokens), "-o", str(again), "--no_progress"]) == 0
    for split in ("train", "test", "valid"):
        assert (again / f"{split}.parquet").read_bytes() == (dataset_dir / f"{split}.parquet").read_bytes()


def test_prints_summary_and_sample_mapping(workdir, tokens, capsys):
    out = workdir / "printed"
    create_dataset.main([PROMOTER, NON_PROMOTER, str(tokens), "-o", str(out), "--no_progress", "--seed", "9"])
    printed = capsys.readouterr().out
    assert "train" in printed and "6088" in printed and "Sample token mapping" in printed and "<s>:0" in printed


def test_existing_output_is_never_overwritten_unless_asked(workdir, tokens, dataset_dir, capsys):
    before = (dataset_dir / "manifest.json").read_text()
    assert create_dataset.main([PROMOTER, NON_PROMOTER, str(tokens), "-o", str(dataset_dir), "--no_progress"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (dataset_dir / "manifest.json").read_text() == before
    assert tokenise.main(["-i", PROMOTER, NON_PROMOTER, "-t", str(tokens)]) == 2


def test_overwrite_when_asked(workdir, tokens):
    out = workdir / "replaced"
    out.mkdir()
    (out / "old.txt").write_text("old")
    args = [PROMOTER, NON_PROMOTER, str(tokens), "-o", str(out), "--no_progress", "--overwrite", "--labels", "p", "n"]
    assert create_dataset.main(args) == 0
    assert not (out / "old.txt").exists()
    assert json.loads((out / "manifest.json").read_text())["label_names"] == ["p", "n"]


def test_kmerise_bio_tokeniser_and_dataset(workdir):
    tokens, out = workdir / "kmers.json", workdir / "kmer_data"
    args = ["-i", PROMOTER, NON_PROMOTER, "-k", "3", "-t", str(tokens), "-o", str(out), "--no_progress"]
    assert kmerise.main(args) == 0
    frame = pd.read_parquet(out / "test.parquet")
    assert all(len(ids) == 81 - 3 + 1 + 2 for ids in frame["input_ids"])
    assert (out / "tokenizer.json").read_text() == tokens.read_text()
    again = workdir / "kmers_again.json"
    assert kmerise.main(["-i", PROMOTER, "-k", "3", "-t", str(again)]) == 0
    assert again.read_bytes() == tokens.read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokenizer"] | {"sha256": None} == {"kind": "kmer", "vocab_size": 69, "k": 3, "stride": 1,
                                                         "sha256": None}


def test_long_sequences_are_chunked_and_keep_their_parent(tmp_path):
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_text(">long\n" + "ACGT" * 700 + "\n>short\nACGTACGTAA\n")
    b.write_text(">other\n" + "GGCA" * 300 + "\n>x\nTTTTTTTTTT\n")
    out = tmp_path / "out"
    args = ["-i", str(a), str(b), "-k", "2", "-o", str(out), "--no_progress", "--chunk_size", "1000",
            "--chunk_overlap", "100", "--max_tokens", "1100", "--split_train", "0.5", "--split_test", "0.5",
            "--split_val", "0", "--reverse_complement", "none"]
    assert kmerise.main(args) == 0
    frame = pd.concat(pd.read_parquet(out / f"{s}.parquet") for s in ("train", "test", "valid"))
    long_rows = frame[frame["record_id"] == "long"]
    assert len(long_rows) == 3 and long_rows["parent"].nunique() == 1
    assert list(long_rows["start"]) == [0, 900, 1800] and set(long_rows["end"] - long_rows["start"]) == {1000}


def test_kmer_chunks_fit_the_token_limit_and_truncation_is_reported(tmp_path, capsys):
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_text(">long\n" + "ACGTTGCA" * 300 + "\n>s\nACGTACGTAA\n")
    b.write_text(">other\n" + "GGCATTAC" * 100 + "\n>x\nTTTTTTTTTT\n")
    out = tmp_path / "out"
    args = ["-i", str(a), str(b), "-k", "3", "-o", str(out), "--no_progress", "--max_tokens", "64",
            "--split_train", "0.5", "--split_test", "0.5", "--split_val", "0", "--reverse_complement", "none"]
    assert kmerise.main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chunking"]["chunk_size"] == (64 - 3) + 3 and manifest["truncated_rows"] == 0
    frame = pd.concat(pd.read_parquet(out / f"{s}.parquet") for s in ("train", "test"))
    assert frame["input_ids"].map(len).max() <= 64
    assert all(len(ids) == (end - start) - 3 + 1 + 2
               for ids, start, end in zip(frame["input_ids"], frame["start"], frame["end"], strict=True))
    tokens = tmp_path / "uni.json"
    assert tokenise.main(["-i", str(a), str(b), "-t", str(tokens), "-v", "60", "--no_progress"]) == 0
    capsys.readouterr()
    assert create_dataset.main([str(a), str(b), str(tokens), "-o", str(tmp_path / "u"), "--no_progress", "--max_tokens",
                                "8", "--split_train", "0.5", "--split_test", "0.5", "--split_val", "0"]) == 0
    assert "rows were cut at --max_tokens" in capsys.readouterr().out
