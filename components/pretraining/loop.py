"""The masked-LM step loop: optimiser, checkpoints every ``checkpoint_every`` steps, resume.

Window order and masking are seeded from (seed, step), and a resumed run replays the window stream
up to its checkpoint, so a run resumed at step n continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.errors import InputError
from components.pretraining.config import PretrainConfig
from components.pretraining.masking import IGNORE_INDEX, encode_windows, mask_tokens
from components.tokenisers.common import MASK, PAD, SPECIAL_TOKENS, UNK, SequenceTokenizer
from components.training.optim import adamw, autocast_dtype, choose_device, to_device
from components.training.state import DIVERGENCE_FACTOR, TrainingDiverged

STATE_FILE = "state.json"
LAST_WEIGHTS = "last.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
# RoBERTa's MLM settings: beta2 0.98 and a larger epsilon keep the first large-gradient steps stable.
ADAM_BETAS = (0.9, 0.98)
ADAM_EPSILON = 1e-6


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
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(total * config.warmup_ratio), total)
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
        positions_t = to_device(np.flatnonzero(chosen), device)
        targets_t = to_device(labels.reshape(-1)[chosen], device)
        inputs_t, attention_t = to_device(inputs, device), to_device(attention, device)
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
