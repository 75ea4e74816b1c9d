"""``interpret``: attributions of a classifier's decisions written as TSV tracks and HTML pages.

Output folder layout (built under a temporary name, moved into place when complete):

- ``index.html``: every sequence with its prediction and a link to its page;
- ``sequences/<stem>.html``: one page per sequence, tokens and bases coloured by score;
- ``attributions.tsv``: one row per token (record id, token index, token, start, end, score);
- ``per_base.tsv``: one row per base (record id, position, base, score);
- ``summary.tsv``: one row per sequence (prediction, explained class, convergence delta, page);
- ``class_tracks.tsv``: mean score per base position over the sequences predicted as each class
  (the index page's summary tracks).

Every page is coloured on one scale for the whole run, so pages are written once all records are
attributed (their arrays wait in a scratch folder inside the staging folder meanwhile).

Positions are 0-based and token ends exclusive (BED style). Windows of a long sequence are
attributed separately and merged: a token held by several windows gets the mean of its scores,
and a base gets the mean score of the tokens covering it (several for overlapping k-mers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genomenlp.components.errors import InputError
from genomenlp.components.fasta import record_length_limit
from genomenlp.components.inference.attribution import WindowAttribution, attribute_windows
from genomenlp.components.inference.config import InterpretConfig
from genomenlp.components.inference.html_report import (
    ColourScale,
    SequenceSummary,
    noise_floor,
    render_index,
    render_sequence_page,
)
from genomenlp.components.inference.inputs import iter_records, model_alphabet, resolve_inputs
from genomenlp.components.inference.output import safe_file_stem, tsv_line
from genomenlp.components.inference.predict import (
    Prediction,
    predict_group,
    record_flags,
    shortest_training_record,
)
from genomenlp.components.inference.summary_track import ClassTracks, render_tracks
from genomenlp.components.inference.windows import (
    LongRecord,
    TokenisedRecord,
    grouped_records,
    special_ids,
    tokenise_records,
)
from genomenlp.components.model_io import LoadedModel
from genomenlp.components.progress import progress
from genomenlp.components.storage import atomic_output_dir, ensure_absent, join

INDEX_FILE = "index.html"
PAGES_DIR = "sequences"
TOKENS_FILE = "attributions.tsv"
BASES_FILE = "per_base.tsv"
SUMMARY_FILE = "summary.tsv"
TRACKS_FILE = "class_tracks.tsv"
PENDING_DIR = ".pending_pages"


def resolve_target(target: str | None, label_names: list[str]) -> int | None:
    """Label id of the class to explain, or ``None`` for each sequence's predicted class."""
    if target is None:
        return None
    if target not in label_names:
        raise InputError("--target", f"{target!r} is not a class of this model (classes: {', '.join(label_names)})")
    return label_names.index(target)


def per_base_track(spans: np.ndarray, token_scores: np.ndarray, length: int) -> np.ndarray:
    """Score of each base: the mean score of the tokens covering it (NaN where none does).

    Args:
        spans: ``(tokens, 2)`` bases of each token, 0-based, end exclusive.
        token_scores: One score per token.
        length: Bases in the sequence.
    """
    # Difference arrays: +score at a token's start, −score at its end; running sums give the
    # total over covering tokens in O(tokens + bases), however much tokens overlap.
    totals = np.zeros(length + 1, dtype=np.float64)
    counts = np.zeros(length + 1, dtype=np.int64)
    starts, ends = spans[:, 0], spans[:, 1]
    np.add.at(totals, starts, token_scores)
    np.add.at(totals, ends, -token_scores)
    np.add.at(counts, starts, 1)
    np.add.at(counts, ends, -1)
    totals, counts = np.cumsum(totals)[:length], np.cumsum(counts)[:length]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def merge_windows(item: TokenisedRecord, attributions: list[WindowAttribution]) -> np.ndarray:
    """Token scores of a whole record: the mean over the windows holding each token."""
    totals = np.zeros(len(item.spans), dtype=np.float64)
    counts = np.zeros(len(item.spans), dtype=np.int64)
    for (first, end), attribution in zip(item.windows, attributions, strict=True):
        totals[first:end] += attribution.scores
        counts[first:end] += 1
    return totals / np.maximum(counts, 1)


def _format(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.6g}"


