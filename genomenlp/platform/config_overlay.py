"""Run configurations that extend another: a cluster YAML is its local config plus placement.

A YAML holding ``extends: OTHER.yaml`` (a path relative to its own folder) means OTHER with this file's
keys laid over it: mappings merge key by key, anything else (a list, a value) replaces what OTHER
says. So ``training_pipeline_kubeflow.yaml`` names only what differs on the cluster (where each step
runs, the Katib backend), and a parameter changed in ``training_pipeline.yaml`` reaches both.
ZenML reads one plain file, so a merged configuration is written to a temporary file for it.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from genomenlp.components.errors import InputError

EXTENDS_KEY = "extends"


def overlay(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` laid over it: mappings merge recursively, other values replace."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = overlay(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict:
    source = str(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(source, "no such configuration file") from None
    except IsADirectoryError:
        raise InputError(source, "is a folder, expected a YAML configuration file") from None
    except yaml.YAMLError as error:
        raise InputError(source, f"not valid YAML ({str(error).splitlines()[0]})") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InputError(source, "the file must be a mapping")
    return config


def load_run_config(path: str | Path) -> dict:
    """The run configuration in ``path``, with the configurations it extends merged under it."""
    chain: list[Path] = []
    current = Path(path)
    layers = []
    while True:
        resolved = current.resolve()
        if resolved in chain:
            raise InputError(str(path), "`extends:` loops: " + " → ".join(p.name for p in [*chain, resolved]))
        chain.append(resolved)
        config = _read(current)
        layers.append(config)
        parent = config.pop(EXTENDS_KEY, None)
        if parent is None:
            break
        if not isinstance(parent, str) or not parent:
            raise InputError(str(current), f"{EXTENDS_KEY}: give the file name of the configuration this one extends")
        current = current.parent / parent
    merged: dict = {}
    for layer in reversed(layers):
        merged = overlay(merged, layer)
    return merged


@contextlib.contextmanager
def zenml_config_file(path: str | Path) -> Iterator[Path]:
    """A file ZenML can read for ``path``: itself, or the merged configuration while the block runs."""
    if EXTENDS_KEY not in _read(Path(path)):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="genomenlp-config-") as folder:
        merged = Path(folder) / Path(path).name
        merged.write_text(yaml.safe_dump(load_run_config(path), sort_keys=False), encoding="utf-8")
        yield merged
