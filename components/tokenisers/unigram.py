"""Empirical tokeniser: a SentencePiece-style Unigram vocabulary learnt from the corpus."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from components.sequences import chunk_spans
from components.tokenisers.common import SPECIAL_TOKENS, UNK, SequenceTokenizer, TokenizerKind, add_cls_post_processor


def break_sequences(sequences: Iterable[str], break_size: int) -> Iterator[str]:
    """Cut sequences into pieces of at most ``break_size`` bases (whole genomes fit in memory)."""
    for sequence in sequences:
        for start, end in chunk_spans(len(sequence), break_size, overlap=0):
            yield sequence[start:end]


def train_unigram_tokenizer(
    sequences: Iterable[str],
    vocab_size: int,
    break_size: int = 512,
    max_piece_length: int = 16,
    show_progress: bool = True,
) -> SequenceTokenizer:
    """Learn a Unigram vocabulary from sequences (streamed once) and add the CLS-style wrapper.

    Args:
        sequences: Upper-case sequences; each is cut into ``break_size`` pieces for training.
        vocab_size: Target vocabulary size including the five special tokens; the trainer may
            stop below it on a small corpus.
        break_size: Longest piece the trainer sees.
        max_piece_length: Longest token the vocabulary may hold.
        show_progress: Show the trainer's progress bars.
    """
    from tokenizers import Tokenizer, models, trainers

    tokenizer = Tokenizer(models.Unigram())
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        unk_token=UNK,
        max_piece_length=max_piece_length,
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(break_sequences(sequences, break_size), trainer=trainer)
    add_cls_post_processor(tokenizer)
    return SequenceTokenizer(tokenizer, TokenizerKind.UNIGRAM)
