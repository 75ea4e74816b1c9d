"""Class probabilities of sequences from a trained classifier: batched, streamed, long sequences windowed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from genomenlp.components.fasta import record_length_limit
from genomenlp.components.inference.config import PredictConfig
from genomenlp.components.inference.inputs import InputRecord, iter_records, model_alphabet, resolve_inputs
from genomenlp.components.inference.output import atomic_text_stream, tsv_line
from genomenlp.components.inference.windows import (
    LongRecord,
    TokenisedRecord,
    grouped_records,
    long_record_windows,
    special_ids,
)
from genomenlp.components.model_io import LoadedModel
from genomenlp.components.tokenisers.common import PAD
from genomenlp.components.training.optim import autocast_dtype


@dataclass
class Prediction:
    """A record's class probabilities (mean over its windows) and the most probable class.

    Attributes:
        record: The input record.
        probabilities: One probability per class, in label-id order.
        label: Name of the most probable class.
        chunks: Model windows the record was read in (1 unless longer than the model's window).
    """

    record: InputRecord
    probabilities: np.ndarray
    label: str
    chunks: int


def padded_batch(rows: list[list[int]], pad_id: int):
    """``(ids, attention_mask)`` long tensors of token-id rows padded to the longest."""
    import torch

    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[index, : len(row)] = 1
    return ids, mask


def window_probabilities(model, windows: list[list[int]], batch_size: int, pad_id: int, device) -> np.ndarray:
    """Softmax class probabilities of each window, ``(windows, classes)``, in the order given.

    Windows are sorted by length before batching so that little compute goes to padding.
    """
    import torch

    from genomenlp.components.inference.classifier_path import classifier_logits

    if not windows:
        return np.zeros((0, model.config.num_labels), dtype=np.float64)
    order = sorted(range(len(windows)), key=lambda index: len(windows[index]))
    result = np.zeros((len(windows), model.config.num_labels), dtype=np.float64)
    dtype = autocast_dtype(device)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            ids, mask = padded_batch([windows[index] for index in chosen], pad_id)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = classifier_logits(model, ids.to(device), mask.to(device))
            result[chosen] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return result


def predict_group(loaded: LoadedModel, group: list[TokenisedRecord], batch_size: int, device) -> list[Prediction]:
    """Predictions for one group of tokenised records (window probabilities averaged per record)."""
    flat = [ids for item in group for ids in item.window_ids]
    probabilities = window_probabilities(loaded.model, flat, batch_size, special_ids(loaded.tokenizer)[PAD], device)
    predictions, start = [], 0
    for item in group:
        mean = probabilities[start : start + len(item.window_ids)].mean(axis=0)
        start += len(item.window_ids)
        predictions.append(Prediction(item.record, mean, loaded.label_names[int(mean.argmax())], len(item.windows)))
    return predictions


def predict_records(loaded: LoadedModel, records: Iterable[InputRecord], config: PredictConfig,
                    device=None) -> Iterator[Prediction]:
    """Stream predictions in input order; memory holds one group of a few batches at a time.

    Args:
        loaded: The model (moved to ``device``).
        records: Records to classify, read lazily.
        config: Batch size and window overlap.
        device: Torch device (default: chosen from ``config.device``).
    """
    from genomenlp.components.training.optim import choose_device

    device = device or choose_device(config.device)
    loaded.model.to(device).eval()
    for group in grouped_records(records, loaded.tokenizer, loaded.max_tokens, config.window_overlap,
                                 config.batch_size):
        if isinstance(group, LongRecord):
            yield predict_long_record(loaded, group.record, config, device)
        else:
            yield from predict_group(loaded, group, config.batch_size, device)


def predict_long_record(loaded: LoadedModel, record: InputRecord, config: PredictConfig, device) -> Prediction:
    """The mean window probabilities of a record too long to tokenise whole, one batch of windows at a time."""
    pad = special_ids(loaded.tokenizer)[PAD]
    total = np.zeros(loaded.model.config.num_labels, dtype=np.float64)
    windows = 0
    for batch in long_record_windows(record, loaded.tokenizer, loaded.max_tokens, config.window_overlap,
                                     config.batch_size):
        total += window_probabilities(loaded.model, batch, config.batch_size, pad, device).sum(axis=0)
        windows += len(batch)
    mean = total / max(windows, 1)
    return Prediction(record, mean, loaded.label_names[int(mean.argmax())], windows)


# A record more than half unknown bases says little, whatever probability the model gives it.
MOSTLY_N_SHARE = 0.5


def record_flags(sequence: str, shortest: int | None) -> str:
    """Why a prediction deserves little trust: ``mostly_N``, ``shorter_than_training``; empty when none.

    Args:
        sequence: The record's letters.
        shortest: Shortest training record of the model (None when its metadata does not say).
    """
    flags = []
    if sequence and sequence.count("N") > MOSTLY_N_SHARE * len(sequence):
        flags.append("mostly_N")
    if shortest and len(sequence) < shortest:
        flags.append("shorter_than_training")
    return ",".join(flags)


def shortest_training_record(metadata: dict) -> int | None:
    """The shortest training record of a model, from its ``genomenlp.json`` (None for older models)."""
    return (metadata.get("record_lengths") or {}).get("train_min")


def prediction_header(label_names: list[str]) -> list[str]:
    """Columns of a predictions table."""
    return ["id", "predicted_label", *(f"p_{name}" for name in label_names), "length", "chunks", "flags"]


def prediction_row(prediction: Prediction, shortest: int | None = None) -> list:
    """One row of a predictions table."""
    return [prediction.record.id, prediction.label, *(f"{p:.8g}" for p in prediction.probabilities),
            len(prediction.record.sequence), prediction.chunks, record_flags(prediction.record.sequence, shortest)]


def write_predictions(loaded: LoadedModel, inputs: list[str], output: str, config: PredictConfig,
                      overwrite: bool = False) -> dict:
    """Classify every record of the inputs and stream one TSV row per record to ``output``.

    Args:
        loaded: The model.
        inputs: FASTA files and/or raw sequences.
        output: The TSV to write (local or ``s3://``); it appears only once complete.
        config: Prediction settings.
        overwrite: Replace an existing output.

    Returns:
        Counts: ``records``, ``windows`` (model windows read) and ``per_label`` (records per class).
    """
    alphabet = config.alphabet or model_alphabet(loaded.metadata)
    sources = resolve_inputs(inputs, alphabet)
    counts = {"records": 0, "windows": 0, "per_label": dict.fromkeys(loaded.label_names, 0)}
    shortest = shortest_training_record(loaded.metadata)
    with record_length_limit(config.max_record_length), atomic_text_stream(output, overwrite) as stream:
        stream.write(tsv_line(prediction_header(loaded.label_names)))
        for prediction in predict_records(loaded, iter_records(sources, alphabet), config):
            stream.write(tsv_line(prediction_row(prediction, shortest)))
            counts["records"] += 1
            counts["windows"] += prediction.chunks
            counts["per_label"][prediction.label] += 1
    return counts
