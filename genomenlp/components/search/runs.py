"""What ``--config_from_run RUN`` names: a sweep trial, a sweep or run folder, a model, or a registry version.

The original toolkit took the id of a run on its hosted tracker. Here the ids are the ones ``sweep``
prints ("Best run trial_0002 with eval_f1=…") and keeps in ``SWEEP_DIR/trials.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genomenlp.components.errors import InputError
from genomenlp.components.model_io import MODEL_METADATA, resolve_model_path
from genomenlp.components.search.local import BEST_FILE, TRIAL_SETTINGS_FILE, trial_id
from genomenlp.components.training.config import read_hyperparams
from genomenlp.components.training.run import MODEL_DIR

DEFAULT_SWEEP_DIR = "sweep_out"
_TRIAL = re.compile(r"^(?:trial_?)?(\d{1,6})$")


@dataclass(frozen=True)
class RunSettings:
    """Hyperparameters taken from a recorded run.

    Attributes:
        values: TrainingArguments-style keys (model and training settings).
        source: What they came from, for messages and reports.
    """

    values: dict
    source: str


# Outer layers add readers for references this module cannot read itself (the ZenML layer: pipeline runs);
# each returns ``None`` when the reference is not of its kind.
RUN_RESOLVERS: list[Callable[[str], RunSettings | None]] = []


def model_folder_settings(folder: str | Path, source: str) -> RunSettings:
    """The model and training settings recorded in a model folder (train's ``model_files``)."""
    return _model_settings(Path(folder), source)


def _model_settings(folder: Path, source: str) -> RunSettings:
    metadata = json.loads((folder / MODEL_METADATA).read_text())
    values = {**(metadata.get("model") or {}), **(metadata.get("training") or {})}
    if not values:
        raise InputError(source, f"{folder / MODEL_METADATA} records no model or training settings")
    return RunSettings({key: value for key, value in values.items() if value is not None}, source)


def _from_folder(path: Path) -> RunSettings | None:
    """Settings of a sweep folder, a run folder (train's OUT) or a model folder; ``None`` if it is none of them."""
    if (path / BEST_FILE).is_file():
        return RunSettings(read_hyperparams(str(path / BEST_FILE)), str(path / BEST_FILE))
    for folder in (path, path / MODEL_DIR):
        if (folder / MODEL_METADATA).is_file():
            return _model_settings(folder, str(folder))
    return None


def _trials(sweep_dir: Path) -> dict | None:
    path = sweep_dir / TRIAL_SETTINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _describe(trials: dict) -> str:
    complete = [name for name, trial in trials.items() if trial["state"] == "COMPLETE"]
    best = max(complete, key=lambda name: trials[name]["value"]) if complete else None
    shown = ", ".join(complete[:8]) + (", …" if len(complete) > 8 else "")
    return f"its completed trials: {shown or 'none'}" + (f"; best {best}" if best else "")


def resolve_run(run: str, sweep_dir: str | None = None) -> RunSettings:
    """The hyperparameters ``RUN`` stands for.

    Args:
        run: A trial id printed by ``sweep`` (``trial_0002``, ``trial_2`` or ``2``) of ``sweep_dir``; a sweep
            folder, a run folder or a model folder; a hyperparameter JSON; ``registry:NAME[@VERSION|@STAGE]``;
            or what a resolver in :data:`RUN_RESOLVERS` reads (a ZenML pipeline run's name or id).
        sweep_dir: The sweep folder trial ids belong to (default: ``sweep_out``).

    Raises:
        InputError: ``run`` names none of those, or a trial that did not complete (collapsed, pruned, failed);
            the message lists what it could be.
    """
    if run.startswith("registry:"):
        folder = Path(resolve_model_path(run))
        if not (folder / MODEL_METADATA).is_file():
            raise InputError(run, f"the registered model holds no {MODEL_METADATA} with its settings")
        return _model_settings(folder, run)
    path = Path(run)
    if path.is_dir():
        found = _from_folder(path)
        if found is None:
            raise InputError(run, f"is a folder without {BEST_FILE} (a sweep's) or {MODEL_METADATA} (a model's)")
        return found
    if path.is_file():
        return RunSettings(read_hyperparams(run), run)
    folder = Path(sweep_dir or DEFAULT_SWEEP_DIR)
    trials = _trials(folder)
    match = _TRIAL.match(run)
    if trials is not None and match:
        name = trial_id(int(match.group(1)))
        if name in trials:
            trial = trials[name]
            if trial["state"] != "COMPLETE":
                why = trial.get("collapsed") or trial["state"].lower()
                raise InputError("--config_from_run", f"{name} of {folder} did not complete ({why}); "
                                 f"{_describe(trials)}")
            return RunSettings(trial["hyperparameters"], f"{folder}/{TRIAL_SETTINGS_FILE} {name}")
    for resolver in RUN_RESOLVERS:
        found = resolver(run)
        if found is not None:
            return found
    where = (f"a trial of {folder} ({_describe(trials)})" if trials is not None
             else f"a trial id of a sweep folder given with -m (here {folder}, which holds no {TRIAL_SETTINGS_FILE})")
    raise InputError("--config_from_run", f"{run!r} is not {where}, nor a sweep or run folder, a hyperparameter "
                     "JSON, a ZenML training-pipeline run, or registry:NAME@VERSION; sweep prints the id as "
                     "'Best run <id> with eval_f1=…'")
