"""Masked-language-model pre-training of the genomicBERT encoder: the run that writes the encoder folder.

The masking lives in :mod:`genomenlp.components.pretraining.masking` and the Trainer run with its checkpoints in
:mod:`genomenlp.components.pretraining.trainer`; this module builds the model, trains it on the genomes' windows
and writes ``OUT/encoder``, ``OUT/history.csv`` and ``OUT/metrics.json``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from genomenlp.components.errors import InputError
from genomenlp.components.model_io import MODEL_METADATA
from genomenlp.components.pretraining.config import RESUMABLE_CHANGES, PretrainConfig, resolve
from genomenlp.components.pretraining.corpus import (
    CorpusStats,
    ExclusionIndex,
    WindowCorpus,
    build_exclusion_index,
    exclusion_index,
)
from genomenlp.components.pretraining.masking import IGNORE_INDEX, encode_windows, mask_tokens  # noqa: F401
from genomenlp.components.storage import is_remote, prepare_resumable_dir
from genomenlp.components.tokenisers.common import (
    BOS,
    EOS,
    PAD,
    SequenceTokenizer,
    TokenizerKind,
    as_pretrained_tokenizer,
    load_sequence_tokenizer,
)
from genomenlp.components.training.config import ModelConfig
from genomenlp.components.training.model import build_classifier
from genomenlp.components.training.optim import choose_device
from genomenlp.components.training.state import is_main_process, write_json_atomically

ENCODER_DIR = "encoder"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"
ENCODER_KIND = "encoder"
# Bases of the first record used to size Unigram windows.
SAMPLE_BASES = 1 << 16


def build_masked_lm(config: ModelConfig, tokenizer: SequenceTokenizer):
    """A randomly initialised ``*ForMaskedLM`` of the classifier's architecture and shape.

    Args:
        config: Architecture and shape (the same model the classifier is built from).
        tokenizer: Gives the vocabulary size and the ``<s>``/``</s>``/``<pad>`` ids.
    """
    import torch
    from transformers import AutoModelForMaskedLM

    vocab = tokenizer.tokenizer.get_vocab()
    # The classifier factory owns the HF config; building it on the meta device costs nothing and
    # guarantees the encoder is exactly what fine-tuning will build and load into.
    with torch.device("meta"):
        classifier = build_classifier(config, len(vocab), ["LABEL_0", "LABEL_1"],
                                      {t: vocab[t] for t in (BOS, EOS, PAD)})
    hf_config = classifier.config
    return AutoModelForMaskedLM.from_config(hf_config)


def save_encoder_folder(model, tokenizer: SequenceTokenizer, directory: Path, metadata: dict) -> Path:
    """HF ``save_pretrained`` (safetensors) of the MLM model and its tokeniser, plus ``genomenlp.json``.

    The metadata has ``"kind": "encoder"`` and no ``label_names``: the folder is a starting point
    for classifiers, not a classifier.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model.save_pretrained(directory, safe_serialization=True)
    as_pretrained_tokenizer(tokenizer).save_pretrained(directory)
    (directory / MODEL_METADATA).write_text(json.dumps({"kind": ENCODER_KIND, **metadata}, indent=2, default=str))
    return directory


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _first_bases(paths: Sequence[str], count: int) -> str:
    from genomenlp.components.fasta import Alphabet, read_fasta

    for record in read_fasta(paths[0], Alphabet.DNA):
        return record.sequence[:count]
    return ""


