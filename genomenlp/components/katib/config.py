"""Where and how Katib trials run: image, GPU placement, data paths inside the pod, budgets.

The defaults describe the dev cluster set up by ``k8s/`` (namespace ``genomenlp``, the trial
service account, the ``s3-credentials`` Secret, the in-cluster object store, the GPU node pool's
label and taint), so the committed ``k8s/katib/experiment.yaml`` and these defaults agree.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from genomenlp.components.errors import InputError, describe_validation_error
from genomenlp.components.storage import read_text
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.data import FORMATS

# Label and taint of the GPU node pool (k8s/base/gpu-node-pool.yaml documents the same values).
GPU_POOL_LABEL = {"genomenlp.io/node-pool": "gpu"}
GPU_RESOURCE = "nvidia.com/gpu"

# Settings the experiment builder sets itself; a fixed value for them would contradict the sweep.
_BUILDER_OWNED = frozenset({"device", "metric_for_best_model", "greater_is_better"})
# Kubernetes quantities such as "4", "500m", "16Gi".
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


class Toleration(BaseModel):
    """A pod toleration (Kubernetes field names, snake_case)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None = Field(None, description="Taint key; empty with operator Exists tolerates every taint.")
    operator: Literal["Exists", "Equal"] = Field("Exists", description="Exists or Equal.")
    value: str | None = Field(None, description="Taint value (operator Equal only).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        "NoSchedule", description="Taint effect to tolerate; empty tolerates all effects.")


def _gpu_taint() -> list[Toleration]:
    return [Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")]


class KatibConfig(BaseModel):
    """How a sweep runs as a Katib Experiment (everything except the search itself).

    Budgets, placement and paths live here; what is searched lives in the sweep JSON.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="Experiment name (default: the sweep's name, made DNS-safe).")
    namespace: str = Field("genomenlp", description="Namespace of the Experiment and its trials.")
    image: str = Field("genomenlp:cuda", description="Project image the trials run (Dockerfile, VARIANT=cuda).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="When the node pulls the image.")
    service_account: str = Field("genomenlp-trial", description="Service account of trial pods (no API rights).")

    max_trial_count: int = Field(8, ge=1, description="Trials in total (a grid stops at its size).")
    parallel_trial_count: int = Field(2, ge=1, description="Trials at a time (at most max_trial_count).")
    max_failed_trial_count: int = Field(3, ge=0, description="Failed trials after which the Experiment fails.")
    bayes_algorithm: Literal["tpe", "bayesianoptimization"] = Field(
        "tpe", description="Katib algorithm for method bayes: tpe (hyperopt) or bayesianoptimization (skopt).")
    random_state: int | None = Field(42, description="Seed of the suggestion algorithm.")
    additional_metrics: list[str] = Field(
        ["eval_loss", "eval_mcc", "eval_roc_auc"], description="Metrics recorded beside the objective.")

    node_selector: dict[str, str] = Field(default_factory=lambda: dict(GPU_POOL_LABEL),
                                          description="Node labels a trial pod must land on.")
    tolerations: list[Toleration] = Field(default_factory=_gpu_taint, description="Taints trial pods tolerate.")
    gpus: int = Field(1, ge=0, description="GPUs per trial (nvidia.com/gpu limit; 0 trains on CPU).")
    cpu: str = Field("4", description="CPU request per trial.")
    memory: str = Field("16Gi", description="Memory request (and limit) per trial.")

    train_path: str = Field("s3://genomenlp/data/train.parquet", description="Training split, as the pod sees it.")
    file_format: str = Field("parquet", description=f"Format of the splits: {', '.join(FORMATS)}.")
    tokeniser_path: str = Field("s3://genomenlp/data/tokenizer.json", description="Tokeniser JSON, as the pod sees it.")
    test: str = Field("test", description="Test split: a path or a name beside train_path.")
    valid: str = Field("valid", description="Validation split: a path or a name beside train_path.")
    output_dir: str = Field("/tmp/trial", description="Where a trial writes its model (pod-local: one pod per trial).")
    s3_secret: str | None = Field("s3-credentials", description="Secret whose keys become the trial's environment.")
    s3_endpoint_url: str | None = Field("http://object-store.genomenlp.svc.cluster.local:9000",
                                        description="S3 endpoint (AWS_ENDPOINT_URL); empty for AWS itself.")
    fixed: dict[str, float | int | bool | str] = Field(
        default_factory=dict, description="TrainConfig/ModelConfig settings every trial gets (the sweep wins).")

    trial_timeout_s: int | None = Field(6 * 3600, ge=60, description="Deadline of one trial's Job.")
    timeout_s: float = Field(24 * 3600, gt=0, description="How long the launcher waits for the Experiment.")
    poll_interval_s: float = Field(30, gt=0, description="Seconds between status polls.")

    def override(self, source: str = "katib settings", **changes) -> KatibConfig:
        """A copy with some fields replaced, validated like a fresh config (``None`` = keep).

        Raises:
            InputError: A replaced value is invalid (``source`` names where it came from).
        """
        values = {**self.model_dump(), **{key: value for key, value in changes.items() if value is not None}}
        try:
            return KatibConfig(**values)
        except ValidationError as error:
            raise InputError(source, describe_validation_error(error)) from None

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not _QUANTITY.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity such as 4, 500m or 16Gi")
        return value

    @field_validator("file_format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in FORMATS:
            raise ValueError(f"{value!r} is not one of {', '.join(FORMATS)}")
        return value

    @field_validator("fixed")
    @classmethod
    def _known_settings(cls, value: dict) -> dict:
        fields = {**TrainConfig.model_fields, **ModelConfig.model_fields}
        owned = sorted(set(value) & _BUILDER_OWNED)
        if owned:
            raise ValueError(f"{owned} follow from the sweep's metric and the GPU count; do not fix them")
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known: {sorted(set(fields) - _BUILDER_OWNED)}")
        # Each value is checked against its field (type and bounds) now, not in a pod hours later.
        checked = {}
        for name, item in value.items():
            field = fields[name]
            kind = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
            try:
                item = TypeAdapter(kind).validate_python(item)
            except ValidationError as error:
                raise ValueError(f"{name}: {error.errors()[0]['msg']}") from None
            checked[name] = item.value if isinstance(item, Enum) else item
        return checked


def load_katib_config(path: str | None, **overrides) -> KatibConfig:
    """Read a KatibConfig YAML (or take the defaults when ``path`` is None); ``overrides`` win.

    Args:
        path: YAML mapping of :class:`KatibConfig` fields, local or ``s3://``.
        **overrides: Field values from the command line; ``None`` means "not given".

    Raises:
        InputError: The file is not YAML, or a field is unknown or invalid (one line).
    """
    source = path or "katib settings"
    values: dict = {}
    if path:
        try:
            values = yaml.safe_load(read_text(path)) or {}
        except yaml.YAMLError as error:
            raise InputError(path, f"not valid YAML ({error.__class__.__name__})") from None
        if not isinstance(values, dict):
            raise InputError(path, "expected a mapping of KatibConfig fields")
    try:
        config = KatibConfig(**values)
    except ValidationError as error:
        raise InputError(source, describe_validation_error(error)) from None
    return config.override("flags", **overrides) if overrides else config
