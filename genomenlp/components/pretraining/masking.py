"""Masked-LM batches: windows encoded to padded token ids, and BERT's span masking of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genomenlp.components.tokenisers.common import SequenceTokenizer

IGNORE_INDEX = -100


def mask_tokens(
    ids: np.ndarray,
    maskable: np.ndarray,
    probability: float,
    span: int,
    mask_id: int,
    random_ids: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's 80/10/10 masking, in spans of ``span`` contiguous tokens.

    Span starts are drawn with probability ``probability / span`` among maskable tokens, so about
    ``probability`` of the tokens are chosen. Every span is, as a whole, replaced with ``<mask>``
    (80%), with random tokens (10%) or kept (10%): a per-token choice would let a kept k-mer reveal
    the bases its masked neighbours hide. Every row with a maskable token gets at least one target.

    Args:
        ids: Token ids, rows × positions.
        maskable: Where a target may be (not special, padding or ``<unk>``).
        probability: Share of tokens to choose.
        span: Contiguous tokens per masked span.
        mask_id: Id of ``<mask>``.
        random_ids: Range ``[low, high)`` of ids that random replacement draws from.
        rng: Source of randomness.

    Returns:
        The model's input ids and the labels (the original id where chosen, ``-100`` elsewhere).
    """
    rows, width = ids.shape
    starts = (rng.random((rows, width)) < probability / span) & maskable
    draw = rng.random((rows, width))
    span_kind = np.where(draw < 0.8, 0, np.where(draw < 0.9, 1, 2)).astype(np.int8)  # 0 mask, 1 random, 2 keep
    kind = np.full((rows, width), -1, dtype=np.int8)
    for shift in range(min(span, width)):
        kind[:, shift:] = np.where(starts[:, :width - shift], span_kind[:, :width - shift], kind[:, shift:])
    chosen = (kind >= 0) & maskable
    for row in np.flatnonzero(~chosen.any(axis=1) & maskable.any(axis=1)):
        position = rng.choice(np.flatnonzero(maskable[row]))
        chosen[row, position], kind[row, position] = True, 0
    inputs = ids.copy()
    inputs[chosen & (kind == 0)] = mask_id
    randomised = chosen & (kind == 1)
    inputs[randomised] = rng.integers(random_ids[0], random_ids[1], int(randomised.sum()))
    return inputs, np.where(chosen, ids, IGNORE_INDEX)


def encode_windows(
    tokenizer: SequenceTokenizer, windows: Sequence[str], max_positions: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (``<s> … </s>``, truncated to ``max_positions``, right-padded) and the attention mask."""
    encodings = tokenizer.encode_batch(list(windows), max_positions)
    width = max(len(encoding.ids) for encoding in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, :len(encoding.ids)] = encoding.ids
        attention[row, :len(encoding.ids)] = 1
    return ids, attention
