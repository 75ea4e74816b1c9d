"""Model and training settings, and loading the tutorial's HF TrainingArguments-style JSON."""

from __future__ import annotations

import json
import logging
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genomenlp.components.errors import InputError, describe_validation_error
from genomenlp.components.storage import read_text

log = logging.getLogger(__name__)


class Architecture(StrEnum):
    """Encoder family of the classifier."""

    BERT = "bert"
    DISTILBERT = "distilbert"


class Device(StrEnum):
    """Where to train: ``auto`` takes CUDA when present."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class EvalStrategy(StrEnum):
    """When to validate (HF ``TrainingArguments.eval_strategy``); checkpoints follow it."""

    EPOCH = "epoch"
    STEPS = "steps"
    NO = "no"


class ModelConfig(BaseModel):
    """Shape of a randomly initialised BERT-family sequence classifier, sized for short DNA."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: Architecture = Field(Architecture.BERT, description="Encoder family.")
    num_layers: int = Field(2, ge=1, le=48, description="Transformer layers.")
    hidden_size: int = Field(128, ge=8, description="Width of every layer.")
    num_heads: int = Field(4, ge=1, description="Attention heads (must divide hidden_size).")
    intermediate_size: int = Field(512, ge=8, description="Feed-forward width.")
    max_positions: int = Field(512, ge=8, description="Longest input, in tokens.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on hidden states and attention.")
    conv_kernel: int = Field(
        0, ge=0, le=63, description="Width, in tokens, of a convolutional stem that finds motifs before the encoder "
        "(odd; 0: none). BERT only; pretrain builds none (train --init_from starts it fresh on a plain encoder).")
    position_readout: int = Field(
        0, ge=0, le=64, description="Features of every position that a position-specific linear head reads beside the "
        "pooled one, so a motif's place counts (0: none). BERT only; like conv_kernel, not for pretrain.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.conv_kernel and self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (it keeps every position), got {self.conv_kernel}")
        if (self.conv_kernel or self.position_readout) and self.architecture is not Architecture.BERT:
            raise ValueError(f"conv_kernel and position_readout need architecture bert, not {self.architecture}")
        return self


