"""The installed commands: the stage commands of ``components/cli`` with ZenML's registry plugged in.

``train`` and ``sweep`` register their model as a new version in ZenML's model control plane,
and every command that takes a model accepts ``registry:NAME[@VERSION|@STAGE]``. The stage
commands themselves stay free of ZenML (they run and test without it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from components.cli import main as umbrella
from components.cli import sweep as sweep_command
from components.cli import train as train_command


def _register(model_dir: Path, summary: dict, name: str) -> int:
    from pipelines.registry import register_model_folder, registry_metadata

    return register_model_folder(model_dir, registry_metadata(summary), name=name,
                                 description=f"trained by the command line into {model_dir}")


def _with_registry(entry):
    def run(argv: list[str] | None = None) -> int:
        from pipelines.registry import install_registry_resolver

        install_registry_resolver()
        return entry(argv)

    return run


def train(argv: list[str] | None = None) -> int:
    """``train``, registering the model."""
    return _with_registry(lambda args: train_command.main(args, registrar=_register))(argv)


def sweep(argv: list[str] | None = None) -> int:
    """``sweep``, registering the best trial's model."""
    return _with_registry(lambda args: sweep_command.main(args, registrar=_register))(argv)


def genomenlp(argv: list[str] | None = None) -> int:
    """``genomenlp SUBCOMMAND``: the umbrella command with the registry plugged in."""
    commands = dict(umbrella.COMMANDS)
    commands["train"] = (train, commands["train"][1])
    commands["sweep"] = (sweep, commands["sweep"][1])
    return _with_registry(lambda args: umbrella.main(args, commands))(argv)


if __name__ == "__main__":
    sys.exit(genomenlp())
