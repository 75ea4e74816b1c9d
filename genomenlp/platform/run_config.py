"""Checking a ZenML run-configuration YAML against the pipeline's and steps' signatures.

ZenML's configuration models ignore unknown keys (``extra="ignore"``), so a misspelt top-level or
step key would silently leave a default in force. Every key is therefore checked here, and every
parameter value is validated against its annotation (config models included) before a run starts.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from genomenlp.components.errors import InputError
from genomenlp.platform.config_overlay import load_run_config


def _check_keys(section: object, allowed: typing.Iterable[str], source: str, where: str) -> dict:
    if not isinstance(section, dict):
        raise InputError(source, f"{where or 'the file'} must be a mapping")
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        prefix = f"{where}." if where else ""
        allowed = sorted(allowed)
        # Listing ZenML's thirty-odd run settings would bury the typo; parameter lists are short.
        hint = f" (allowed: {', '.join(allowed)})" if len(allowed) <= 10 else ""
        raise InputError(source, f"unknown key {prefix}{unknown[0]}{hint}")
    return section


def _check_arguments(function, given: object, source: str, where: str, require_all: bool) -> None:
    """Validate ``given`` as keyword arguments of ``function``, each against its annotation."""
    signature = inspect.signature(function)
    # With extras: constraints such as PositiveInt live in Annotated metadata.
    hints = typing.get_type_hints(function, include_extras=True)
    _check_keys(given, signature.parameters, source, where)
    for name, value in given.items():
        try:
            TypeAdapter(hints[name]).validate_python(value)
        except ValidationError as error:
            first = error.errors()[0]
            location = ".".join(str(part) for part in (where, name, *first["loc"]))
            raise InputError(source, f"{location}: {first['msg']}") from None
    if require_all:
        missing = [
            name
            for name, p in signature.parameters.items()
            if p.default is p.empty and name not in given
        ]
        if missing:
            raise InputError(source, f"{where}: missing required parameter {missing[0]}")


def _check_model(model, value: object, source: str, where: str) -> None:
    """Check ``value`` against a ZenML settings model: known keys (ZenML ignores others), valid values."""
    _check_keys(value, model.model_fields, source, where)
    try:
        model.model_validate(value)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in (where, *first["loc"]))
        raise InputError(source, f"{location}: {first['msg']}") from None


def _check_settings(settings: object, source: str, where: str) -> None:
    """Check the settings this project uses; other components' settings are left to ZenML.

    Placement written under a misspelt key would otherwise vanish silently from the compiled
    Kubeflow pipeline (ZenML's settings models accept or ignore unknown keys).
    """
    from zenml.config import DockerSettings, ResourceSettings

    if not isinstance(settings, dict):
        raise InputError(source, f"{where} must be a mapping")
    models = {"resources": ResourceSettings, "docker": DockerSettings}
    for key, value in settings.items():
        # The project's only orchestrator with settings is genomenlp_kubeflow; a key naming another
        # (a typo included) would be dropped by ZenML with a warning.
        if key.replace(":", ".").split(".")[0] == "orchestrator":
            from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings

            from genomenlp.platform.kubeflow_flavor import SETTINGS_KEY, GenomeKubeflowOrchestratorSettings

            if key != SETTINGS_KEY:
                raise InputError(source, f"unknown key {where}.{key} (orchestrator settings go under {SETTINGS_KEY})")
            _check_model(GenomeKubeflowOrchestratorSettings, value, source, f"{where}.{key}")
            if value.get("pod_settings") is not None:
                _check_model(KubernetesPodSettings, value["pod_settings"], source, f"{where}.{key}.pod_settings")
        elif key in models:
            _check_model(models[key], value, source, f"{where}.{key}")


def _step(name: str, source: str):
    """The step ``genomenlp.steps.<name>.<name>`` (one step per module, named as its module)."""
    try:
        module = importlib.import_module(f"genomenlp.steps.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"genomenlp.steps.{name}":
            raise
        raise InputError(source, f"steps.{name}: no such step") from None
    return getattr(module, name)


def check_run_config(pipeline, path: str | Path) -> dict:
    """Load a run-configuration YAML and check it fits ``pipeline`` and its steps.

    Args:
        pipeline: The ZenML pipeline the YAML configures.
        path: The YAML file.

    Returns:
        The parsed YAML, with the configuration it ``extends:`` merged under it.

    Raises:
        InputError: On a missing or malformed file, an unknown key, a missing required pipeline
            parameter or a value its annotation rejects.
    """
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
    from zenml.config.step_configurations import StepConfigurationUpdate

    source = str(path)
    config = load_run_config(path)
    _check_keys(config, PipelineRunConfiguration.model_fields, source, "")
    if config.get("settings") is not None:
        _check_settings(config["settings"], source, "settings")
    if config.get("schedule") is not None:
        from zenml.config.schedule import Schedule

        _check_model(Schedule, config["schedule"], source, "schedule")
    _check_arguments(
        pipeline.entrypoint, config.get("parameters") or {}, source, "parameters", require_all=True
    )
    steps = config.get("steps") or {}
    if not isinstance(steps, dict):
        raise InputError(source, "steps must be a mapping of step name to settings")
    for name, step_config in steps.items():
        _check_keys(step_config, StepConfigurationUpdate.model_fields, source, f"steps.{name}")
        if step_config.get("settings") is not None:
            _check_settings(step_config["settings"], source, f"steps.{name}.settings")
        where = f"steps.{name}.parameters"
        _check_arguments(
            _step(name, source).entrypoint,
            step_config.get("parameters") or {},
            source,
            where,
            False,
        )
    return config