def interpret_sequences(loaded: LoadedModel, inputs: list[str], out_dir: str, config: InterpretConfig,
                        labels: list[str] | None = None, overwrite: bool = False,
                        show_progress: bool = False) -> dict:
    """Predict, attribute and report every record of the inputs into ``out_dir``.

    Args:
        loaded: The model.
        inputs: FASTA files and/or raw sequences.
        out_dir: Output folder (local or ``s3://``); nothing is written outside it.
        config: Interpretation settings.
        labels: True class name of each input, or ``None``.
        overwrite: Replace an existing output folder.
        show_progress: Show a progress bar.

    Returns:
        ``records``, ``index`` (path of ``index.html``), ``max_abs_delta`` and ``out_dir``.
    """
    alphabet = config.alphabet or model_alphabet(loaded.metadata)
    sources = resolve_inputs(inputs, alphabet, labels)
    fixed_target = resolve_target(config.target, loaded.label_names)
    ensure_absent(out_dir, overwrite, folder=True)
    with record_length_limit(config.max_record_length):
        _refuse_long_records(sources, alphabet, config.max_interpret_length)
        return _interpret(loaded, sources, alphabet, fixed_target, out_dir, config, overwrite, show_progress)


def _refuse_long_records(sources, alphabet, limit: int) -> None:
    """Refuse, before any attribution, a record too long to interpret (one streamed pass over the inputs)."""
    for record in iter_records(sources, alphabet):
        if len(record.sequence) > limit:
            raise InputError(record.source, f"is {len(record.sequence):,} bases, longer than --max_interpret_length "
                             f"{limit:,}: attributions cost dozens of model passes per window and the outputs hold "
                             "a row per base; cut out the region to explain (or raise the limit)",
                             f"record {record.id!r}")


def _interpret(loaded, sources, alphabet, fixed_target, out_dir, config, overwrite, show_progress) -> dict:
    from genomenlp.components.training.optim import choose_device

    device = choose_device(config.device)
    model = loaded.model.to(device).eval()
    special = special_ids(loaded.tokenizer)
    summaries: list[SequenceSummary] = []
    taken: set[str] = set()
    names = loaded.label_names
    shortest = shortest_training_record(loaded.metadata)
    tracks, explained, magnitudes = ClassTracks(), {}, []
    with atomic_output_dir(out_dir, overwrite) as staging:
        pages = staging / PAGES_DIR
        pages.mkdir()
        pending = staging / PENDING_DIR
        pending.mkdir()
        files = {name: open(staging / name, "w", encoding="utf-8", newline="", errors="backslashreplace")
                 for name in (TOKENS_FILE, BASES_FILE, SUMMARY_FILE)}
        try:
            files[TOKENS_FILE].write(tsv_line(["record_id", "token_index", "token", "start", "end", "score"]))
            files[BASES_FILE].write(tsv_line(["record_id", "position", "base", "score"]))
            files[SUMMARY_FILE].write(tsv_line(["record_id", "source", "true_label", "predicted_label",
                                                *(f"p_{name}" for name in names), "explained_label",
                                                "attribution_sum", "max_abs_delta", "length", "chunks", "page",
                                                "flags"]))
            records = progress(iter_records(sources, alphabet), "interpret", show_progress)
            for group in grouped_records(records, loaded.tokenizer, loaded.max_tokens, config.window_overlap,
                                         config.batch_size):
                if isinstance(group, LongRecord):  # only past a raised --max_interpret_length
                    group = tokenise_records([group.record], loaded.tokenizer, loaded.max_tokens,
                                             config.window_overlap)
                predictions = predict_group(loaded, group, config.batch_size, device)
                targets = [fixed_target if fixed_target is not None else int(p.probabilities.argmax())
                           for p in predictions]
                flat = [ids for item in group for ids in item.window_ids]
                flat_targets = [target for item, target in zip(group, targets, strict=True) for _ in item.window_ids]
                attributions = attribute_windows(model, flat, flat_targets, special, config.n_steps, config.batch_size,
                                                 config.tokens_per_pass, device, config.min_steps, config.tolerance)
                start = 0
                for item, prediction, target in zip(group, predictions, targets, strict=True):
                    window_attributions = attributions[start : start + len(item.windows)]
                    start += len(item.windows)
                    summary, token_scores, base_scores = _write_record(
                        item, prediction, target, names, window_attributions, files, pending, taken, shortest,
                        config.tolerance)
                    summaries.append(summary)
                    magnitudes.append(np.abs(token_scores))
                    tracks.add(summary.predicted, base_scores, summary.floor)
                    explained.setdefault(summary.predicted, set()).add(summary.target)
        finally:
            for handle in files.values():
                handle.close()
        scale = ColourScale.of_run(np.concatenate(magnitudes) if magnitudes else np.zeros(0))
        _write_pages(summaries, pending, staging, scale)
        _write_tracks(tracks, staging / TRACKS_FILE)
        (staging / INDEX_FILE).write_text(render_index(summaries, loaded.path, scale, render_tracks(tracks, explained)),
                                          encoding="utf-8")
    deltas = [summary.delta for summary in summaries]
    return {"records": len(summaries), "index": join(out_dir, INDEX_FILE), "out_dir": out_dir,
            "max_abs_delta": max(deltas) if deltas else 0.0}


