"""Empirical tokeniser: a SentencePiece-style Unigram vocabulary learnt from the corpus.

Why training is bounded: the ``tokenizers`` Unigram trainer repeats expectation-maximisation
passes over every training piece, and both the cost of a pass and the number of pruning rounds
(more candidates clear the trainer's frequency threshold) grow with the corpus, as does the seed
set of repeated substrings up to ``seed_size``, so training time grows faster than the input. The
trainer therefore learns from an evenly spread sample of at most ``max_train_bases`` bases, like
SentencePiece's ``input_sentence_size``. A smaller seed set is no substitute on DNA: it makes the
first pass cheaper but leaves more candidates for more pruning rounds and lowers quality.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator, Sequence

from genomenlp.components.sequences import chunk_spans
from genomenlp.components.tokenisers.common import (
    SPECIAL_TOKENS,
    UNK,
    SequenceTokenizer,
    TokenizerKind,
    add_cls_post_processor,
)

log = logging.getLogger(__name__)

# Bases the trainer learns from by default: above the bundled promoter corpus (0.55 Mbp), so that
# one is learnt in full, and enough for a 32,000-piece vocabulary from a bacterial genome.
DEFAULT_MAX_TRAIN_BASES = 1_000_000
# The tokenizers trainer's own default.
DEFAULT_SEED_SIZE = 1_000_000


def break_sequences(sequences: Iterable[str], break_size: int) -> Iterator[str]:
    """Cut sequences into pieces of at most ``break_size`` bases (whole genomes fit in memory)."""
    for sequence in sequences:
        for start, end in chunk_spans(len(sequence), break_size, overlap=0):
            yield sequence[start:end]


def sample_pieces(pieces: Sequence[str], max_bases: int | None, seed: int = 0) -> list[str]:
    """An evenly spread, seeded sample of ``pieces`` holding at most ``max_bases`` bases, in input order.

    The pieces are split into as many equal runs as pieces are kept and one piece is drawn from
    each run, so every part of the input (each file, each region of a genome) is represented in
    proportion to its size, which a random sample only does on average. The same pieces, bound and
    seed always give the same sample. All pieces are returned when they fit (or ``max_bases`` is None).

    Raises:
        ValueError: If ``max_bases`` is smaller than every drawn piece (nothing could be kept).
    """
    total = sum(len(piece) for piece in pieces)
    if max_bases is None or total <= max_bases:
        return list(pieces)
    # One piece per run and as many runs as pieces of the mean length fit: the bound is met on average.
    count = max(1, len(pieces) * max_bases // total)
    rng = random.Random(seed)
    sample, bases = [], 0
    for run in range(count):
        start, end = run * len(pieces) // count, (run + 1) * len(pieces) // count
        piece = pieces[start + int(rng.random() * (end - start))]
        # Longer-than-average draws could overshoot; skipping them keeps the bound a guarantee.
        if bases + len(piece) <= max_bases:
            sample.append(piece)
            bases += len(piece)
    if not sample:
        raise ValueError(f"max_bases ({max_bases}) is smaller than every sampled piece")
    return sample


def train_unigram_tokenizer(
    sequences: Iterable[str],
    vocab_size: int,
    break_size: int = 512,
    max_piece_length: int = 16,
    show_progress: bool = True,
    max_train_bases: int | None = DEFAULT_MAX_TRAIN_BASES,
    sample_seed: int = 0,
    seed_size: int = DEFAULT_SEED_SIZE,
) -> SequenceTokenizer:
    """Learn a Unigram vocabulary from sequences (streamed once) and add the CLS-style wrapper.

    Args:
        sequences: Upper-case sequences; each is cut into ``break_size`` pieces for training.
        vocab_size: Target vocabulary size including the five special tokens; the trainer may
            stop below it on a small corpus.
        break_size: Longest piece the trainer sees.
        max_piece_length: Longest token the vocabulary may hold.
        show_progress: Show the trainer's progress bars.
        max_train_bases: Learn from an evenly spread sample of the pieces holding at most this
            many bases (see :func:`sample_pieces`; logged when it samples); None learns from all.
        sample_seed: Seed of that sample.
        seed_size: Most candidate pieces (frequent substrings) the trainer starts from.
    """
    from tokenizers import Tokenizer, models, trainers

    pieces = list(break_sequences(sequences, break_size))
    training = sample_pieces(pieces, max_train_bases, sample_seed)
    if len(training) < len(pieces):
        log.warning(
            "learning the vocabulary from a sample of %d of %d pieces (%d of %d bases; max_train_bases=%d)",
            len(training), len(pieces), sum(map(len, training)), sum(map(len, pieces)), max_train_bases,
        )
    tokenizer = Tokenizer(models.Unigram())
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        unk_token=UNK,
        max_piece_length=max_piece_length,
        seed_size=seed_size,
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(training, trainer=trainer)
    add_cls_post_processor(tokenizer)
    return SequenceTokenizer(tokenizer, TokenizerKind.UNIGRAM)
