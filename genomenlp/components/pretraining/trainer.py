"""Masked-LM pre-training on ``transformers.Trainer``: the project's masking as its data collator.

Trainer does the optimisation (AdamW with RoBERTa's betas, HF's linear warm-up schedule, mixed
precision, DDP), the checkpoints every ``checkpoint_every`` steps and their resume; a resumed run
replays the window stream and the collator's masking up to its checkpoint and restores the RNG
states, so it continues exactly as the uninterrupted run would. A callback adds what is this
project's: the ``mlm_loss``/``mlm_accuracy``/``tokens_per_second`` rows every ``logging_steps``
steps, divergence detection, and the fingerprint that refuses another run's checkpoints.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from genomenlp.components.errors import InputError
from genomenlp.components.pretraining.config import PretrainConfig
from genomenlp.components.pretraining.masking import IGNORE_INDEX, encode_windows, mask_tokens
from genomenlp.components.tokenisers.common import MASK, PAD, SPECIAL_TOKENS, UNK, SequenceTokenizer
from genomenlp.components.training.arguments import QuietProgress
from genomenlp.components.training.checkpoint import unreadable_checkpoint_is_input_error
from genomenlp.components.training.config import scaling_arguments
from genomenlp.components.training.optim import choose_device
from genomenlp.components.training.state import DIVERGENCE_FACTOR, STATE_FILE, TrainingDiverged, write_json_atomically
from genomenlp.components.training.trainer import warn_if_not_sharded

# RoBERTa's MLM settings: beta2 0.98 and a larger epsilon keep the first large-gradient steps stable.
ADAM_BETAS = (0.9, 0.98)
ADAM_EPSILON = 1e-6


@dataclass
class PretrainResult:
    """What pre-training produced.

    Attributes:
        history: One row per logging interval (step, mlm_loss, mlm_accuracy, learning_rate, tokens_per_second).
        steps: Steps done.
        resumed_from: Step of the checkpoint the run resumed from (0: a fresh run).
        tokens_seen: Non-padding tokens trained on, over all sessions.
        train_seconds: Wall time of the steps (their batches' encoding and masking included), over all sessions.
    """

    history: list[dict] = field(default_factory=list)
    steps: int = 0
    resumed_from: int = 0
    tokens_seen: int = 0
    train_seconds: float = 0.0


class WindowStream(torch.utils.data.IterableDataset):
    """The corpus's endless window stream, restarted from its first window on every iteration (a resume replays it)."""

    def __init__(self, corpus: Iterable[str]):
        """Wrap ``corpus`` (iterated anew by each ``iter``)."""
        self.corpus = corpus

    def __iter__(self):
        """The windows, in the corpus's seeded order."""
        return iter(self.corpus)


class MaskingCollator:
    """Encodes a batch of windows and masks it with the project's span masking, seeded by (seed, batch number).

    Masked positions travel as per-row index lists (padded with ``IGNORE_INDEX`` targets), so the
    MLM head runs on them alone and every tensor keeps the batch as its first dimension (DDP can
    split it).
    """

    def __init__(self, tokenizer: SequenceTokenizer, max_length: int, config: PretrainConfig):
        """Ids of the special tokens and the masking settings; batch numbering starts at 1."""
        vocab = tokenizer.tokenizer.get_vocab()
        # Not `tokenizer`: Trainer would save a collator's `tokenizer` into every checkpoint as an HF one.
        self.encoder, self.max_length, self.config = tokenizer, max_length, config
        self.special = [vocab[token] for token in SPECIAL_TOKENS]
        self.pad_id, self.mask_id, self.unk_id = vocab[PAD], vocab[MASK], vocab[UNK]
        self.random_ids = (max(self.special) + 1, len(vocab))
        self.batches = 0

    def __call__(self, windows: list[str]) -> dict:
        """``input_ids`` (masked), ``attention_mask``, ``positions`` and ``targets`` of one batch."""
        self.batches += 1
        ids, attention = encode_windows(self.encoder, list(windows), self.max_length, self.pad_id)
        maskable = attention.astype(bool) & ~np.isin(ids, self.special) & (ids != self.unk_id)
        inputs, labels = mask_tokens(ids, maskable, self.config.mask_probability, self.config.mask_span,
                                     self.mask_id, self.random_ids,
                                     np.random.default_rng([self.config.seed, self.batches]))
        chosen = [np.flatnonzero(row != IGNORE_INDEX) for row in labels]
        width = max(1, max(len(row) for row in chosen))
        positions = np.zeros((len(chosen), width), dtype=np.int64)
        targets = np.full((len(chosen), width), IGNORE_INDEX, dtype=np.int64)
        for line, row in enumerate(chosen):
            positions[line, : len(row)] = row
            targets[line, : len(row)] = labels[line, row]
        return {"input_ids": torch.from_numpy(inputs), "attention_mask": torch.from_numpy(attention),
                "positions": torch.from_numpy(positions), "targets": torch.from_numpy(targets)}


class _ChosenPositions:
    """A forward pre-hook on the MLM head: it sees only the masked positions' hidden states.

    Over a large vocabulary the full logits would dwarf the model; the head's own modules (and so the
    tied decoder and DDP's gradient hooks) are untouched.
    """

    def __init__(self):
        self.positions: torch.Tensor | None = None

    def __call__(self, module, args):
        if self.positions is None:
            return None
        hidden = args[0]
        index = self.positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        return (torch.gather(hidden, 1, index).flatten(0, 1), *args[1:])


def _head(model):
    """The first module of the MLM head, whose input are the encoder's hidden states."""
    return model.cls if model.config.model_type == "bert" else model.vocab_transform


class MaskedLMTrainer(Trainer):
    """Trainer whose loss is the cross-entropy on the masked positions; sums loss, hits and tokens on the device."""

    def __init__(self, *args, chosen: _ChosenPositions, **kwargs):
        """As :class:`transformers.Trainer`, with the head's position selector."""
        super().__init__(*args, **kwargs)
        self.chosen = chosen
        self.sums: torch.Tensor | None = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Mean cross-entropy over the batch's masked positions."""
        inputs = dict(inputs)
        targets = inputs.pop("targets").reshape(-1)
        self.chosen.positions = inputs.pop("positions")
        try:
            outputs = model(**inputs)
        finally:
            self.chosen.positions = None
        logits = outputs.logits.float()
        loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
        if model.training:
            counted = targets != IGNORE_INDEX
            # Loss and hits add up on the device, read only at logging steps: a read per step would stall a GPU.
            step = torch.stack([loss.detach().double() * counted.sum(), ((logits.detach().argmax(-1) == targets)
                                & counted).sum().double(), counted.sum().double(),
                                inputs["attention_mask"].sum().double()])
            self.sums = step if self.sums is None else self.sums + step
        return (loss, outputs) if return_outputs else loss

    def read_sums(self) -> tuple[float, int, int, int]:
        """(loss sum, hits, targets, tokens) since the last read, over all processes."""
        sums = self.sums if self.sums is not None else torch.zeros(4, dtype=torch.float64, device=self.args.device)
        sums = self.accelerator.reduce(sums, reduction="sum")
        self.sums = None
        loss_sum, correct, targets, tokens = sums.tolist()
        return loss_sum, int(correct), int(targets), int(tokens)


class PretrainCallback(TrainerCallback):
    """History rows every ``logging_steps`` steps, divergence, the resume record, and the ``on_log`` hook."""

    def __init__(self, trainer: MaskedLMTrainer, result: PretrainResult, state: dict, config: PretrainConfig,
                 checkpoint_dir: Path, fingerprint: str, chance: float, on_log: Callable[[int, dict], None] | None):
        """Hold the run's parts; ``state`` is the resume record (its open logging interval included)."""
        self.trainer, self.result, self.config, self.checkpoint_dir = trainer, result, config, checkpoint_dir
        # Not `on_log`: that name is TrainerCallback's own event.
        self.fingerprint, self.chance, self.hook = fingerprint, chance, on_log
        self.interval = state["interval"]
        self.pending: list[dict] = []
        self.last = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        """Time the first step from here (a resume's replay is not training time)."""
        self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """Account the step; at logging steps read the sums, check divergence, add a row."""
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        step, total = state.global_step, self.config.max_steps
        self.interval["seconds"] += seconds
        self.result.train_seconds += seconds
        self.result.steps = step
        logging = step % self.config.logging_steps == 0 or step == total
        checkpointing = step % self.config.checkpoint_every == 0 or step == total
        if logging or checkpointing:
            self._settle(step)
        if logging:
            interval = self.interval
            row = {"step": step, "mlm_loss": interval["loss_sum"] / max(interval["targets"], 1),
                   "mlm_accuracy": interval["correct"] / max(interval["targets"], 1),
                   "learning_rate": self.trainer.lr_scheduler.get_last_lr()[0],
                   "tokens_per_second": interval["tokens"] / max(interval["seconds"], 1e-9)}
            if row["mlm_loss"] > DIVERGENCE_FACTOR * self.chance:
                raise TrainingDiverged("learning_rate", f"mean MLM loss {row['mlm_loss']:.2f} up to step {step} is "
                                       f"over {DIVERGENCE_FACTOR:g}× chance ({self.chance:.2f}): "
                                       f"{self.config.learning_rate:g} is likely too high")
            self.result.history.append(row)
            self.interval = _new_interval()
            self.pending.append(row)
        if not checkpointing:
            self._flush()
        return control

    def _settle(self, step: int) -> None:
        loss_sum, correct, targets, tokens = self.trainer.read_sums()
        self.interval["loss_sum"] += loss_sum
        self.interval["correct"] += correct
        self.interval["targets"] += targets
        self.interval["tokens"] += tokens
        self.result.tokens_seen += tokens
        if not math.isfinite(self.interval["loss_sum"]):
            raise TrainingDiverged("learning_rate", f"MLM loss became NaN or infinite before step {step}: "
                                   f"{self.config.learning_rate:g} is likely too high")

    def on_save(self, args, state, control, **kwargs):
        """Record the checkpoint just written (the record goes last: it names a step only once that step is saved)."""
        if state.is_world_process_zero:
            write_json_atomically(self.checkpoint_dir / STATE_FILE, {
                "step": state.global_step, "checkpoint": f"checkpoint-{state.global_step}",
                "fingerprint": self.fingerprint, "history": self.result.history, "interval": self.interval,
                "tokens_seen": self.result.tokens_seen, "train_seconds": self.result.train_seconds})
        self._flush()
        return control

    def _flush(self) -> None:
        rows, self.pending = self.pending, []
        if self.hook is not None and self.trainer.is_world_process_zero():
            for row in rows:
                self.hook(row["step"], row)


def _new_interval() -> dict:
    return {"loss_sum": 0.0, "correct": 0, "targets": 0, "tokens": 0, "seconds": 0.0}


def _resume_state(checkpoint_dir: Path, fingerprint: str) -> dict | None:
    path = checkpoint_dir / STATE_FILE
    if not path.exists():
        return None
    with unreadable_checkpoint_is_input_error(checkpoint_dir):
        state = json.loads(path.read_text())
        if state["fingerprint"] != fingerprint:
            raise InputError(str(checkpoint_dir.parent), "holds pre-training checkpoints of a different run (other "
                             "corpus, exclusion, tokeniser or settings); use a new output folder or --overwrite")
        folder = checkpoint_dir / state["checkpoint"]
        json.loads((folder / "trainer_state.json").read_text())
        # weights_only: the optimiser file is plain tensors and numbers; a pickled object is refused, never run.
        torch.load(folder / "optimizer.pt", weights_only=True, map_location="cpu")
        return state


def pretraining_arguments(config: PretrainConfig, checkpoint_dir: Path, show_progress: bool) -> TrainingArguments:
    """HF ``TrainingArguments`` of a pre-training run: :class:`PretrainConfig` mapped, FSDP and compile included."""
    cuda = choose_device(config.device).type == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return TrainingArguments(
        output_dir=str(checkpoint_dir), max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, warmup_steps=config.warmup_ratio, max_grad_norm=config.max_grad_norm,
        adam_beta1=ADAM_BETAS[0], adam_beta2=ADAM_BETAS[1], adam_epsilon=ADAM_EPSILON, seed=config.seed,
        optim="adamw_torch_fused" if cuda else "adamw_torch", use_cpu=not cuda, bf16=bf16, fp16=cuda and not bf16,
        save_strategy="steps", save_steps=config.checkpoint_every, save_total_limit=1, save_only_model=False,
        logging_strategy="no", report_to="none", disable_tqdm=not show_progress, remove_unused_columns=False,
        average_tokens_across_devices=False, dataloader_num_workers=0, ddp_find_unused_parameters=False,
        # Each process reads the stream and keeps its share: batches of masked positions differ in width,
        # which a dispatching first process could not concatenate.
        accelerator_config={"dispatch_batches": False}, **scaling_arguments(config))


def train_masked_lm(
    model,
    windows: Iterable[str],
    tokenizer: SequenceTokenizer,
    config: PretrainConfig,
    checkpoint_dir: Path,
    fingerprint: str,
    on_log: Callable[[int, dict], None] | None = None,
    show_progress: bool = True,
) -> PretrainResult:
    """Run MLM steps until ``config.max_steps``, checkpointing every ``checkpoint_every`` steps.

    Args:
        model: A ``*ForMaskedLM`` (fresh; a previous state in ``checkpoint_dir`` is loaded into it).
        windows: The window corpus (iterated from its start; a resume replays it to the checkpoint).
        tokenizer: Encodes the windows.
        config: Settings with window and mask span resolved (:func:`genomenlp.components.pretraining.config.resolve`).
        checkpoint_dir: Trainer's checkpoints and the run's resume record.
        fingerprint: Identifies the run; a checkpoint of another run is refused.
        on_log: Called with (step, row) every ``logging_steps`` steps, after any checkpoint; may raise to stop.
        show_progress: Show a progress bar.

    Raises:
        TrainingDiverged: The loss became NaN or infinite, or far above chance.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    state = _resume_state(checkpoint_dir, fingerprint)
    resume = str(checkpoint_dir / state["checkpoint"]) if state else None
    state = state or {"step": 0, "history": [], "interval": _new_interval(), "tokens_seen": 0, "train_seconds": 0.0}
    result = PretrainResult(state["history"], state["step"], state["step"], state["tokens_seen"],
                            state["train_seconds"])
    chosen = _ChosenPositions()
    hook = _head(model).register_forward_pre_hook(chosen)
    try:
        trainer = MaskedLMTrainer(model=model, args=pretraining_arguments(config, checkpoint_dir, show_progress),
                                  train_dataset=WindowStream(windows),
                                  data_collator=MaskingCollator(tokenizer, model.config.max_position_embeddings,
                                                                config),
                                  chosen=chosen)
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        if show_progress:
            trainer.add_callback(QuietProgress)
        chance = math.log(len(tokenizer.tokenizer.get_vocab()))
        warn_if_not_sharded(trainer)
        trainer.add_callback(PretrainCallback(trainer, result, state, config, checkpoint_dir, fingerprint, chance,
                                              on_log))
        trainer.train(resume_from_checkpoint=resume)
    finally:
        hook.remove()
    return result

