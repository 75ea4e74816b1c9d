"""The original toolkit's hosted-tracker flags, kept so its tutorial lines run unchanged.

``-e/--entity_name``, ``-p/--project_name`` and ``-g/--group_name`` named a team, a project and a
group on the hosted dashboard. Here they are recorded with the run (``metrics.json``) and, when the
command registers a model, as tags and metadata of the model version. Flags that only steered the
hosted service (``--wandb_off``, ``-r/--resume_sweep``) are accepted with a one-line note.
"""

from __future__ import annotations

import argparse

TRACKING_KEY = "tracking"
TRACKING_FIELDS = ("entity_name", "project_name", "group_name")


def add_tracker_arguments(parser: argparse.ArgumentParser, default_group: str, sweep: bool = False) -> None:
    """Add the original's tracker flags to a training command.

    Args:
        parser: The command's parser.
        default_group: The group the original used for this command (``sweep``, ``train``, ``crossval``).
        sweep: Also accept the sweep-only ``-r/--resume_sweep``.
    """
    group = parser.add_argument_group("run tracking (the original toolkit's hosted-tracker flags)")
    group.add_argument("-e", "--entity_name", default="", metavar="TEAM",
                       help="team name: recorded as a tag of the run and of the registered model version")
    group.add_argument("-p", "--project_name", default="", metavar="PROJECT",
                       help="project name: recorded likewise")
    group.add_argument("-g", "--group_name", default=default_group, metavar="GROUP",
                       help=f"group name: recorded likewise (default: {default_group})")
    group.add_argument("--wandb_off", action="store_true",
                       help="accepted for the original's command lines; runs are always tracked locally and in "
                            "ZenML, never on a hosted service")
    if sweep:
        group.add_argument("-r", "--resume_sweep", metavar="SWEEP_ID",
                           help="accepted for the original's command lines; the study in OUT/study.db is continued "
                                "whenever OUT holds one")


def tracking_notes(args: argparse.Namespace, prog: str) -> list[str]:
    """One-line notes for hosted-tracker flags that have no effect here."""
    notes = []
    if getattr(args, "wandb_off", False):
        notes.append(f"{prog}: note: --wandb_off has no effect: nothing is sent to a hosted tracker")
    if getattr(args, "resume_sweep", None):
        notes.append(f"{prog}: note: --resume_sweep {args.resume_sweep} has no effect: the study kept in "
                     f"{args.output_dir}/study.db is continued when there is one")
    return notes


def tracking_tags(args: argparse.Namespace) -> dict[str, str]:
    """The tracker flags the user set, by field name (empty values left out)."""
    return {name: str(getattr(args, name)) for name in TRACKING_FIELDS if getattr(args, name, "")}
