"""Each step's body on tiny data, called directly through ``step.entrypoint`` (no ZenML store)."""

from __future__ import annotations

import json

import pytest

from components.configs import DatasetConfig, KmerConfig, TokeniseConfig
from components.errors import InputError
from components.tokenisers.common import TokenizerKind, sequence_tokenizer_from_json
from steps.build_kmer_tokeniser import build_kmer_tokeniser
from steps.create_dataset import create_dataset
from steps.train_tokeniser import train_tokeniser

TINY_DATASET = DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1)


def _files(pair) -> list[str]:
    return [str(path) for path in pair]


def test_train_tokeniser_returns_unigram_json(tiny_fasta_pair):
    text = train_tokeniser.entrypoint(_files(tiny_fasta_pair), TokeniseConfig(vocab_size=32))

    tokenizer = sequence_tokenizer_from_json(text)
    assert tokenizer.kind is TokenizerKind.UNIGRAM
    assert tokenizer.tokenizer.get_vocab_size() <= 32


def test_build_kmer_tokeniser_returns_kmer_json(tiny_fasta_pair):
    text = build_kmer_tokeniser.entrypoint(_files(tiny_fasta_pair), KmerConfig(k=2, stride=2))

    tokenizer = sequence_tokenizer_from_json(text)
    assert (tokenizer.kind, tokenizer.k) == (TokenizerKind.KMER, 2)
    assert tokenizer.tokenizer.get_vocab_size() == 5 + 4**2  # special tokens + every 2-mer


@pytest.mark.parametrize("step", [train_tokeniser, build_kmer_tokeniser], ids=lambda s: s.name)
def test_tokeniser_steps_reject_missing_files(step, tiny_fasta_pair, tmp_path):
    config = TokeniseConfig() if step is train_tokeniser else KmerConfig()
    with pytest.raises(InputError, match="no such file"):
        step.entrypoint([str(tiny_fasta_pair[0]), str(tmp_path / "missing.fasta")], config)


@pytest.mark.parametrize("kmer_stride", [1, 3])
def test_create_dataset_writes_folder_and_returns_manifest(tiny_fasta_pair, tmp_path, kmer_stride):
    tokenizer_json = build_kmer_tokeniser.entrypoint(
        _files(tiny_fasta_pair), KmerConfig(k=3, stride=kmer_stride)
    )
    out = tmp_path / "dataset"

    folder, manifest = create_dataset.entrypoint(
        _files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, str(out), kmer_stride=kmer_stride
    )

    assert folder == out
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["tokenizer"]["stride"] == kmer_stride
    assert sum(info["records"] for info in manifest["splits"].values()) == 80
    # A 60-bp record with <s> and </s>: one token per k-mer start.
    first = manifest["sample"]["input_ids"]
    assert len(first) == 2 + len(range(0, 60 - 3 + 1, kmer_stride))


def test_create_dataset_refuses_existing_folder_unless_overwrite(tiny_fasta_pair, tmp_path):
    tokenizer_json = build_kmer_tokeniser.entrypoint(_files(tiny_fasta_pair), KmerConfig(k=2))
    out = tmp_path / "dataset"
    out.mkdir()

    with pytest.raises(InputError, match="already exists"):
        create_dataset.entrypoint(_files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, str(out))
    folder, _ = create_dataset.entrypoint(
        _files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, str(out), True
    )
    assert (folder / "manifest.json").is_file()


def test_create_dataset_rejects_text_that_is_not_a_tokeniser(tiny_fasta_pair, tmp_path):
    with pytest.raises(InputError, match="not a tokenizers JSON"):
        create_dataset.entrypoint(
            _files(tiny_fasta_pair), "{}", TINY_DATASET, str(tmp_path / "dataset")
        )


def test_create_dataset_wants_a_local_folder(tiny_fasta_pair):
    tokenizer_json = build_kmer_tokeniser.entrypoint(_files(tiny_fasta_pair), KmerConfig(k=2))
    with pytest.raises(InputError, match="must be a local folder"):
        create_dataset.entrypoint(_files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, "s3://b/d")
