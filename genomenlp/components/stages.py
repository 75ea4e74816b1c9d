"""The stages as plain functions over paths and configs: what the commands and the steps call."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from genomenlp.components.configs import DatasetConfig, KmerConfig, TokeniseConfig
from genomenlp.components.dataset.build import build_dataset
from genomenlp.components.fasta import Alphabet, read_fasta
from genomenlp.components.filenames import MANIFEST_FILE, TOKENIZER_FILE  # noqa: F401 - importers take them from here
from genomenlp.components.progress import progress
from genomenlp.components.storage import atomic_output_dir
from genomenlp.components.tokenisers import SequenceTokenizer, build_kmer_tokenizer, train_unigram_tokenizer


def _sequences(paths: Sequence[str], alphabet: Alphabet) -> Iterator[str]:
    for path in paths:
        for record in read_fasta(path, alphabet):
            yield record.sequence


def learn_tokenizer(paths: Sequence[str], config: TokeniseConfig, show_progress: bool = True) -> SequenceTokenizer:
    """Learn a Unigram tokeniser from FASTA files, streamed once."""
    sequences = progress(_sequences(paths, config.alphabet), "Reading sequences", show_progress)
    return train_unigram_tokenizer(
        sequences, config.vocab_size, config.break_size, config.max_piece_length, show_progress,
        max_train_bases=config.max_train_bases, sample_seed=config.sample_seed, seed_size=config.seed_size,
    )


def make_kmer_tokenizer(paths: Sequence[str], config: KmerConfig) -> SequenceTokenizer:
    """Build a k-mer tokeniser; protein vocabularies come from the k-mers in ``paths``."""
    if config.alphabet is Alphabet.PROTEIN:
        return build_kmer_tokenizer(config.k, config.stride, _sequences(paths, config.alphabet))
    # Nucleotide vocabularies are fixed by k, but the inputs are still validated up front.
    for _ in _sequences(paths, config.alphabet):
        pass
    return build_kmer_tokenizer(config.k, config.stride)


def create_dataset(
    paths: Sequence[str],
    tokenizer: SequenceTokenizer,
    config: DatasetConfig,
    out_dir: str,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict:
    """Build the dataset folder atomically (nothing appears at ``out_dir`` unless all of it is done)."""
    with atomic_output_dir(out_dir, overwrite=overwrite) as staging:
        manifest = build_dataset(paths, tokenizer, config, staging, show_progress)
        Path(staging, TOKENIZER_FILE).write_text(tokenizer.to_json(), encoding="utf-8")
        Path(staging, MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
