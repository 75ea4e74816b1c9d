"""The sweep specification users already have (method, metric, parameters, early_terminate).

Parameter names are the sweep's own (``batch_size``, ``epochs``) or ours (``learning_rate``,
``num_layers``); both map to one field of :class:`TrainConfig` or :class:`ModelConfig`.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from genomenlp.components.errors import InputError, describe_validation_error
from genomenlp.components.storage import read_text
from genomenlp.components.training.config import TUTORIAL_SWEEP, ModelConfig, TrainConfig

ALIASES = {"batch_size": "per_device_train_batch_size", "epochs": "num_train_epochs"}


class Method(StrEnum):
    """Search strategy."""

    RANDOM = "random"
    GRID = "grid"
    BAYES = "bayes"


class Distribution(StrEnum):
    """How a ``min``/``max`` range is sampled (the dashboard's names)."""

    UNIFORM = "uniform"
    INT_UNIFORM = "int_uniform"
    LOG_UNIFORM_VALUES = "log_uniform_values"
    Q_UNIFORM = "q_uniform"


class Metric(BaseModel):
    """What to optimise: ``eval/f1`` on the dashboard is ``eval_f1`` here."""

    model_config = ConfigDict(extra="ignore")
    name: str = "eval/f1"
    goal: Literal["maximize", "minimize"] = "maximize"

    @property
    def key(self) -> str:
        """The metric's name in our history and metric lines."""
        return self.name.replace("/", "_")


class Parameter(BaseModel):
    """One searched parameter: a list of ``values``, a fixed ``value``, or a ``min``/``max`` range."""

    model_config = ConfigDict(extra="ignore")
    values: list[float | int | str] | None = None
    value: float | int | str | None = None
    min: int | float | None = None
    max: int | float | None = None
    distribution: Distribution | None = None
    q: float | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Parameter:
        kinds = [self.values is not None, self.value is not None, self.min is not None or self.max is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of values, value, or min and max")
        if kinds[2] and (self.min is None or self.max is None or self.min >= self.max):
            raise ValueError("a range needs min < max")
        if self.distribution is Distribution.LOG_UNIFORM_VALUES and kinds[2] and self.min <= 0:
            raise ValueError("log_uniform_values needs min > 0")
        return self

    @property
    def is_integer(self) -> bool:
        """Whether the range holds whole numbers."""
        if self.distribution is Distribution.INT_UNIFORM:
            return True
        return self.distribution is None and isinstance(self.min, int) and isinstance(self.max, int)


class EarlyTerminate(BaseModel):
    """Stop poor trials early: hyperband over epochs."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["hyperband"] = "hyperband"
    min_iter: int = Field(1, ge=1)
    max_iter: int | None = None
    eta: int = Field(3, ge=2)


class SweepSpec(BaseModel):
    """A whole sweep file."""

    model_config = ConfigDict(extra="ignore")
    method: Method = Method.RANDOM
    name: str = "sweep"
    metric: Metric = Metric()
    parameters: dict[str, Parameter]
    early_terminate: EarlyTerminate | None = None

    @model_validator(mode="after")
    def _known_parameters(self) -> SweepSpec:
        fields = set(TrainConfig.model_fields) | set(ModelConfig.model_fields)
        unknown = [name for name in self.parameters if ALIASES.get(name, name) not in fields]
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; known: {sorted(fields | set(ALIASES))}")
        if self.method is Method.GRID:
            ranges = [name for name, p in self.parameters.items() if p.min is not None]
            if ranges:
                raise ValueError(f"grid search needs values lists, not ranges, for {ranges}")
        for name, parameter in self.parameters.items():
            _check_within_limits(name, parameter)
        return self


def _check_kind(path: str, values) -> None:
    """Refuse, with a pointer to the right file, a JSON that is not a sweep specification."""
    if isinstance(values, list):
        raise InputError(path, f"is a JSON array ({len(values)} items); sweep -w takes one JSON object, a sweep "
                         f"specification such as {TUTORIAL_SWEEP}")
    if not isinstance(values, dict):
        raise InputError(path, f"expected a JSON object, a sweep specification such as {TUTORIAL_SWEEP}")
    if "parameters" not in values:
        known = set(TrainConfig.model_fields) | set(ModelConfig.model_fields) | {"output_dir", "num_train_epochs"}
        if known & set(values):
            raise InputError(path, "is a training-arguments file (for train -w), not a sweep specification: sweep -w "
                             f"takes method/metric/parameters, e.g. {TUTORIAL_SWEEP} (fixed settings under the "
                             "search go to --hyperparameters)")


def _check_within_limits(name: str, parameter: Parameter) -> None:
    """Every value a parameter can take must be valid for its field (lr ≤ 1 …), checked before any trial."""
    field = ALIASES.get(name, name)
    model = TrainConfig if field in TrainConfig.model_fields else ModelConfig
    info = model.model_fields[field]
    candidates = parameter.values if parameter.values is not None else (
        [parameter.value] if parameter.value is not None else [parameter.min, parameter.max])
    if parameter.min is not None and info.annotation is int:
        # Whole-number ranges are sampled between the whole numbers inside the bounds.
        candidates = [math.ceil(parameter.min), math.floor(parameter.max)]
    # The field's own constraints only: a model-wide rule (hidden_size divisible by num_heads) depends on
    # other sampled values and is a trial's failure, not the spec's.
    adapter = TypeAdapter(Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)
    for value in candidates:
        try:
            adapter.validate_python(value)
        except ValidationError as error:
            message = error.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"parameters.{name}: {value!r} is out of range ({message})") from None


def load_sweep(path: str) -> SweepSpec:
    """Read and check a sweep JSON; problems are one line naming the file."""
    try:
        values = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    _check_kind(path, values)
    try:
        return SweepSpec(**values)
    except ValidationError as error:
        raise InputError(path, describe_validation_error(error)) from None


def split_settings(values: dict) -> tuple[dict, dict]:
    """Sampled values (sweep names) → (TrainConfig fields, ModelConfig fields)."""
    train, model = {}, {}
    for name, value in values.items():
        field = ALIASES.get(name, name)
        (train if field in TrainConfig.model_fields else model)[field] = value
    return train, model
