"""The pre-training corpus: genome windows streamed through a bounded shuffle buffer, with held-out data masked out.

Memory holds one FASTA record (as :func:`genomenlp.components.fasta.read_fasta` does) and the shuffle
buffer, never all of a genome's windows.

Leakage: the bundled promoter sequences were cut from the genome a user pre-trains on, so every
genome position covered by an exact occurrence (either strand) of a held-out sequence — any row
of a dataset's valid or test split — is replaced with N before windowing. Occurrences are found
with 2-bit k-mer seeds: each held-out sequence (and its reverse complement) contributes one seed,
the genome's k-mer hashes are computed in vectorised blocks, and only seed hits are verified by
string comparison.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from genomenlp.components.errors import InputError
from genomenlp.components.fasta import Alphabet, read_fasta
from genomenlp.components.sequences import canonical, reverse_complement
from genomenlp.components.storage import exists, join, open_input, require_complete

HELD_OUT_SPLITS = ("valid", "test")
# Seeds of 32 bases fill a uint64 exactly; shorter held-out sequences take shorter seeds.
MAX_SEED = 32
# Below this a seed would hit the genome so often that plain string search is as fast.
MIN_SEED = 12
# Genome positions hashed per numpy block (about 40 bytes of temporaries each).
BLOCK = 1 << 22

_CODES = np.full(256, 255, dtype=np.uint8)
for _code, _letter in enumerate("ACGT"):
    _CODES[ord(_letter)] = _code


@dataclass(eq=False)
class ExclusionIndex:
    """Held-out sequences in both orientations, indexed by one exact-match seed each.

    Attributes:
        sequences: Distinct held-out sequences and their reverse complements.
        molecule: For each entry of ``sequences``, the number of its strand-free molecule.
        held_out: Distinct held-out molecules (a sequence and its reverse complement count once).
        seed_length: Bases per seed.
        seed_hashes: Sorted distinct 2-bit hashes of the seeds.
        seed_owners: Seed hash → (sequence number, offset of the seed in that sequence).
        unseeded: Sequences without an all-ACGT seed (short or N-rich), found by string search.
        sources: Dataset folders the sequences came from.
    """

    sequences: tuple[str, ...]
    molecule: tuple[int, ...]
    held_out: int
    seed_length: int
    seed_hashes: np.ndarray
    seed_owners: dict[int, list[tuple[int, int]]]
    unseeded: tuple[int, ...]
    sources: tuple[str, ...] = ()

    def digest(self) -> str:
        """SHA-256 over the held-out sequences: equal digests, equal exclusion."""
        hasher = hashlib.sha256()
        for sequence in self.sequences:
            hasher.update(sequence.encode("ascii") + b"\n")
        return hasher.hexdigest()


@dataclass
class Occurrence:
    """One exact occurrence of a held-out sequence in a genome sequence (0-based, end exclusive)."""

    start: int
    end: int
    sequence: int


def _hash(seed: str) -> int:
    value = 0
    for letter in seed:
        value = (value << 2) | int(_CODES[ord(letter)])
    return value


def build_exclusion_index(sequences: Iterable[str], sources: Sequence[str] = ()) -> ExclusionIndex:
    """Index held-out sequences (upper-cased; empty ones ignored) and their reverse complements."""
    molecules = sorted({canonical(sequence.upper()) for sequence in sequences if sequence})
    oriented: dict[str, int] = {}
    for number, sequence in enumerate(molecules):
        oriented.setdefault(sequence, number)
        oriented.setdefault(reverse_complement(sequence), number)
    ordered = sorted(oriented)
    seedable = [len(sequence) for sequence in ordered if len(sequence) >= MIN_SEED]
    seed_length = min([MAX_SEED, *seedable])
    clean = re.compile(f"[ACGT]{{{seed_length}}}")
    owners: dict[int, list[tuple[int, int]]] = {}
    unseeded = []
    for number, sequence in enumerate(ordered):
        found = clean.search(sequence) if len(sequence) >= MIN_SEED else None
        if found is None:
            unseeded.append(number)
            continue
        owners.setdefault(_hash(found.group()), []).append((number, found.start()))
    return ExclusionIndex(
        sequences=tuple(ordered),
        molecule=tuple(oriented[sequence] for sequence in ordered),
        held_out=len(molecules),
        seed_length=seed_length,
        seed_hashes=np.array(sorted(owners), dtype=np.uint64),
        seed_owners=owners,
        unseeded=tuple(unseeded),
        sources=tuple(str(source) for source in sources),
    )


def _read_features(path: str) -> list[str]:
    import pyarrow.parquet as pq

    with open_input(path) as handle:
        table = pq.read_table(handle)
    if "feature" not in table.column_names:
        raise InputError(path, "has no 'feature' column (the sequences): "
                         "was it written by create_dataset_bio or kmerise_bio?")
    return [value for value in table.column("feature").to_pylist() if value]


def exclusion_index(dataset_dirs: Sequence[str], splits: Sequence[str] = HELD_OUT_SPLITS) -> ExclusionIndex:
    """Index every sequence of the datasets' valid and test splits (both strands).

    Args:
        dataset_dirs: Dataset folders from ``create_dataset_bio`` / ``kmerise_bio`` (local or ``s3://``).
        splits: Splits whose ``feature`` sequences must never reach pre-training.

    Raises:
        InputError: A folder without ``valid.parquet``/``test.parquet`` or without a ``feature`` column.
    """
    features: list[str] = []
    for directory in dataset_dirs:
        # An interrupted upload must not pass for the held-out sequences: some would reach pre-training.
        require_complete(directory)
        for split in splits:
            path = join(directory, f"{split}.parquet")
            if not exists(path):
                raise InputError(directory, f"no {split}.parquet: "
                                 "expected a dataset folder from create_dataset_bio or kmerise_bio")
            features.extend(_read_features(path))
    return build_exclusion_index(features, dataset_dirs)


def _kmer_hashes(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """2-bit hashes of every k-mer of ``codes`` and whether each k-mer is all ACGT."""
    count = len(codes) - k + 1
    bits = (codes & 3).astype(np.uint64)
    hashes = np.zeros(count, dtype=np.uint64)
    for offset in range(k):
        hashes <<= np.uint64(2)
        hashes |= bits[offset:offset + count]
    ambiguous = np.concatenate(([0], np.cumsum(codes > 3, dtype=np.int64)))
    return hashes, ambiguous[k:] - ambiguous[:count] == 0


def find_occurrences(genome_sequence: str, index: ExclusionIndex, block: int = BLOCK) -> list[Occurrence]:
    """Every exact occurrence of every held-out sequence (either orientation) in an upper-case sequence.

    Args:
        genome_sequence: The sequence to search (a chromosome, contig or any record).
        index: Held-out sequences from :func:`exclusion_index`.
        block: Genome positions hashed at a time (bounds memory on long chromosomes).
    """
    found: list[Occurrence] = []
    length, k = len(genome_sequence), index.seed_length
    if len(index.seed_hashes) and length >= k:
        raw = np.frombuffer(genome_sequence.encode("ascii"), dtype=np.uint8)
        for first in range(0, length - k + 1, block):
            codes = _CODES[raw[first:first + block + k - 1]]
            hashes, clean = _kmer_hashes(codes, k)
            slots = np.minimum(np.searchsorted(index.seed_hashes, hashes), len(index.seed_hashes) - 1)
            for position in np.flatnonzero(clean & (index.seed_hashes[slots] == hashes)):
                for number, offset in index.seed_owners[int(hashes[position])]:
                    start = first + int(position) - offset
                    sequence = index.sequences[number]
                    if start >= 0 and genome_sequence.startswith(sequence, start):
                        found.append(Occurrence(start, start + len(sequence), number))
    for number in index.unseeded:
        sequence = index.sequences[number]
        start = genome_sequence.find(sequence)
        while start >= 0:
            found.append(Occurrence(start, start + len(sequence), number))
            start = genome_sequence.find(sequence, start + 1)
    found.sort(key=lambda item: (item.start, item.end))
    return found


def mask_occurrences(genome_sequence: str, occurrences: Sequence[Occurrence]) -> tuple[str, int]:
    """Replace with N every base inside any occurrence; return the masked sequence and that base count."""
    if not occurrences:
        return genome_sequence, 0
    depth = np.zeros(len(genome_sequence) + 1, dtype=np.int32)
    np.add.at(depth, [item.start for item in occurrences], 1)
    np.add.at(depth, [item.end for item in occurrences], -1)
    covered = np.cumsum(depth[:-1]) > 0
    letters = np.frombuffer(genome_sequence.encode("ascii"), dtype=np.uint8).copy()
    letters[covered] = ord("N")
    return letters.tobytes().decode("ascii"), int(covered.sum())


def mask_excluded(genome_sequence: str, index: ExclusionIndex) -> tuple[str, int]:
    """Mask with N every position covered by an occurrence, on either strand, of any held-out sequence.

    Args:
        genome_sequence: Upper-case sequence of one genome record.
        index: Held-out sequences from :func:`exclusion_index`.

    Returns:
        The masked sequence (same length) and the number of bases replaced.
    """
    return mask_occurrences(genome_sequence, find_occurrences(genome_sequence, index))


def window_starts(length: int, window: int, stride: int, offset: int = 0) -> range:
    """Starts of full windows over ``length`` bases; a sequence shorter than a window is one window."""
    if length <= window:
        return range(0, 1)
    return range(min(offset, length - window), length - window + 1, stride)


@dataclass
class CorpusStats:
    """What one pass over the corpus holds.

    Attributes:
        records: FASTA records read.
        bases: Bases in them.
        bases_removed: Bases masked with N because a held-out sequence covers them.
        occurrences: Held-out occurrences found (either strand).
        held_out_found: Distinct held-out molecules found at least once.
        windows: Windows trained on per pass (both strands counted).
        windows_skipped: Windows skipped for holding too many N.
    """

    records: int = 0
    bases: int = 0
    bases_removed: int = 0
    occurrences: int = 0
    held_out_found: int = 0
    windows: int = 0
    windows_skipped: int = 0


def _empty_index() -> ExclusionIndex:
    return build_exclusion_index([])


@dataclass
class WindowCorpus:
    """Genome FASTA files cut into windows (both strands), held-out data masked, streamed forever in shuffled order.

    Attributes:
        paths: FASTA files (plain or gzip, local or ``s3://``).
        window: Bases per window.
        stride: Bases between window starts.
        both_strands: Yield the reverse complement of every window too.
        max_n_fraction: Skip windows holding a larger share of N.
        shuffle_buffer: Windows held for shuffling.
        seed: Seed of window offsets and order.
        index: Held-out sequences to mask (none by default).
    """

    paths: Sequence[str]
    window: int
    stride: int
    both_strands: bool = True
    max_n_fraction: float = 0.5
    shuffle_buffer: int = 4096
    seed: int = 0
    index: ExclusionIndex = field(default_factory=_empty_index)

    def records(self) -> Iterator[tuple[str, list[Occurrence], int]]:
        """Each record's masked sequence, the held-out occurrences in it and the bases masked, one record at a time."""
        for path in self.paths:
            for record in read_fasta(path, Alphabet.DNA):
                occurrences = find_occurrences(record.sequence, self.index)
                masked, removed = mask_occurrences(record.sequence, occurrences)
                yield masked, occurrences, removed

    def _usable(self, window: str) -> bool:
        return window.count("N") <= self.max_n_fraction * len(window)

    def record_windows(self, sequence: str, offset: int = 0) -> Iterator[str]:
        """Usable windows of one (masked) sequence, each followed by its reverse complement if asked."""
        for start in window_starts(len(sequence), self.window, self.stride, offset):
            window = sequence[start:start + self.window]
            if self._usable(window):
                yield window
                if self.both_strands:
                    yield reverse_complement(window)

    def scan(self) -> CorpusStats:
        """Read the corpus once: validate it and count records, bases, masked bases and windows."""
        stats = CorpusStats()
        found: set[int] = set()
        for sequence, occurrences, removed in self.records():
            stats.records += 1
            stats.bases += len(sequence)
            stats.bases_removed += removed
            stats.occurrences += len(occurrences)
            found.update(self.index.molecule[item.sequence] for item in occurrences)
            starts = window_starts(len(sequence), self.window, self.stride)
            usable = sum(self._usable(sequence[start:start + self.window]) for start in starts)
            strands = 2 if self.both_strands else 1
            stats.windows += usable * strands
            stats.windows_skipped += (len(starts) - usable) * strands
        stats.held_out_found = len(found)
        return stats

    def __iter__(self) -> Iterator[str]:
        """Windows forever, pass after pass, through the shuffle buffer; each pass starts at a new random offset.

        Raises:
            InputError: A pass yields no usable window.
        """
        rng = random.Random(self.seed)
        buffer: list[str] = []
        while True:
            produced = 0
            for sequence, _, _ in self.records():
                # A new phase each pass, so windows straddle the previous pass's boundaries.
                offset = rng.randrange(min(self.stride, max(1, len(sequence) - self.window + 1)))
                for window in self.record_windows(sequence, offset):
                    produced += 1
                    if len(buffer) < self.shuffle_buffer:
                        buffer.append(window)
                        continue
                    slot = rng.randrange(self.shuffle_buffer)
                    yield buffer[slot]
                    buffer[slot] = window
            if not produced:
                raise InputError(", ".join(map(str, self.paths)), f"no window of {self.window} bases has at most "
                                 f"{self.max_n_fraction:.0%} N; nothing to train on")
