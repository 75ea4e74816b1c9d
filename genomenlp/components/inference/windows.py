"""Cutting sequences into model windows and keeping track of which bases each token covers.

A model reads at most ``max_tokens`` tokens, ``<s>`` and ``</s>`` included. Each sequence is
tokenised once as a whole; a sequence of more tokens than fit is cut, in token space, into
windows that overlap by a share of the window. Windows in token space use the model's capacity
exactly whatever the tokeniser (a Unigram token covers a varying number of bases), and a token
has the same identity in every window that holds it, so per-window results merge token by token.

For a k-mer tokeniser the window is therefore ``(max_tokens − 3) × stride + k`` bases, and token
``i`` covers bases ``[i × stride, i × stride + k)``; tokeniser offsets are not used because they
index the space-joined k-mer text, not the sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from genomenlp.components.inference.inputs import InputRecord
from genomenlp.components.sequences import chunk_spans
from genomenlp.components.tokenisers.common import BOS, EOS, PAD, SequenceTokenizer, TokenizerKind

# A record longer than this is never tokenised whole (token spans alone would take 16 bytes a base):
# its windows are made and read a batch at a time (see :func:`long_record_windows`).
LONG_RECORD_BASES = 100_000
# Unigram tokenises a long record in segments this long; a window never straddles two segments.
UNIGRAM_SEGMENT_BASES = 1_000_000


@dataclass(frozen=True)
class LongRecord:
    """A record too long to tokenise whole: its windows are streamed by :func:`long_record_windows`."""

    record: InputRecord


@dataclass
class TokenisedRecord:
    """A record with its tokens and the windows the model reads.

    Attributes:
        record: The input record.
        spans: ``(tokens, 2)`` array of each content token's bases, 0-based, end exclusive.
        windows: ``(first, end)`` token indices of each window (content tokens only).
        window_ids: Token ids of each window, wrapped in ``<s>`` … ``</s>``.
    """

    record: InputRecord
    spans: np.ndarray
    windows: list[tuple[int, int]]
    window_ids: list[list[int]]

    @property
    def tokens(self) -> list[str]:
        """Each content token as the bases it covers (``<unk>`` tokens show their real letters)."""
        sequence = self.record.sequence
        return [sequence[start:end] for start, end in self.spans.tolist()]


def special_ids(tokenizer: SequenceTokenizer) -> dict[str, int]:
    """Ids of ``<s>``, ``</s>`` and ``<pad>`` in the tokeniser."""
    return {token: tokenizer.tokenizer.token_to_id(token) for token in (BOS, EOS, PAD)}


def window_token_count(max_tokens: int) -> int:
    """Content tokens one window holds (``<s>`` and ``</s>`` take two positions)."""
    return max_tokens - 2


def _token_windows(n_tokens: int, size: int, overlap_share: float) -> list[tuple[int, int]]:
    overlap = min(size - 1, int(round(size * overlap_share)))
    return list(chunk_spans(n_tokens, size, overlap))


def _kmer_spans(length: int, k: int, stride: int) -> np.ndarray:
    # Same rule as kmerise: a sequence no longer than k is one token.
    if length <= k:
        return np.array([[0, length]], dtype=np.int64)
    starts = np.arange(0, length - k + 1, stride, dtype=np.int64)
    return np.stack([starts, starts + k], axis=1)


def tokenise_records(records: list[InputRecord], tokenizer: SequenceTokenizer, max_tokens: int,
                     overlap_share: float) -> list[TokenisedRecord]:
    """Tokenise records (one tokeniser call for all of them) and cut each into model windows.

    Args:
        records: Records to tokenise.
        tokenizer: The model's tokeniser.
        max_tokens: Longest input of the model, ``<s>`` and ``</s>`` included.
        overlap_share: Share of a window that consecutive windows have in common.
    """
    size = window_token_count(max_tokens)
    ids = special_ids(tokenizer)
    bos, eos = ids[BOS], ids[EOS]
    if tokenizer.kind is TokenizerKind.KMER:
        k, stride = tokenizer.k, tokenizer.stride
        plans, texts = [], []
        for record in records:
            spans = _kmer_spans(len(record.sequence), k, stride)
            windows = _token_windows(len(spans), size, overlap_share)
            plans.append((spans, windows))
            # A window's bases tokenised afresh give exactly the slice of the whole record's k-mers.
            texts.extend(record.sequence[spans[first, 0]:spans[end - 1, 1]] for first, end in windows)
        encodings = iter(tokenizer.encode_batch(texts))
        result = []
        for record, (spans, windows) in zip(records, plans, strict=True):
            window_ids = []
            for first, end in windows:
                encoded = next(encodings).ids
                if len(encoded) != end - first + 2:
                    raise RuntimeError(f"k-mer window of {record.id!r} gave {len(encoded) - 2} tokens, "
                                       f"expected {end - first}")
                window_ids.append(encoded)
            result.append(TokenisedRecord(record, spans, windows, window_ids))
        return result
    result = []
    for record, encoding in zip(records, tokenizer.encode_batch([r.sequence for r in records]), strict=True):
        # Unigram reads the sequence itself, so offsets are base positions.
        content_ids = encoding.ids[1:-1]
        spans = np.array(encoding.offsets[1:-1], dtype=np.int64).reshape(-1, 2)
        windows = _token_windows(len(content_ids), size, overlap_share)
        window_ids = [[bos, *content_ids[first:end], eos] for first, end in windows]
        result.append(TokenisedRecord(record, spans, windows, window_ids))
    return result


def long_record_windows(record: InputRecord, tokenizer: SequenceTokenizer, max_tokens: int,
                        overlap_share: float, batch: int) -> Iterator[list[list[int]]]:
    """The token ids of a long record's windows, ``batch`` windows at a time (memory: one batch).

    k-mer windows are exactly those of :func:`tokenise_records`; a Unigram record is tokenised in
    segments of :data:`UNIGRAM_SEGMENT_BASES` bases, windowed within each segment.
    """
    size = window_token_count(max_tokens)
    ids = special_ids(tokenizer)
    sequence = record.sequence
    if tokenizer.kind is TokenizerKind.KMER:
        k, stride = tokenizer.k, tokenizer.stride
        n_tokens = 1 if len(sequence) <= k else (len(sequence) - k) // stride + 1
        texts = []
        for first, end in _lazy_token_windows(n_tokens, size, overlap_share):
            texts.append(sequence[first * stride:(end - 1) * stride + k])
            if len(texts) == batch:
                yield [encoding.ids for encoding in tokenizer.encode_batch(texts)]
                texts = []
        if texts:
            yield [encoding.ids for encoding in tokenizer.encode_batch(texts)]
        return
    windows: list[list[int]] = []
    for start in range(0, len(sequence), UNIGRAM_SEGMENT_BASES):
        content = tokenizer.encode_batch([sequence[start:start + UNIGRAM_SEGMENT_BASES]])[0].ids[1:-1]
        for first, end in _lazy_token_windows(len(content), size, overlap_share):
            windows.append([ids[BOS], *content[first:end], ids[EOS]])
            if len(windows) == batch:
                yield windows
                windows = []
    if windows:
        yield windows


def _lazy_token_windows(n_tokens: int, size: int, overlap_share: float) -> Iterator[tuple[int, int]]:
    overlap = min(size - 1, int(round(size * overlap_share)))
    return chunk_spans(n_tokens, size, overlap)


def grouped_records(records: Iterable[InputRecord], tokenizer: SequenceTokenizer, max_tokens: int,
                    overlap_share: float, min_windows: int) -> Iterator[list[TokenisedRecord] | LongRecord]:
    """Stream records in groups of at least ``min_windows`` windows (the last group may be smaller).

    A record longer than :data:`LONG_RECORD_BASES` comes alone, as a :class:`LongRecord`, in its
    place in the input order. Memory holds one group: a few batches of windows, whatever the size
    of the input files.
    """
    pending: list[InputRecord] = []
    # Bases are a cheap upper bound of the window count before tokenising (a token covers ≥ 1 base).
    pending_tokens = 0
    size = window_token_count(max_tokens)
    for record in records:
        if len(record.sequence) > LONG_RECORD_BASES:
            if pending:
                yield tokenise_records(pending, tokenizer, max_tokens, overlap_share)
                pending, pending_tokens = [], 0
            yield LongRecord(record)
            continue
        pending.append(record)
        pending_tokens += len(record.sequence)
        if pending_tokens >= min_windows * size or len(pending) >= min_windows:
            yield tokenise_records(pending, tokenizer, max_tokens, overlap_share)
            pending, pending_tokens = [], 0
    if pending:
        yield tokenise_records(pending, tokenizer, max_tokens, overlap_share)