def describe_corpus(stats: CorpusStats, config: PretrainConfig, index: ExclusionIndex) -> list[str]:
    """Human lines on the corpus and, when datasets were excluded, on what was masked."""
    strands = "both strands" if config.both_strands else "forward strand"
    lines = [f"corpus: {stats.records:,} record(s), {stats.bases:,} bases → {stats.windows:,} windows of "
             f"{config.window} bases per pass ({strands}, stride {config.stride}); "
             f"{stats.windows_skipped:,} skipped as mostly N"]
    if index.sources:
        share = stats.bases_removed / max(1, stats.bases)
        lines.append(f"exclusion: removed {stats.bases_removed:,} bases ({share:.2%}) at {stats.occurrences:,} "
                     f"occurrences of {stats.held_out_found:,}/{index.held_out:,} held-out sequences (valid+test of "
                     f"{', '.join(index.sources)}), on either strand")
    else:
        lines.append("exclusion: none; pass --exclude DATASET_DIR… so that no valid or test sequence of a dataset "
                     "you fine-tune on is pre-trained on")
    return lines


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def pretrain_encoder(
    genome_paths: Sequence[str],
    tokenizer_path: str,
    out_dir: str,
    model_config: ModelConfig,
    config: PretrainConfig,
    exclude: Sequence[str] = (),
    kmer_stride: int = 1,
    overwrite: bool = False,
    show_progress: bool = True,
    on_log: Callable[[int, dict], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict:
    """Pre-train an encoder on genomes; write ``OUT/encoder`` (HF folder), ``OUT/history.csv``, ``OUT/metrics.json``.

    ``OUT/checkpoints`` holds the resume state while the run is unfinished; ``metrics.json`` is
    written last and marks a finished run.

    Args:
        genome_paths: FASTA files (plain or gzip, local or ``s3://``).
        tokenizer_path: Tokeniser JSON (``tokenise_bio`` / ``kmerise_bio``); fine-tuning must use the same one.
        out_dir: Local output folder; a previous unfinished run of the same settings there is resumed.
        model_config: Encoder architecture and shape.
        config: Windowing, masking and optimisation.
        exclude: Dataset folders whose valid and test sequences are masked out of the genomes.
        kmer_stride: Step between k-mer starts the k-mer tokeniser was built with (``kmerise_bio -s``).
        overwrite: Replace a finished run in ``out_dir``.
        show_progress: Show a progress bar.
        on_log: Called with (step, row) every ``logging_steps`` steps.
        announce: Called with human lines (corpus, exclusion) before training starts.

    Returns:
        The content of ``metrics.json``.
    """
    if is_remote(out_dir):
        raise InputError(out_dir, "pretrain writes to a local folder; copy it to object storage afterwards")
    if not genome_paths:
        raise InputError("GENOME", "give at least one FASTA file to pre-train on")
    if model_config.conv_kernel or model_config.position_readout:
        raise InputError("--conv_kernel" if model_config.conv_kernel else "--position_readout",
                         "pre-training builds plain encoders; leave --conv_kernel and --position_readout at 0 here "
                         "and give them to train --init_from, which starts them fresh")
    # The first process checks (and with --overwrite clears) the folder; under torchrun the others train beside it.
    out = (prepare_resumable_dir(out_dir, overwrite, METRICS_FILE, CHECKPOINT_DIR, "pre-training run")
           if is_main_process() else Path(out_dir))
    import torch

    from genomenlp.components.dataset.build import file_sha256

    tokenizer = load_sequence_tokenizer(tokenizer_path, stride=kmer_stride)
    if tokenizer.kind is TokenizerKind.KMER and not 1 <= kmer_stride <= tokenizer.k:
        raise InputError("--kmer_stride", f"{kmer_stride} must be between 1 and k={tokenizer.k}")
    index = exclusion_index(list(exclude)) if exclude else build_exclusion_index([])
    sample = None
    if tokenizer.kind is TokenizerKind.UNIGRAM and config.window is None:
        sample = _first_bases(genome_paths, SAMPLE_BASES)
    resolved = resolve(config, model_config, tokenizer, sample)
    corpus = WindowCorpus(list(map(str, genome_paths)), resolved.window, resolved.stride, resolved.both_strands,
                          resolved.max_n_fraction, resolved.shuffle_buffer, resolved.seed, index)
    stats = corpus.scan()
    for line in describe_corpus(stats, resolved, index) if announce else ():
        announce(line)
    if not stats.windows:
        raise InputError(", ".join(map(str, genome_paths)), f"no window of {resolved.window} bases has at most "
                         f"{resolved.max_n_fraction:.0%} N; nothing to train on")
    settings = {key: value for key, value in resolved.model_dump(mode="json").items() if key not in RESUMABLE_CHANGES}
    corpus_files = [{"path": str(path), "sha256": file_sha256(str(path))} for path in genome_paths]
    fingerprint = _fingerprint(model_config.model_dump(mode="json"), settings, tokenizer.sha256(),
                               [item["sha256"] for item in corpus_files], index.digest())
    torch.manual_seed(resolved.seed)
    model = build_masked_lm(model_config, tokenizer)
    from genomenlp.components.pretraining.trainer import train_masked_lm

    result = train_masked_lm(model, corpus, tokenizer, resolved, out / CHECKPOINT_DIR, fingerprint, on_log,
                             show_progress)

    exclusion = {"datasets": list(index.sources), "held_out_sequences": index.held_out,
                 "held_out_found": stats.held_out_found, "occurrences": stats.occurrences,
                 "bases_removed": stats.bases_removed, "held_out_sha256": index.digest()}
    corpus_summary = {"files": corpus_files, "records": stats.records, "bases": stats.bases,
                      "windows_per_pass": stats.windows, "windows_skipped": stats.windows_skipped}
    metadata = {"tokenizer": {**tokenizer.describe(), "sha256": tokenizer.sha256()},
                "model": model_config.model_dump(mode="json"), "pretraining": resolved.model_dump(mode="json"),
                "corpus": corpus_summary, "exclusion": exclusion}
    last = result.history[-1]
    summary = {
        "mlm_loss": last["mlm_loss"],
        "mlm_accuracy": last["mlm_accuracy"],
        "steps": result.steps,
        "resumed_from_step": result.resumed_from,
        "tokens_seen": result.tokens_seen,
        "train_seconds": round(result.train_seconds, 2),
        "tokens_per_second": result.tokens_seen / max(result.train_seconds, 1e-9),
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": choose_device(resolved.device).type,
        "window": resolved.window,
        "stride": resolved.stride,
        "mask_span": resolved.mask_span,
        "bases_removed": stats.bases_removed,
        "corpus": corpus_summary,
        "exclusion": exclusion,
        "encoder": str(out / ENCODER_DIR),
    }
    if not is_main_process():
        # Under torchrun every process trains; the first writes the run's files.
        return summary
    staging = out / f".{ENCODER_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_encoder_folder(model.cpu(), tokenizer, staging, metadata)
    shutil.rmtree(out / ENCODER_DIR, ignore_errors=True)
    staging.rename(out / ENCODER_DIR)
    _write_csv(out / HISTORY_FILE, result.history)
    shutil.rmtree(out / CHECKPOINT_DIR)
    write_json_atomically(out / METRICS_FILE, summary, indent=2)
    return summary