class ScalingConfig(BaseModel):
    """How one run spreads over processes and compiles: the same fields in classifier training and pre-training.

    The number of processes is not here: ``torchrun``/``accelerate launch`` (or a pipeline's
    ``processes_per_pod``, or a PyTorchJob's workers) decide it; these say how those processes share the
    model. DDP (a full copy per process) is the default; ``fsdp`` shards parameters, gradients and
    optimiser state instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fsdp: bool = Field(
        False, description="Shard with FSDP instead of DDP under torchrun/accelerate launch, configured by "
        "fsdp_config (HF TrainingArguments.fsdp).")
    fsdp_config: str | dict | None = Field(
        None, description="HF TrainingArguments.fsdp_config: a JSON file, or a mapping in a YAML or -w file "
        "(e.g. version, reshard_after_forward, cpu_offload, transformer_layer_cls_to_wrap).")
    torch_compile: bool = Field(
        False, description="Compile the model with torch.compile (HF TrainingArguments.torch_compile).")

    @model_validator(mode="before")
    @classmethod
    def _legacy_fsdp_options(cls, values):
        """A transformers 4 file's ``fsdp`` (a list or string of options; the tutorial's is ``[]``), as HF 5 reads it.

        Empty means DDP; options become ``fsdp: true`` plus the ``fsdp_config`` entries HF's own
        translation gives them.
        """
        if not isinstance(values, dict) or not isinstance(values.get("fsdp"), str | list):
            return values
        options = values["fsdp"]
        values = {**values, "fsdp": bool(options)}
        if options:
            if isinstance(values.get("fsdp_config"), str):
                raise ValueError("fsdp as a list of options cannot be combined with an fsdp_config file: "
                                 "put the options in that file and set fsdp to true")
            from transformers import TrainingArguments
            from transformers.utils import logging as hf_logging

            config = dict(values.get("fsdp_config") or {})
            # HF's deprecation notice asks for exactly what this does; its errors (unknown options) still raise.
            translator = hf_logging.get_logger("transformers.training_args")
            level = translator.level
            translator.setLevel(hf_logging.ERROR)
            try:
                TrainingArguments._apply_legacy_fsdp_to_config(options, config)
            finally:
                translator.setLevel(level)
            values["fsdp_config"] = config
        return values


def scaling_arguments(config: ScalingConfig) -> dict:
    """The HF ``TrainingArguments`` values of :class:`ScalingConfig` (no ``fsdp``: DDP, HF's default)."""
    values = {"torch_compile": config.torch_compile}
    if config.fsdp:
        values["fsdp"] = True
        if config.fsdp_config is not None:
            values["fsdp_config"] = config.fsdp_config
    return values


class TrainConfig(ScalingConfig):
    """Optimisation settings; names follow HF ``TrainingArguments`` so the tutorial's JSON applies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(5e-4, gt=0, le=1, description="Peak learning rate (AdamW).")
    per_device_train_batch_size: int = Field(64, ge=1, description="Training batch size.")
    per_device_eval_batch_size: int = Field(256, ge=1, description="Evaluation batch size.")
    num_train_epochs: int = Field(8, ge=1, description="Epochs.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Share of steps spent warming up.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    adam_beta1: float = Field(0.9, gt=0, lt=1, description="AdamW beta1.")
    adam_beta2: float = Field(0.999, gt=0, lt=1, description="AdamW beta2.")
    adam_epsilon: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    seed: int = Field(42, description="Seed of initialisation and data order.")
    metric_for_best_model: str = Field("eval_f1", description="Validation metric that picks the checkpoint.")
    greater_is_better: bool | None = Field(
        None, description="Direction of that metric (default: loss lower, others higher).")
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="Batches whose gradients add up to one optimiser step (HF's meaning).")
    eval_strategy: EvalStrategy = Field(
        EvalStrategy.EPOCH, description="Validate every epoch, every eval_steps steps, or never (HF's meaning).")
    eval_steps: int | None = Field(None, ge=1, description="Steps between validations with eval_strategy steps.")
    load_best_model_at_end: bool = Field(
        True, description="Keep the weights of the best validation (else the last); HF's meaning.")
    stop_at_epoch: int | None = Field(
        None, ge=1, description="Stop after this epoch and keep its weights, not the best validation's; the learning-"
        "rate schedule still spans num_train_epochs, as in a cross-validation's folds (the training pipeline sets it "
        "to the epoch its cross-validation chose).")
    dataloader_num_workers: int = Field(0, ge=0, description="DataLoader worker processes (0: in the main process).")
    collapse_epochs: int = Field(
        2, ge=0, description="Stop a run whose first N validations all predict one class or score chance F1, and "
        "mark it collapsed (0: never).")
    device: Device = Field(Device.AUTO, description="auto, cpu or cuda.")
    positive_label: str | None = Field(
        None, description="Class whose ROC and PR curves and two-class ROC-/PR-AUC are reported (default: the "
        "first class file given, the class of interest: promoter in the tutorial).")
    init_from: str | None = Field(
        None,
        description="Pre-trained encoder (pretrain's OUT/encoder or registry:NAME@…) to start from; the head is new.",
    )


    @model_validator(mode="after")
    def _stop_within_the_run(self) -> TrainConfig:
        if self.stop_at_epoch is not None and self.stop_at_epoch > self.num_train_epochs:
            raise ValueError(f"stop_at_epoch ({self.stop_at_epoch}) is after the last epoch "
                             f"(num_train_epochs {self.num_train_epochs})")
        return self


def higher_is_better(config: TrainConfig) -> bool:
    """Whether a larger value of the selection metric is better."""
    if config.greater_is_better is not None:
        return config.greater_is_better
    return not config.metric_for_best_model.endswith("loss")


# Where the example files live in the repository, for messages that point at the right kind of file.
TUTORIAL_HYPERPARAMS = "data/tutorial/hyperparams.json"
TUTORIAL_SWEEP = "data/tutorial/sweep.json"
# Keys of HF TrainingArguments that hold credentials: never copied anywhere.
SECRET_KEYS = frozenset({"hub_token", "push_to_hub_token", "hub_private_repo_token", "wandb_api_key"})
_RENAMED = {"metric_for_best_model": lambda value: value if str(value).startswith("eval_") else f"eval_{value}"}


def read_hyperparams(path: str) -> dict:
    """A TrainingArguments-style JSON object (the tutorial's file, or a sweep's ``hyperparams.json``).

    Raises:
        InputError: Not JSON, a JSON array, or a sweep specification (the message names the right file).
    """
    try:
        values = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    if isinstance(values, list):
        raise InputError(path, f"is a JSON array ({len(values)} items); expected one JSON object of training "
                         f"arguments such as {TUTORIAL_HYPERPARAMS}")
    if not isinstance(values, dict):
        raise InputError(path, f"expected a JSON object of training arguments such as {TUTORIAL_HYPERPARAMS}")
    if "parameters" in values and ({"method", "metric"} & set(values) or isinstance(values["parameters"], dict)):
        raise InputError(path, "is a sweep specification (method/metric/parameters), not training arguments: give it "
                         f"to sweep -w; train -w and cross_validate -w take a file such as {TUTORIAL_HYPERPARAMS} "
                         "or a sweep's OUT/hyperparams.json")
    return values


def training_config_from_hyperparams(path: str, overrides: dict | None = None) -> TrainConfig:
    """Read a TrainingArguments-style JSON (the tutorial's 101-key file loads as is).

    Keys of :class:`TrainConfig` are taken; keys today's HF no longer has are ignored with one
    warning line; secrets are dropped. ``overrides`` (command-line flags) win over the file.
    """
    return training_config_from_mapping(read_hyperparams(path), path, overrides)


def model_config_from_mapping(values: dict, source: str, overrides: dict | None = None) -> ModelConfig:
    """Model shape from the model keys of a hyperparameter mapping (a sweep may search them); flags win."""
    chosen = {key: value for key, value in values.items() if key in ModelConfig.model_fields}
    chosen.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return ModelConfig(**chosen)
    except ValidationError as error:
        raise InputError(source, describe_validation_error(error)) from None


# Keys of older HF TrainingArguments files (the tutorial's was written by transformers 4.x) under today's names.
_HF_RENAMED = {"evaluation_strategy": "eval_strategy", "no_cuda": "use_cpu",
               "gradient_checkpointing": "activation_checkpointing",
               "per_gpu_train_batch_size": "per_device_train_batch_size",
               "per_gpu_eval_batch_size": "per_device_eval_batch_size"}
# transformers 4's own AdamW ("adamw_hf") is gone; torch's is what it pointed users to.
_HF_OPTIMIZERS_RENAMED = {"adamw_hf": "adamw_torch"}


def modern_training_arguments(values: dict) -> tuple[dict, list[str]]:
    """A TrainingArguments mapping under today's HF names, and the keys today's HF no longer has.

    Renamed keys take their new name (a new name given too wins), ``group_by_length`` and
    ``include_inputs_for_metrics`` become their successors, secrets are dropped, and the keys of
    :class:`TrainConfig` and :class:`ModelConfig` are kept (``warmup_ratio`` among them: HF 5 took it
    into ``warmup_steps``, here it stays a field).
    """
    import dataclasses

    from transformers import TrainingArguments

    known = ({field.name for field in dataclasses.fields(TrainingArguments)} | set(TrainConfig.model_fields)
             | set(ModelConfig.model_fields))
    kept, gone = {}, []
    for key, value in values.items():
        if key in SECRET_KEYS or key in _HF_RENAMED:
            continue
        if key == "group_by_length":
            if value:
                kept["train_sampling_strategy"] = "group_by_length"
        elif key == "include_inputs_for_metrics":
            if value:
                kept["include_for_metrics"] = ["inputs"]
        elif key in known:
            kept[key] = value
        else:
            gone.append(key)
    for old, new in _HF_RENAMED.items():
        if values.get(old) is not None and new not in values:
            kept[new] = values[old]
    if kept.get("optim") in _HF_OPTIMIZERS_RENAMED:
        kept["optim"] = _HF_OPTIMIZERS_RENAMED[kept["optim"]]
    return kept, sorted(gone)


def training_config_from_mapping(values: dict, source: str, overrides: dict | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig` from a mapping of TrainingArguments keys (see above).

    Keys today's HF TrainingArguments no longer has are ignored with one warning line; the other
    HF keys are not this model's, and the trainer applies them from the file as HF does.
    """
    values, gone = modern_training_arguments(values)
    known = set(TrainConfig.model_fields)
    chosen = {key: value for key, value in values.items() if key in known and value is not None}
    for key, convert in _RENAMED.items():
        if key in chosen:
            chosen[key] = convert(chosen[key])
    if gone:
        log.warning("%s: ignoring %d keys today's HF TrainingArguments no longer has (%s%s)", source, len(gone),
                    ", ".join(gone[:5]), ", …" if len(gone) > 5 else "")
    chosen.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return TrainConfig(**chosen)
    except ValidationError as error:
        raise InputError(source, describe_validation_error(error)) from None


def apply_hyperparameters(model: ModelConfig, training: TrainConfig, hyperparameters: dict, source: str,
                          training_overrides: dict | None = None) -> tuple[ModelConfig, TrainConfig]:
    """``model`` and ``training`` with ``hyperparameters`` (a sweep's best, or one trial's sample) laid over them.

    The one place a search's values meet the configured settings: the final classifier, the
    cross-validation folds and every sweep trial apply them alike. Rebuilt, not ``model_copy``, so
    the values are validated (a YAML ``5e-4`` is a string).

    Args:
        model: The configured model shape.
        training: The configured training settings.
        hyperparameters: Model and training keys to lay over them.
        source: Where the values came from, for error messages.
        training_overrides: Training values that win over both (``None`` values are ignored).

    Raises:
        InputError: A value either config rejects.
    """
    return (model_config_from_mapping({**model.model_dump(), **hyperparameters}, source),
            training_config_from_mapping({**training.model_dump(), **hyperparameters}, source, training_overrides))
