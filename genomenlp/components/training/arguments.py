"""HF ``TrainingArguments`` of a run: the ``-w`` file's values, then the run's settings, then this project's rules.

Every key is parsed by ``HfArgumentParser`` so it means what it means in HF; each value this project
overrides is announced once per process (a sweep's trials and a cross-validation's folds say it once).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch
from transformers import HfArgumentParser, TrainingArguments
from transformers.trainer_callback import ProgressCallback

from genomenlp.components.errors import InputError
from genomenlp.components.training.config import (
    EvalStrategy,
    TrainConfig,
    higher_is_better,
    modern_training_arguments,
    scaling_arguments,
)
from genomenlp.components.training.optim import choose_device

# Overrides already announced in this process: a sweep's trials and a cross-validation's folds say it once.
_ANNOUNCED: set[str] = set()


class QuietProgress(ProgressCallback):
    """Trainer's progress bars without its log dictionaries (this project prints its own metric lines)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Print nothing."""


def announce_override(key: str, given, value, why: str) -> None:
    """One stderr line, once per process and value, saying that this project overrides a training argument."""
    if f"{key}={given!r}" in _ANNOUNCED:
        return
    _ANNOUNCED.add(f"{key}={given!r}")
    # The output folder differs per trial or fold: the line names the rule, not each folder.
    shown = "" if key == "output_dir" else f" to {value!r}"
    print(f"training arguments: {key}={given!r} is overridden{shown}: {why}", file=sys.stderr, flush=True)


def training_arguments(config: TrainConfig, output_dir: Path, show_progress: bool,
                       file_values: dict | None = None) -> TrainingArguments:
    """HF ``TrainingArguments`` of a run, parsed by ``HfArgumentParser`` so every key means what it means in HF.

    Three layers: a ``-w`` file's keys (under today's HF names; see
    :func:`genomenlp.components.training.config.modern_training_arguments`), then :class:`TrainConfig` (which the
    file and the flags built), then what this project decides whatever the file says. Each such
    override that changes a value the file gave is printed once, on stderr.

    Args:
        config: The run's typed settings.
        output_dir: Where Trainer keeps its checkpoints.
        show_progress: Show progress bars.
        file_values: The ``-w`` file's raw mapping (``None``: HF defaults under the project's).

    Raises:
        InputError: A value HF refuses, named with HF's reason.
    """
    given = modern_training_arguments(file_values or {})[0]
    fields = {field.name for field in dataclasses.fields(TrainingArguments) if field.init}
    values = {key: value for key, value in given.items() if key in fields}
    # Project defaults where HF's do not suit; a file may still set them.
    values.setdefault("save_total_limit", 1)
    values.setdefault("logging_strategy", "epoch")
    # Every parameter of these classifiers takes part in every step: DDP need not search for unused ones.
    values.setdefault("ddp_find_unused_parameters", False)
    # A file's warm-up in whole steps stands; otherwise TrainConfig's ratio (HF takes a float < 1 as one).
    warmup = given.get("warmup_steps")
    warmup = warmup if isinstance(warmup, int | float) and warmup >= 1 else config.warmup_ratio
    evaluating = config.eval_strategy is not EvalStrategy.NO
    values.update(
        learning_rate=config.learning_rate, per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size, num_train_epochs=config.num_train_epochs,
        weight_decay=config.weight_decay, warmup_steps=warmup, max_grad_norm=config.max_grad_norm,
        adam_beta1=config.adam_beta1, adam_beta2=config.adam_beta2, adam_epsilon=config.adam_epsilon,
        seed=config.seed, metric_for_best_model=config.metric_for_best_model,
        greater_is_better=higher_is_better(config), gradient_accumulation_steps=config.gradient_accumulation_steps,
        eval_strategy=config.eval_strategy.value, load_best_model_at_end=config.load_best_model_at_end,
        dataloader_num_workers=config.dataloader_num_workers)
    if config.eval_steps is not None:
        values["eval_steps"] = config.eval_steps
    # DDP unless fsdp names options; TrainConfig holds what the file said, so it decides.
    values.pop("fsdp", None), values.pop("fsdp_config", None)
    values.update(scaling_arguments(config))
    cuda = choose_device(config.device).type == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    decided = {
        "output_dir": (str(output_dir), "checkpoints live in the run folder's checkpoints/"),
        "report_to": ("none", "figures go to metrics.json, the report and the model registry"),
        "push_to_hub": (False, "models go to the model registry (--register)"),
        # Each validation's history row is saved with its weights, so a resumed run continues from both.
        "save_strategy": (config.eval_strategy.value if evaluating else "epoch",
                          "a checkpoint is written with every validation, so a resumed run continues from it"),
        "save_only_model": (False, "a resumed run needs the optimiser and scheduler states"),
        "remove_unused_columns": (False, "batches hold only what the model takes"),
        "label_names": (["labels"], "-l/--label_names names the column; batches always call it labels"),
        "prediction_loss_only": (False, "metrics are computed from predicted probabilities"),
        "disable_tqdm": (not show_progress, "--no_progress decides"),
        "use_cpu": (not cuda, "-d/--device decides"),
        "bf16": (bf16, "bf16 on CUDA where supported, fp16 on older CUDA devices, full precision on the CPU"),
        "fp16": (cuda and not bf16, "bf16 on CUDA where supported, fp16 on older CUDA devices, full precision "
                 "on the CPU"),
        "resume_from_checkpoint": (None, "re-running the same command resumes by itself"),
        # One label per sequence, so a process's mean loss is already the loss to average; HF's cross-process
        # token count scales the classification loss by the process count (eval and test losses doubled on 2).
        "average_tokens_across_devices": (False, "one label per sequence: each process's mean loss is averaged"),
    }
    if config.eval_strategy is EvalStrategy.STEPS:
        decided["save_steps"] = (values.get("eval_steps") or values.get("logging_steps", 500),
                                 "a checkpoint is written with every validation")
    if not evaluating:
        decided["load_best_model_at_end"] = (False, "with eval_strategy no there is no validation to choose from")
    elif config.stop_at_epoch is not None:
        decided["load_best_model_at_end"] = (False, "stop_at_epoch keeps the weights of the epoch it names")
    if cuda and values.get("optim", "adamw_torch_fused") == "adamw_torch":
        decided["optim"] = ("adamw_torch_fused", "fused AdamW on CUDA")
    for key, (value, why) in decided.items():
        if key in given and given[key] != value and not (key == "report_to" and given[key] in ([], "none", None)):
            announce_override(key, given[key], value, why)
        values[key] = value
    try:
        (arguments,) = HfArgumentParser(TrainingArguments).parse_dict(values)
    except (ValueError, TypeError) as error:
        raise InputError("training arguments", str(error).strip().splitlines()[0]) from None
    return arguments
