"""Typed settings of each stage, shared by the command, the ZenML step and (later) Katib trials.

A parameter has one name everywhere: the command's flag, the YAML key and the field below.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Training and search settings live beside their code; re-exported so that pipelines, which import
# only configs, names and steps, take every typed setting from this module.
from genomenlp.components.compare.powerlaw import PowerlawConfig  # noqa: F401
from genomenlp.components.fasta import Alphabet
from genomenlp.components.inference.config import InterpretConfig, PredictConfig  # noqa: F401
from genomenlp.components.pretraining.config import PretrainConfig  # noqa: F401
from genomenlp.components.search.spec import SweepSpec  # noqa: F401
from genomenlp.components.tokenisers.unigram import DEFAULT_MAX_TRAIN_BASES, DEFAULT_SEED_SIZE
from genomenlp.components.training.config import ModelConfig, TrainConfig  # noqa: F401


class _Config(BaseModel):
    # Unknown keys are mistakes (a misspelt YAML key would otherwise be silently ignored).
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class TokeniseConfig(_Config):
    """Learning an empirical (Unigram) vocabulary from FASTA files."""

    vocab_size: int = Field(32000, ge=16, description="Target vocabulary size, special tokens included.")
    break_size: int = Field(512, ge=8, description="Cut sequences into pieces of at most this many bases for training.")
    max_piece_length: int = Field(16, ge=1, le=64, description="Longest token, in letters.")
    alphabet: Alphabet = Field(Alphabet.DNA, description="Letters a sequence may hold.")
    # Unigram training time grows faster than its input (more expectation-maximisation work per
    # base and more pruning rounds as the corpus grows), so the input it learns from is bounded.
    max_train_bases: int | None = Field(
        DEFAULT_MAX_TRAIN_BASES,
        ge=8,
        description="Learn from an evenly spread, seeded sample of the pieces holding at most this many bases "
        "(reported when it samples; None: learn from everything).",
    )
    sample_seed: int = Field(0, description="Seed of the training sample (same seed, same sample).")
    seed_size: int = Field(
        DEFAULT_SEED_SIZE,
        ge=16,
        description="Most candidate pieces (frequent substrings) the trainer starts from; on DNA, fewer give a "
        "worse vocabulary without saving time.",
    )

    @model_validator(mode="after")
    def _trainable(self) -> TokeniseConfig:
        if self.max_train_bases is not None and self.max_train_bases < self.break_size:
            raise ValueError(
                f"max_train_bases ({self.max_train_bases}) must be at least break_size ({self.break_size})"
            )
        if self.seed_size < self.vocab_size:
            raise ValueError(f"seed_size ({self.seed_size}) below vocab_size ({self.vocab_size}) caps the vocabulary")
        return self


class KmerConfig(_Config):
    """Overlapping k-mer tokenisation."""

    k: int = Field(3, ge=1, le=12, description="k-mer length.")
    stride: int = Field(1, ge=1, description="Step between k-mer starts (1 = fully overlapping).")
    alphabet: Alphabet = Field(Alphabet.DNA, description="Letters a sequence may hold.")

    @model_validator(mode="after")
    def _stride_within_k(self) -> KmerConfig:
        if self.stride > self.k:
            raise ValueError(f"stride ({self.stride}) must not exceed k ({self.k}): bases would be skipped")
        if self.alphabet is Alphabet.DNA and self.k > 8:
            raise ValueError("k above 8 makes a nucleotide vocabulary of more than 65,536 k-mers")
        return self


class ReverseComplement(StrEnum):
    """Which splits get a reverse-complement copy of every sequence."""

    NONE = "none"
    TRAIN = "train"  # augment training only; evaluation counts each molecule once
    ALL = "all"


class DatasetConfig(_Config):
    """Building a labelled, leakage-free dataset from one FASTA file per class."""

    labels: list[str] | None = Field(None, description="Class names in file order (default: file names).")
    split_train: float = Field(0.90, gt=0, lt=1, description="Share of records in train.")
    split_test: float = Field(0.05, ge=0, lt=1, description="Share of records in test.")
    split_val: float = Field(0.05, ge=0, lt=1, description="Share of records in valid.")
    seed: int = Field(42, description="Seed of the split (same seed, same split).")
    reverse_complement: ReverseComplement = Field(ReverseComplement.TRAIN, description="Add reverse-complement copies.")
    shared_substring: int | None = Field(
        None, ge=8, description="Also keep records sharing an exact substring this long (either strand) together."
    )
    chunk_size: int = Field(1024, ge=8, description="Cut longer sequences into chunks of this many bases.")
    chunk_overlap: int = Field(128, ge=0, description="Bases shared by consecutive chunks.")
    max_tokens: int | None = Field(512, ge=3, description="Truncate encodings to this many tokens (None: never).")
    alphabet: Alphabet = Field(Alphabet.DNA, description="Letters a sequence may hold.")
    allow_conflicts: bool = Field(
        False, description="Keep sequences found under two or more labels (exact duplicates or reverse complements; "
                           "counted in the manifest) instead of refusing the inputs.")

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, labels: list[str] | None) -> list[str] | None:
        if labels is not None and len(set(labels)) != len(labels):
            raise ValueError(f"labels must be distinct, got {labels}")
        return labels

    @model_validator(mode="after")
    def _consistent(self) -> DatasetConfig:
        total = self.split_train + self.split_test + self.split_val
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split_train + split_test + split_val must be 1, got {total:g}")
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        if self.reverse_complement is not ReverseComplement.NONE and self.alphabet is Alphabet.PROTEIN:
            raise ValueError("reverse complements exist only for nucleotides: use reverse_complement=none")
        return self

    @property
    def fractions(self) -> dict[str, float]:
        """Split name → share of records."""
        return {"train": self.split_train, "test": self.split_test, "valid": self.split_val}