def _write_pages(summaries: list[SequenceSummary], pending: Path, staging: Path, scale: ColourScale) -> None:
    """Render every record's page on the run's colour scale from its waiting arrays, then drop those."""
    for summary in summaries:
        waiting = pending / f"{Path(summary.page).stem}.npz"
        with np.load(waiting) as arrays:
            html = render_sequence_page(summary, arrays["tokens"].tolist(), arrays["spans"], arrays["token_scores"],
                                        str(arrays["sequence"]), arrays["base_scores"], scale)
        (staging / summary.page).write_text(html, encoding="utf-8")
        waiting.unlink()
    pending.rmdir()


def _write_tracks(tracks: ClassTracks, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="", errors="backslashreplace") as handle:
        handle.write(tsv_line(["predicted_label", "position", "mean_score", "sequences"]))
        for name, (means, counts) in tracks.means().items():
            for position, (mean, count) in enumerate(zip(means.tolist(), counts.tolist(), strict=True)):
                handle.write(tsv_line([name, position, _format(mean), count]))


def _write_record(item: TokenisedRecord, prediction: Prediction, target: int, names: list[str],
                  attributions: list[WindowAttribution], files: dict, pending: Path, taken: set[str],
                  shortest: int | None = None,
                  tolerance: float = 1e-3) -> tuple[SequenceSummary, np.ndarray, np.ndarray]:
    """Write one record's rows and keep its arrays for its page; return what the index says and its scores."""
    record = item.record
    flags = record_flags(record.sequence, shortest)
    token_scores = merge_windows(item, attributions)
    base_scores = per_base_track(item.spans, token_scores, len(record.sequence))
    tokens = item.tokens
    stem = safe_file_stem(record.id, taken)
    waiting = pending / f"{stem}.npz"
    # The stem cannot hold a separator; this check keeps that promise should the helper ever change.
    if waiting.resolve().parent != pending.resolve():
        raise RuntimeError(f"page of {record.id!r} would fall outside the output folder")
    summary = SequenceSummary(
        record_id=record.id,
        source=record.source,
        length=len(record.sequence),
        chunks=len(item.windows),
        true_label=record.label,
        predicted=prediction.label,
        probability=float(prediction.probabilities.max()),
        target=names[target],
        target_probability=float(prediction.probabilities[target]),
        attribution_sum=float(token_scores.sum()),
        delta=max(abs(attribution.delta) for attribution in attributions),
        page=f"{PAGES_DIR}/{stem}.html",
    )
    summary.floor = noise_floor(summary.delta, summary.attribution_sum, tolerance)
    write = files[TOKENS_FILE].write
    for index, (token, (start, end), score) in enumerate(zip(tokens, item.spans.tolist(), token_scores.tolist(),
                                                             strict=True)):
        write(tsv_line([record.id, index, token, start, end, _format(score)]))
    write = files[BASES_FILE].write
    for position, (base, score) in enumerate(zip(record.sequence, base_scores.tolist(), strict=True)):
        write(tsv_line([record.id, position, base, _format(score)]))
    files[SUMMARY_FILE].write(tsv_line([
        record.id, record.source, record.label if record.label is not None else "", prediction.label,
        *(f"{p:.8g}" for p in prediction.probabilities), summary.target, f"{summary.attribution_sum:.6g}",
        f"{summary.delta:.3g}", summary.length, summary.chunks, summary.page, flags,
    ]))
    np.savez(waiting, tokens=np.array(tokens, dtype=str), spans=item.spans, token_scores=token_scores,
             sequence=np.array(record.sequence), base_scores=base_scores)
    return summary, token_scores, base_scores
