"""The original toolkit's tracker names and a run's figures, handed to the active stack's ``wandb`` tracker.

The original sent every sweep, training and cross-validation to a hosted wandb project chosen by
``-e/--entity_name``, ``-p/--project_name`` and ``-g/--group_name``. Here that happens only when the
active ZenML stack has a ``wandb`` experiment tracker: the flags name the entity, project and group
(the tracker's own ``entity`` and ``project_name`` fill in what the flags leave out), the run's
settings become the wandb config and its figures the wandb summary. The tracker's API key, and
``WANDB_MODE`` (``offline`` keeps the run on disk), work as they do for ZenML's own steps.
"""

from __future__ import annotations

import os

from genomenlp.components.registry import version_tags

WANDB_FLAVOR = "wandb"


def active_wandb_tracker():
    """The active stack's experiment tracker when it is a ``wandb`` one, else ``None``."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    # Looked up on the stack's record first: building the stack imports every component's library.
    trackers = Client().active_stack_model.components.get(StackComponentType.EXPERIMENT_TRACKER) or []
    if not trackers or trackers[0].flavor_name != WANDB_FLAVOR:
        return None
    return Client().active_stack.experiment_tracker


def wandb_init_arguments(command: str, tracking: dict, settings: dict, entity: str | None,
                         project: str | None) -> dict:
    """``wandb.init`` keyword arguments for one command's run.

    Args:
        command: The command, used as the wandb job type.
        tracking: The tracker flags given (``entity_name``, ``project_name``, ``group_name``).
        settings: The hyperparameters the run used (the wandb config).
        entity: The tracker's configured entity, used when ``-e`` is not given.
        project: The tracker's configured project, used when ``-p`` is not given.
    """
    return {"entity": tracking.get("entity_name") or entity, "project": tracking.get("project_name") or project,
            "group": tracking.get("group_name") or None, "job_type": command,
            "tags": version_tags({"tracking": tracking}), "config": settings}


def send_to_wandb(command: str, scalars: dict, tracking: dict, settings: dict) -> str | None:
    """Record one finished run with the stack's ``wandb`` tracker; a note saying where (``None``: no tracker)."""
    tracker = active_wandb_tracker()
    if tracker is None:
        return None
    import wandb

    config = tracker.config
    arguments = wandb_init_arguments(command, tracking, settings, config.entity, config.project_name)
    previous = os.environ.get("WANDB_API_KEY")
    os.environ["WANDB_API_KEY"] = config.api_key
    try:
        run = wandb.init(**arguments, settings=wandb.Settings(console="off", silent=True))
        run.summary.update({key: value for key, value in scalars.items()
                            if isinstance(value, int | float) and not isinstance(value, bool)})
        where = run.dir if run.offline else run.url
        run.finish()
    except wandb.errors.Error as error:
        # The results are already on disk and in the registry; the tracker is an extra copy.
        return f"note: the stack's wandb tracker {tracker.name} did not take the run ({error})"
    finally:
        if previous is None:
            os.environ.pop("WANDB_API_KEY", None)
        else:
            os.environ["WANDB_API_KEY"] = previous
    return (f"sent to the stack's wandb tracker {tracker.name}: {arguments['entity']}/{arguments['project']}, "
            f"group {arguments['group']} ({where})")


def install_wandb_sink() -> None:
    """Let ``train``, ``sweep`` and ``cross_validate`` send their runs to the stack's ``wandb`` tracker."""
    from genomenlp.components.cli.tracking import RESULT_SINKS

    if send_to_wandb not in RESULT_SINKS:
        RESULT_SINKS.append(send_to_wandb)
