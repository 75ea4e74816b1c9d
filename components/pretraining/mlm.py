"""Masked-language-model pre-training of the genomicBERT encoder: masking, step loop with checkpoints, encoder folder.

Window order and masking are seeded from (seed, step), and a resumed run replays the window stream
up to its checkpoint, so a run resumed at step n continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.errors import InputError
from components.model_io import MODEL_METADATA
from components.pretraining.config import RESUMABLE_CHANGES, PretrainConfig, resolve
from components.pretraining.corpus import (
    CorpusStats,
    ExclusionIndex,
    WindowCorpus,
    build_exclusion_index,
    exclusion_index,
)
from components.storage import exists, is_remote
from components.tokenisers.common import (
    BOS,
    EOS,
    MASK,
    PAD,
    SPECIAL_TOKENS,
    UNK,
    SequenceTokenizer,
    TokenizerKind,
    as_pretrained_tokenizer,
    load_sequence_tokenizer,
)
from components.training.config import ModelConfig
from components.training.loop import DIVERGENCE_FACTOR, TrainingDiverged
from components.training.optim import adamw, autocast_dtype, choose_device, linear_warmup_schedule
from components.training.model import build_classifier

ENCODER_DIR = "encoder"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.json"
LAST_WEIGHTS = "last.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
ENCODER_KIND = "encoder"
IGNORE_INDEX = -100
# RoBERTa's MLM settings: beta2 0.98 and a larger epsilon keep the first large-gradient steps stable.
ADAM_BETAS = (0.9, 0.98)
ADAM_EPSILON = 1e-6
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


def _mlm_logits(model, hidden):
    """The MLM head on the chosen positions only: over a large vocabulary the full logits would dwarf the model."""
    if model.config.model_type == "bert":
        return model.cls(hidden)
    return model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(hidden))))


@dataclass
class PretrainResult:
    """What the step loop produced.

    Attributes:
        history: One row per logging interval (step, mlm_loss, mlm_accuracy, learning_rate, tokens_per_second).
        steps: Steps done.
        resumed_from: Step of the checkpoint the run resumed from (0: a fresh run).
        tokens_seen: Non-padding tokens trained on, over all sessions.
        train_seconds: Wall time of the steps, over all sessions.
    """

    history: list[dict] = field(default_factory=list)
    steps: int = 0
    resumed_from: int = 0
    tokens_seen: int = 0
    train_seconds: float = 0.0


def _new_interval() -> dict:
    return {"loss_sum": 0.0, "correct": 0, "targets": 0, "tokens": 0, "seconds": 0.0}


def _save_state(directory: Path, model, optimizer, scheduler, state: dict) -> None:
    import torch
    from safetensors.torch import save_model

    temporary = directory / f".{LAST_WEIGHTS}.tmp"
    save_model(model, str(temporary))
    os.replace(temporary, directory / LAST_WEIGHTS)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               directory / f".{OPTIMIZER_FILE}.tmp")
    os.replace(directory / f".{OPTIMIZER_FILE}.tmp", directory / OPTIMIZER_FILE)
    # The state file goes last: it names a step only once that step's weights are in place.
    (directory / f".{STATE_FILE}.tmp").write_text(json.dumps(state))
    os.replace(directory / f".{STATE_FILE}.tmp", directory / STATE_FILE)


def _load_state(directory: Path, model, optimizer, scheduler, fingerprint: str, device) -> dict | None:
    import torch
    from safetensors.torch import load_model

    path = directory / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if state["fingerprint"] != fingerprint:
        raise InputError(str(directory.parent), "holds pre-training checkpoints of a different run (other corpus, "
                         "exclusion, tokeniser or settings); use a new output folder or --overwrite")
    load_model(model, str(directory / LAST_WEIGHTS), device=str(device))
    # weights_only: the optimizer file is plain tensors and numbers, never arbitrary objects.
    saved = torch.load(directory / OPTIMIZER_FILE, weights_only=True, map_location=device)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    return state


def train_masked_lm(
    model,
    windows: Iterator[str],
    tokenizer: SequenceTokenizer,
    config: PretrainConfig,
    checkpoint_dir: Path,
    fingerprint: str,
    on_log: Callable[[int, dict], None] | None = None,
    show_progress: bool = True,
) -> PretrainResult:
    """Run MLM steps until ``config.max_steps``, checkpointing every ``checkpoint_every`` steps.

    Args:
        model: A ``*ForMaskedLM`` (fresh, or the state in ``checkpoint_dir`` is loaded into it).
        windows: The endless window stream; ``batch size`` windows make one step.
        tokenizer: Encodes the windows.
        config: Settings with window and mask span resolved (:func:`components.pretraining.config.resolve`).
        checkpoint_dir: Where the last state lives; a previous state there is resumed.
        fingerprint: Identifies the run; a checkpoint of another run is refused.
        on_log: Called with (step, row) every ``logging_steps`` steps, after any checkpoint; may raise to stop.
        show_progress: Show a progress bar.

    Raises:
        TrainingDiverged: The loss became NaN or infinite, or far above chance.
    """
    import torch

    from components.progress import progress

    device = choose_device(config.device)
    model.to(device)
    optimizer = adamw(model, config.learning_rate, config.weight_decay, ADAM_BETAS, ADAM_EPSILON, device)
    total = config.max_steps
    scheduler = linear_warmup_schedule(optimizer, total, config.warmup_ratio)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = _load_state(checkpoint_dir, model, optimizer, scheduler, fingerprint, device)
    state = state or {"step": 0, "fingerprint": fingerprint, "history": [], "interval": _new_interval(),
                      "tokens_seen": 0, "train_seconds": 0.0}
    start = state["step"]
    batch = config.per_device_train_batch_size
    # Replay the stream up to the checkpoint (cheap: no tokenising), so the next batch is the one
    # the uninterrupted run would have drawn.
    next(itertools.islice(windows, start * batch, start * batch), None)

    vocab = tokenizer.tokenizer.get_vocab()
    special = [vocab[token] for token in SPECIAL_TOKENS]
    pad_id, mask_id, unk_id = vocab[PAD], vocab[MASK], vocab[UNK]
    random_ids = (max(special) + 1, len(vocab))
    chance = math.log(len(vocab))
    dtype = autocast_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
    interval = state["interval"]
    result = PretrainResult(state["history"], start, start, state["tokens_seen"], state["train_seconds"])
    # Loss and accuracy add up on the device and are read only at logging and checkpoint steps: a
    # read per step would stall a GPU while the CPU encodes the next batch.
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)

    def settle(step: int) -> None:
        """Read the device sums into ``interval`` (the wait counts as training time); refuse a diverged run."""
        started = time.perf_counter()
        interval["loss_sum"] += float(loss_sum)
        interval["correct"] += int(correct)
        loss_sum.zero_()
        correct.zero_()
        waited = time.perf_counter() - started
        interval["seconds"] += waited
        result.train_seconds += waited
        if not math.isfinite(interval["loss_sum"]):
            raise TrainingDiverged("learning_rate", f"MLM loss became NaN or infinite before step {step}: "
                                   f"{config.learning_rate:g} is likely too high")

    def to_device(array: np.ndarray):
        tensor = torch.from_numpy(array)
        return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor

    model.train()
    for step in progress(range(start + 1, total + 1), "pre-training", show_progress, total - start):
        started = time.perf_counter()
        ids, attention = encode_windows(tokenizer, list(itertools.islice(windows, batch)),
                                        model.config.max_position_embeddings, pad_id)
        maskable = attention.astype(bool) & ~np.isin(ids, special) & (ids != unk_id)
        inputs, labels = mask_tokens(ids, maskable, config.mask_probability, config.mask_span, mask_id, random_ids,
                                     np.random.default_rng([config.seed, step]))
        chosen = labels.reshape(-1) != IGNORE_INDEX
        # Positions picked on the host: boolean indexing on the device would wait for the GPU.
        positions_t = to_device(np.flatnonzero(chosen))
        targets_t = to_device(labels.reshape(-1)[chosen])
        inputs_t, attention_t = to_device(inputs), to_device(attention)
        torch.manual_seed(config.seed * 1_000_003 + step)  # dropout, per step so a resumed run matches
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            hidden = model.base_model(input_ids=inputs_t, attention_mask=attention_t).last_hidden_state
            logits = _mlm_logits(model, hidden.flatten(0, 1).index_select(0, positions_t))
        loss = torch.nn.functional.cross_entropy(logits.float(), targets_t)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        count = len(targets_t)
        loss_sum.add_(loss.detach().double() * count)
        correct.add_((logits.detach().argmax(-1) == targets_t).sum())
        interval["targets"] += count
        interval["tokens"] += int(attention.sum())
        seconds = time.perf_counter() - started
        interval["seconds"] += seconds
        result.tokens_seen += int(attention.sum())
        result.train_seconds += seconds
        result.steps = step

        row = None
        logging = step % config.logging_steps == 0 or step == total
        checkpointing = step % config.checkpoint_every == 0 or step == total
        if logging or checkpointing:
            settle(step)
        if logging:
            row = {"step": step, "mlm_loss": interval["loss_sum"] / interval["targets"],
                   "mlm_accuracy": interval["correct"] / interval["targets"],
                   "learning_rate": scheduler.get_last_lr()[0],
                   "tokens_per_second": interval["tokens"] / max(interval["seconds"], 1e-9)}
            if row["mlm_loss"] > DIVERGENCE_FACTOR * chance:
                raise TrainingDiverged("learning_rate", f"mean MLM loss {row['mlm_loss']:.2f} up to step {step} is "
                                       f"over {DIVERGENCE_FACTOR:g}× chance ({chance:.2f}): "
                                       f"{config.learning_rate:g} is likely too high")
            result.history.append(row)
            interval = _new_interval()
        if checkpointing:
            _save_state(checkpoint_dir, model, optimizer, scheduler, {
                "step": step, "fingerprint": fingerprint, "history": result.history, "interval": interval,
                "tokens_seen": result.tokens_seen, "train_seconds": result.train_seconds})
        if row is not None and on_log is not None:
            on_log(step, row)
    return result


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
    from components.fasta import Alphabet, read_fasta

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
    out = Path(out_dir)
    if exists(out / METRICS_FILE) and not overwrite:
        raise InputError(out_dir, "holds a finished pre-training run; pass --overwrite to replace it")
    if overwrite and out.exists():
        shutil.rmtree(out)
    import torch

    from components.dataset.build import file_sha256

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
    result = train_masked_lm(model, iter(corpus), tokenizer, resolved, out / CHECKPOINT_DIR, fingerprint, on_log,
                             show_progress)

    exclusion = {"datasets": list(index.sources), "held_out_sequences": index.held_out,
                 "held_out_found": stats.held_out_found, "occurrences": stats.occurrences,
                 "bases_removed": stats.bases_removed, "held_out_sha256": index.digest()}
    corpus_summary = {"files": corpus_files, "records": stats.records, "bases": stats.bases,
                      "windows_per_pass": stats.windows, "windows_skipped": stats.windows_skipped}
    metadata = {"tokenizer": {**tokenizer.describe(), "sha256": tokenizer.sha256()},
                "model": model_config.model_dump(mode="json"), "pretraining": resolved.model_dump(mode="json"),
                "corpus": corpus_summary, "exclusion": exclusion}
    staging = out / f".{ENCODER_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_encoder_folder(model.cpu(), tokenizer, staging, metadata)
    shutil.rmtree(out / ENCODER_DIR, ignore_errors=True)
    staging.rename(out / ENCODER_DIR)
    _write_csv(out / HISTORY_FILE, result.history)
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
    shutil.rmtree(out / CHECKPOINT_DIR)
    temporary = out / f".{METRICS_FILE}.tmp"
    temporary.write_text(json.dumps(summary, indent=2))
    temporary.replace(out / METRICS_FILE)
    return summary
