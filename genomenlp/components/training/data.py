"""Reading dataset splits in any of the formats ``create_dataset_bio`` writes, and batching them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genomenlp.components.errors import InputError
from genomenlp.components.storage import exists, is_remote, join, open_input, parent_of, require_complete

FORMATS = ("parquet", "csv", "json", "dataset")


@dataclass
class EncodedSplit:
    """Token ids and labels of one split, plus the parent record of every row (for aggregation).

    Attributes:
        input_ids: One int array per row, already wrapped in ``<s> … </s>``.
        labels: Class id per row.
        parents: Parent record number per row (rows of one record share it).
        source: Where the split came from, for messages.
        features: The sequence text of every row, when the file has it (baselines need it).
    """

    input_ids: list[np.ndarray]
    labels: np.ndarray
    parents: np.ndarray
    source: str
    features: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> EncodedSplit:
        """The rows at the given positions."""
        features = None if self.features is None else [self.features[i] for i in rows]
        return EncodedSplit([self.input_ids[i] for i in rows], self.labels[rows], self.parents[rows], self.source,
                            features)


def resolve_split_path(value: str, train_path: str, file_format: str) -> str:
    """A split given as a path, or as a name (``test``) beside the training file."""
    if exists(value):
        return value
    parent = str(train_path).rsplit("/", 1)[0] if is_remote(train_path) else str(Path(train_path).parent)
    candidate = join(parent, value if file_format == "dataset" else f"{value}.{file_format}")
    if exists(candidate):
        return candidate
    raise InputError(value, f"no such split: neither a file nor {candidate}")


def _read_frame(path: str, file_format: str):
    import pandas as pd

    if file_format == "parquet":
        with open_input(path) as handle:
            return pd.read_parquet(handle)
    if file_format == "csv":
        with open_input(path) as handle:
            frame = pd.read_csv(handle)
        for column in ("input_ids",):
            if column in frame:
                frame[column] = frame[column].map(json.loads)
        return frame
    if file_format == "json":
        with open_input(path) as handle:
            return pd.read_json(handle, lines=True)
    if file_format == "dataset":
        import datasets

        return datasets.load_from_disk(path).to_pandas()
    raise InputError(file_format, f"unknown format; choose one of {', '.join(FORMATS)}")


def load_split(path: str, file_format: str, label_column: str = "labels") -> EncodedSplit:
    """Read one split, class ids from ``label_column``.

    Raises:
        InputError: The split lacks the encoded columns, or its object-storage folder is incomplete.
    """
    if is_remote(path):
        require_complete(parent_of(path))
    try:
        frame = _read_frame(path, file_format)
    except InputError:
        raise
    except (ValueError, OSError, KeyError) as error:
        raise InputError(path, f"cannot be read as {file_format} ({str(error).splitlines()[0]})") from None
    missing = [column for column in ("input_ids", label_column) if column not in frame]
    if missing:
        raise InputError(path, f"lacks columns {missing}: build it with create_dataset_bio or kmerise_bio")
    if frame.empty:
        raise InputError(path, "has no rows")
    parents = frame["parent"].to_numpy() if "parent" in frame else np.arange(len(frame))
    ids = [np.asarray(row, dtype=np.int64) for row in frame["input_ids"]]
    features = frame["feature"].astype(str).tolist() if "feature" in frame else None
    return EncodedSplit(ids, frame[label_column].to_numpy(dtype=np.int64), parents, path, features)


def dataset_manifest(train_path: str) -> dict | None:
    """The ``manifest.json`` beside a split, if there is one (an incomplete ``s3://`` folder is refused)."""
    parent = parent_of(train_path)
    if is_remote(parent):
        require_complete(parent)
    path = join(parent, "manifest.json")
    if not exists(path):
        return None
    with open_input(path) as handle:
        return json.loads(handle.read())


def batches(split: EncodedSplit, batch_size: int, pad_id: int, shuffle_rng: np.random.Generator | None = None):
    """Yield padded (input_ids, attention_mask, labels) int64 arrays; shuffled when a generator is given."""
    order = np.arange(len(split))
    if shuffle_rng is not None:
        shuffle_rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(split.input_ids[row]) for row in rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for line, row in enumerate(rows):
            sequence = split.input_ids[row]
            ids[line, : len(sequence)] = sequence
            mask[line, : len(sequence)] = 1
        yield ids, mask, split.labels[rows]


# Rows re-encoded per split to tie the data to the tokeniser: a wrong tokeniser differs on the first row.
_TOKENISER_SAMPLE = 16


def validate_splits(splits: dict[str, EncodedSplit], tokenizer, names: list, max_positions: int,
                    tokenizer_path: str = "tokeniser") -> None:
    """Refuse, before any training, rows the model cannot take: one line naming the split, row and fix.

    Checks every split's token ids against the vocabulary, its labels against the classes and its
    lengths against the model's positions; that train holds at least two classes; and, where rows
    keep their sequence (``feature``), that the tokeniser encodes a sample of them to the stored ids
    (with or without a manifest, a tokeniser of another k or vocabulary is caught).

    Args:
        splits: ``train``, ``valid`` and ``test`` rows.
        tokenizer: The :class:`~components.tokenisers.common.SequenceTokenizer` given for the data.
        names: Class names by label id.
        max_positions: Longest input the model takes, in tokens.
        tokenizer_path: Where the tokeniser came from, for messages.
    """
    vocab_size = tokenizer.tokenizer.get_vocab_size()
    for name, split in splits.items():
        bad_labels = np.flatnonzero((split.labels < 0) | (split.labels >= len(names)))
        if bad_labels.size:
            row = int(bad_labels[0])
            raise InputError(split.source, f"label {int(split.labels[row])} is not a class id (0–{len(names) - 1}: "
                             f"{', '.join(map(str, names))}); rebuild the {name} split", f"row {row}")
        lengths = np.fromiter((len(ids) for ids in split.input_ids), dtype=np.int64, count=len(split))
        too_long = np.flatnonzero(lengths > max_positions)
        if too_long.size:
            row = int(too_long[0])
            raise InputError(split.source, f"{int(lengths.max())} tokens in a row, more than --max_positions "
                             f"{max_positions}: raise --max_positions, or rebuild the dataset with --max_tokens "
                             f"{max_positions}", f"row {row}")
        for row, ids in enumerate(split.input_ids):
            if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
                wrong = int(ids.max()) if int(ids.max()) >= vocab_size else int(ids.min())
                raise InputError(split.source, f"token id {wrong} is outside the tokeniser's vocabulary (0–"
                                 f"{vocab_size - 1}): the data was encoded with another tokeniser", f"row {row}")
        _check_encoding(split, tokenizer, tokenizer_path)
    classes = np.unique(splits["train"].labels)
    if classes.size < 2:
        only = names[int(classes[0])] if classes.size else "none"
        raise InputError(splits["train"].source, f"the train split holds one class ({only}): a classifier needs at "
                         "least two; check the class files and the split")


def _check_encoding(split: EncodedSplit, tokenizer, tokenizer_path: str) -> None:
    if split.features is None:
        return
    for row in range(min(_TOKENISER_SAMPLE, len(split))):
        stored = split.input_ids[row].tolist()
        # Rows cut at --max_tokens were encoded with truncation to their stored length.
        encoded = tokenizer.encode_batch([split.features[row]], max_length=len(stored))[0].ids
        if encoded != stored:
            raise InputError(tokenizer_path, f"is not the tokeniser {split.source} was encoded with (row {row} "
                             "encodes to other token ids): give the tokeniser the dataset was built with "
                             "(its tokenizer.json)")
