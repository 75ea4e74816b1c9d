"""Nucleotide helpers: reverse complement (IUPAC-aware), canonical form, chunking."""

from __future__ import annotations

from collections.abc import Iterator

_COMPLEMENT = str.maketrans("ACGTURYSWKMBDHVN", "TGCAAYRSWMKVHDBN")


def reverse_complement(sequence: str) -> str:
    """Reverse complement of an upper-case IUPAC nucleotide sequence (U pairs with A)."""
    return sequence.translate(_COMPLEMENT)[::-1]


def canonical(sequence: str) -> str:
    """The lexicographically smaller of a sequence and its reverse complement.

    A sequence and its reverse complement are the same molecule read from the other strand, so
    they share one canonical form: the key that keeps both in the same split.
    """
    other = reverse_complement(sequence)
    return other if other < sequence else sequence


def chunk_spans(length: int, chunk_size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Start/end of overlapping windows covering ``length`` bases; one window if it fits.

    The last window is aligned to the end so every window is full length and every base is
    covered.
    """
    if length <= chunk_size:
        yield 0, length
        return
    step = chunk_size - overlap
    start = 0
    while True:
        if start + chunk_size >= length:
            yield length - chunk_size, length
            return
        yield start, start + chunk_size
        start += step
