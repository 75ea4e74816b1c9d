"""Settings of masked-language-model pre-training, and how the window length follows from the model."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from genomenlp.components.errors import InputError
from genomenlp.components.tokenisers.common import SequenceTokenizer, TokenizerKind
from genomenlp.components.training.config import Device, ModelConfig, ScalingConfig

# A Unigram window is sized from the mean bases per token of a sample; this margin keeps most
# windows within max_positions (the few longer ones are truncated, losing only their tail).
UNIGRAM_WINDOW_MARGIN = 0.95


class PretrainConfig(ScalingConfig):
    """Corpus windowing, masking and optimisation of masked-language-model pre-training.

    Windows are measured in **bases** (not tokens): genome coordinates, strides, the N filter and
    the held-out exclusion are all base-level, and a base window maps onto tokens exactly for
    k-mer tokenisers. The encoder's shape is a separate :class:`ModelConfig`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int | None = Field(
        None, ge=8,
        description="Bases per training window (default: as many as fill the model's max_positions: "
                    "exactly for k-mers, from the mean bases per token of a corpus sample for Unigram).")
    stride: int | None = Field(None, ge=1, description="Bases between window starts (default: the window, no overlap).")
    both_strands: bool = Field(True, description="Also train on the reverse complement of every window.")
    max_n_fraction: float = Field(
        0.5, ge=0, le=1, description="Skip windows with a larger share of N (masked or unknown bases).")
    shuffle_buffer: int = Field(
        16384, ge=1, description="Windows held in the streaming shuffle buffer (16384 of 512 bases: about 10 MB).")
    mask_probability: float = Field(
        0.15, gt=0, lt=1,
        description="Share of tokens to predict (of them 0.8 become <mask>, 0.1 random tokens, 0.1 unchanged).")
    mask_span: int | None = Field(
        None, ge=1,
        description="Contiguous tokens masked together (default: k // stride for k-mers, so that at least one "
                    "base is hidden from the overlapping neighbours; 1 otherwise).")
    max_steps: int = Field(2000, ge=1, description="Optimiser steps.")
    per_device_train_batch_size: int = Field(32, ge=1, description="Windows per step.")
    learning_rate: float = Field(5e-4, gt=0, le=1, description="Peak learning rate (AdamW).")
    warmup_ratio: float = Field(
        0.06, ge=0, lt=1, description="Share of steps spent warming up (then linear decay to 0).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    seed: int = Field(42, description="Seed of initialisation, window order and masking.")
    device: Device = Field(Device.AUTO, description="auto, cpu or cuda.")
    logging_steps: int = Field(50, ge=1, description="Steps between mlm_loss/mlm_accuracy lines.")
    checkpoint_every: int = Field(500, ge=1, description="Steps between checkpoints (resume points).")

    @model_validator(mode="after")
    def _stride_within_window(self) -> PretrainConfig:
        if self.window is not None and self.stride is not None and self.stride > self.window:
            raise ValueError(f"stride ({self.stride}) must not exceed window ({self.window}): "
                             "bases between windows would never be seen")
        return self


# Settings that change neither the data nor the optimisation: a resumed run may change them.
RESUMABLE_CHANGES = frozenset({"device", "logging_steps", "checkpoint_every"})


def kmer_tokens(bases: int, k: int, stride: int) -> int:
    """Tokens (``<s>``/``</s>`` included) of a k-mer tokeniser on ``bases`` bases."""
    return (max(bases, k) - k) // stride + 1 + 2


def default_window(tokenizer: SequenceTokenizer, max_positions: int, sample: str | None = None) -> int:
    """Bases per window that fill ``max_positions`` tokens.

    Args:
        tokenizer: The tokeniser the encoder reads.
        max_positions: The model's longest input, ``<s>``/``</s>`` included.
        sample: Corpus sequence to measure Unigram bases per token on (ignored for k-mers).
    """
    content = max_positions - 2
    if tokenizer.kind is TokenizerKind.KMER:
        return (content - 1) * tokenizer.stride + tokenizer.k
    if not sample:
        return content  # a Unigram token holds at least one base, so this always fits
    pieces = [sample[start:start + 1024] for start in range(0, len(sample), 1024)]
    tokens = sum(len(encoding.ids) - 2 for encoding in tokenizer.encode_batch(pieces))
    bases_per_token = len(sample) / max(1, tokens)
    return max(content, int(content * bases_per_token * UNIGRAM_WINDOW_MARGIN))


def default_mask_span(tokenizer: SequenceTokenizer) -> int:
    """Tokens masked together so a masked k-mer cannot be read off its overlapping neighbours.

    Masking m consecutive k-mers that start every s bases hides (m + 1)·s − k bases from the
    unmasked tokens on either side; m = k // s is the smallest span that hides at least one.
    """
    if tokenizer.kind is TokenizerKind.KMER:
        return max(1, tokenizer.k // tokenizer.stride)
    return 1


def resolve(
    config: PretrainConfig, model: ModelConfig, tokenizer: SequenceTokenizer, sample: str | None = None
) -> PretrainConfig:
    """The config with window, stride and mask span filled in and checked against the model.

    Raises:
        InputError: A k-mer window that needs more tokens than ``max_positions``.
    """
    window = config.window or default_window(tokenizer, model.max_positions, sample)
    stride = config.stride or window
    if stride > window:
        raise InputError("--stride", f"{stride} exceeds the window of {window} bases: "
                         "bases between windows would never be seen")
    if tokenizer.kind is TokenizerKind.KMER:
        needed = kmer_tokens(window, tokenizer.k, tokenizer.stride)
        if needed > model.max_positions:
            fitting = default_window(tokenizer, model.max_positions)
            raise InputError("--window", f"{window} bases make {needed} tokens, over max_positions "
                             f"{model.max_positions}; use at most {fitting} bases or raise --max_positions")
    span = config.mask_span or default_mask_span(tokenizer)
    if span > model.max_positions - 2:
        raise InputError("--mask_span",
                         f"{span} tokens per span exceed the {model.max_positions - 2} tokens of a window")
    return config.model_copy(update={"window": window, "stride": stride, "mask_span": span})
