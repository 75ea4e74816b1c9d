"""Tokenisers for biological sequences: learnt Unigram vocabularies and overlapping k-mers."""

from genomenlp.components.tokenisers.common import SPECIAL_TOKENS, SequenceTokenizer, load_sequence_tokenizer
from genomenlp.components.tokenisers.kmer import build_kmer_tokenizer, kmerise
from genomenlp.components.tokenisers.unigram import train_unigram_tokenizer

__all__ = [
    "SPECIAL_TOKENS",
    "SequenceTokenizer",
    "build_kmer_tokenizer",
    "kmerise",
    "load_sequence_tokenizer",
    "train_unigram_tokenizer",
]
