"""Typed settings of prediction and interpretation, shared by the commands and the ZenML steps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genomenlp.components.fasta import DEFAULT_MAX_RECORD_LENGTH, Alphabet
from genomenlp.components.training.config import Device


class _Config(BaseModel):
    # A misspelt YAML key or step parameter must fail, not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class PredictConfig(_Config):
    """Classifying sequences with a trained model."""

    batch_size: int = Field(128, ge=1, description="Model windows per forward pass.")
    window_overlap: float = Field(
        0.25, ge=0, le=0.9,
        description="Share of the model window that consecutive windows of a long sequence have in common.",
    )
    alphabet: Alphabet | None = Field(
        None, description="Letters a sequence may hold (default: the model's training alphabet, else dna).")
    device: Device = Field(Device.AUTO, description="auto (CUDA when present), cpu or cuda.")
    max_record_length: int = Field(
        DEFAULT_MAX_RECORD_LENGTH, ge=1,
        description="Refuse a record longer than this many bases, naming it (memory grows with the longest record).")


class InterpretConfig(_Config):
    """Layer Integrated Gradients attributions of a classifier's decision to its input tokens."""

    n_steps: int = Field(
        50, ge=2, le=1000, description="Integration steps of Integrated Gradients (the most, when adaptive).")
    min_steps: int | None = Field(
        6, ge=2, description="First steps of the adaptive integration: windows whose completeness error exceeds the "
                             "tolerance are integrated again with twice the steps, up to n_steps "
                             "(None: always n_steps).")
    tolerance: float = Field(1e-3, gt=0, description="Completeness error accepted, relative to the attribution total.")
    target: str | None = Field(None, description="Class to explain (default: each sequence's predicted class).")
    batch_size: int = Field(
        32, ge=1, description="Model windows attributed together (their IG steps share forward passes).")
    tokens_per_pass: int | None = Field(
        None, ge=64,
        description="Tokens (windows × IG steps × window length) in one forward pass "
                    "(default: 8192 on CPU, where larger passes gain nothing; 131072 on CUDA).",
    )
    window_overlap: float = Field(
        0.25, ge=0, le=0.9,
        description="Share of the model window that consecutive windows of a long sequence have in common.",
    )
    alphabet: Alphabet | None = Field(
        None, description="Letters a sequence may hold (default: the model's training alphabet, else dna).")
    device: Device = Field(Device.AUTO, description="auto (CUDA when present), cpu or cuda.")
    max_record_length: int = Field(
        DEFAULT_MAX_RECORD_LENGTH, ge=1,
        description="Refuse a record longer than this many bases, naming it (memory grows with the longest record).")
    # Attribution costs a few dozen forward passes per window, and the outputs hold a row per base and
    # a page per record: a chromosome would run for hours and write a page no browser opens.
    max_interpret_length: int = Field(
        100_000, ge=1,
        description="Refuse, before any work, a record longer than this many bases: cut out the region to explain.")

    @field_validator("target")
    @classmethod
    def _target_not_blank(cls, target: str | None) -> str | None:
        if target is not None and not target.strip():
            raise ValueError("target must be a class name of the model")
        return target

    def prediction(self) -> PredictConfig:
        """The prediction settings that pick each sequence's target class."""
        return PredictConfig(batch_size=self.batch_size, window_overlap=self.window_overlap,
                             alphabet=self.alphabet, device=self.device, max_record_length=self.max_record_length)
