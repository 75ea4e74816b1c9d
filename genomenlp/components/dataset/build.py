"""Build a dataset: read each class file twice (group and split, then encode and write).

Only small per-record facts (a 16-byte key, a label, a length) stay in memory between the
passes, so memory grows with the number of records, not with the number of bases.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from genomenlp.components.configs import DatasetConfig, ReverseComplement
from genomenlp.components.dataset.splitting import assign_splits, group_records, molecule_key, substring_keys
from genomenlp.components.dataset.writer import SplitWriter, finalise_split_formats, remove_work_dir
from genomenlp.components.errors import InputError
from genomenlp.components.fasta import Alphabet, read_fasta
from genomenlp.components.progress import progress
from genomenlp.components.sequences import chunk_spans, reverse_complement
from genomenlp.components.storage import open_input
from genomenlp.components.tokenisers.common import SequenceTokenizer, TokenizerKind

SPLITS = ("train", "test", "valid")
MANIFEST_FORMAT = "genomenlp-dataset/1"
_FASTA_SUFFIXES = re.compile(r"(\.(gz|fasta|fa|fna|faa|ffn|frn|fas|seq|txt))+$", re.IGNORECASE)
_ENCODE_BATCH = 2048


@dataclass(frozen=True)
class Row:
    """One dataset row before encoding: a sequence (or chunk, or its reverse complement)."""

    feature: str
    label: int
    record_id: str
    parent: int
    strand: str
    start: int
    end: int


def label_names_from_files(paths: Sequence[str]) -> list[str]:
    """Class names from file names: ``data/promoter.fasta.gz`` → ``promoter``."""
    names = [_FASTA_SUFFIXES.sub("", PurePosixPath(str(path)).name) or str(path) for path in paths]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise InputError(", ".join(map(str, paths)), f"files share the class name {duplicated}; pass --labels")
    return names


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes as stored (compressed or not)."""
    digest = hashlib.sha256()
    with open_input(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _records(paths: Sequence[str], alphabet: Alphabet) -> Iterator[tuple[int, object]]:
    for label, path in enumerate(paths):
        for record in read_fasta(path, alphabet):
            yield label, record


def fitting_chunk(config: DatasetConfig, tokenizer: SequenceTokenizer) -> tuple[int, int]:
    """Chunk size and overlap in bases, shrunk so a k-mer chunk's tokens fit ``max_tokens``.

    A k-mer chunk of n bases makes (n − k) / stride + 1 tokens plus ``<s>``/``</s>``: a 1,024-base
    chunk of overlapping 3-mers would be cut at 512 tokens and lose half its bases unseen.
    """
    size, overlap = config.chunk_size, config.chunk_overlap
    if tokenizer.kind is TokenizerKind.KMER and config.max_tokens:
        fits = (config.max_tokens - 3) * tokenizer.stride + tokenizer.k
        if size > fits:
            overlap = min(overlap, fits // 4)
            size = fits
    return size, overlap


def _rows_of(record, label: int, parent: int, chunk: tuple[int, int], with_reverse: bool) -> Iterator[Row]:
    strands = [("+", record.sequence)]
    if with_reverse:
        strands.append(("-", reverse_complement(record.sequence)))
    for strand, sequence in strands:
        for start, end in chunk_spans(len(sequence), *chunk):
            yield Row(sequence[start:end], label, record.id, parent, strand, start, end)


def _conflicting_records(keys: list[bytes], labels: list[int], class_files: list[str], allow: bool) -> int:
    """Records whose molecule (sequence or reverse complement) also appears under another label.

    Such a record teaches the model two answers for one input; refused unless ``allow``.
    """
    labels_of: dict[bytes, set[int]] = {}
    for key, label in zip(keys, labels, strict=True):
        labels_of.setdefault(key, set()).add(label)
    conflicting = {key for key, found in labels_of.items() if len(found) > 1}
    if not conflicting:
        return 0
    rows = [index for index, key in enumerate(keys) if key in conflicting]
    if allow:
        return len(rows)
    first = rows[0]
    twin = next(index for index in rows if keys[index] == keys[first] and labels[index] != labels[first])
    starts = {label: labels.index(label) for label in set(labels)}

    def where(index: int) -> str:
        return f"record {index - starts[labels[index]] + 1} of {class_files[labels[index]]}"

    raise InputError(", ".join(class_files), f"{len(rows)} records carry a sequence that appears under two or more "
                     f"labels (first: {where(first)} and {where(twin)}, same sequence or reverse complement): fix "
                     "the class files, or pass --allow_conflicts to keep them")


def build_dataset(
    class_files: Sequence[str], tokenizer: SequenceTokenizer, config: DatasetConfig, out_dir, show_progress: bool = True
) -> dict:
    """Write train/test/valid (parquet, csv, json, ``save_to_disk``) and return the manifest.

    Args:
        class_files: One FASTA per class, in label order.
        tokenizer: Encodes each row.
        config: Split, augmentation and chunking settings.
        out_dir: A local staging folder (see :func:`genomenlp.components.storage.atomic_output_dir`).
        show_progress: Show progress bars.
    """
    class_files = [str(path) for path in class_files]
    if len(class_files) < 2:
        raise InputError(" ".join(class_files) or "input", "need at least two FASTA files, one per class")
    names = list(config.labels) if config.labels else label_names_from_files(class_files)
    if len(names) != len(class_files):
        raise InputError("--labels", f"{len(names)} labels for {len(class_files)} files: give one per file")
    nucleotide = config.alphabet is Alphabet.DNA

    keys, labels, windows, lengths = [], [], [], []
    for label, record in progress(_records(class_files, config.alphabet), "Reading records", show_progress):
        keys.append(molecule_key(record.sequence, nucleotide))
        labels.append(label)
        lengths.append(len(record.sequence))
        if config.shared_substring:
            windows.append(substring_keys(record.sequence, config.shared_substring, nucleotide))
    conflicts = _conflicting_records(keys, labels, class_files, config.allow_conflicts)
    groups = group_records(keys, windows if config.shared_substring else None)
    del keys, windows
    split_of = assign_splits(groups, labels, config.fractions, config.seed)

    writers = {split: SplitWriter(out_dir, split, tokenizer, config.max_tokens) for split in SPLITS}
    buffers: dict[str, list[Row]] = {split: [] for split in SPLITS}
    records_per_split = Counter(split_of)
    rc = config.reverse_complement
    chunk = fitting_chunk(config, tokenizer)
    for parent, (label, record) in enumerate(
        progress(_records(class_files, config.alphabet), "Encoding records", show_progress, total=len(labels))
    ):
        split = split_of[parent]
        with_reverse = rc is ReverseComplement.ALL or (rc is ReverseComplement.TRAIN and split == "train")
        # Flushed row by row: one long record (a chromosome) makes ~100,000 chunks, too many to hold encoded.
        for row in _rows_of(record, label, parent, chunk, with_reverse):
            buffers[split].append(row)
            if len(buffers[split]) >= _ENCODE_BATCH:
                writers[split].write(buffers[split])
                buffers[split] = []
        del record
    split_info = {}
    for split in SPLITS:
        writers[split].write(buffers[split])
        rows_per_class = writers[split].close()
        finalise_split_formats(out_dir, split, names)
        split_info[split] = {
            "records": records_per_split.get(split, 0),
            "rows": sum(rows_per_class.values()),
            "rows_per_class": {names[label]: rows_per_class.get(label, 0) for label in range(len(names))},
        }
    remove_work_dir(out_dir)
    return {
        "format": MANIFEST_FORMAT,
        "label_names": names,
        "classes": [
            {"label": name, "file": path, "sha256": file_sha256(path), "records": labels.count(index)}
            for index, (name, path) in enumerate(zip(names, class_files, strict=True))
        ],
        "groups": len(set(groups)),
        "seed": config.seed,
        "splits": split_info,
        "tokenizer": {**tokenizer.describe(), "sha256": tokenizer.sha256()},
        "config": config.model_dump(mode="json"),
        "sample": writers["train"].sample,
        "chunking": {"chunk_size": chunk[0], "chunk_overlap": chunk[1]},
        "truncated_rows": sum(writer.truncated for writer in writers.values()),
        "conflicting_records": conflicts,
        # predict and interpret flag inputs shorter than anything the model was trained on.
        "record_lengths": _train_lengths(lengths, split_of),
    }


def _train_lengths(lengths: list[int], split_of: list[str]) -> dict:
    train = [length for length, split in zip(lengths, split_of, strict=True) if split == "train"] or lengths
    return {"train_min": min(train), "train_max": max(train)}
