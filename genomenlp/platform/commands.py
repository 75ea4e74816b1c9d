"""The installed commands: the stage commands of ``genomenlp/components/cli`` with ZenML's registry plugged in.

``train`` and ``sweep`` register their model as a new version in ZenML's model control plane,
and every command that takes a model accepts ``registry:NAME[@VERSION|@STAGE]``. The stage
commands themselves stay free of ZenML (they run and test without it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from genomenlp.components.cli import cross_validate as cross_validate_command
from genomenlp.components.cli import ensemble as ensemble_command
from genomenlp.components.cli import fit_powerlaw as fit_powerlaw_command
from genomenlp.components.cli import interpret as interpret_command
from genomenlp.components.cli import main as umbrella
from genomenlp.components.cli import predict as predict_command
from genomenlp.components.cli import pretrain as pretrain_command
from genomenlp.components.cli import sweep as sweep_command
from genomenlp.components.cli import train as train_command


def _register(model_dir: Path, summary: dict, name: str) -> int:
    from genomenlp.components.registry import version_metadata, version_tags
    from genomenlp.steps.support.registry import register_model_folder

    return register_model_folder(model_dir, version_metadata(summary), name=name,
                                 description=f"trained by the command line into {model_dir}",
                                 tags=version_tags(summary))


def _with_registry(entry):
    def run(argv: list[str] | None = None) -> int:
        from genomenlp.steps.support.registry import install_registry_resolver

        install_registry_resolver()
        return entry(argv)

    return run


def _with_tracker(entry):
    """``entry`` sending its finished run to the active stack's ``wandb`` experiment tracker, when there is one."""
    def run(argv: list[str] | None = None) -> int:
        from genomenlp.steps.support.tracking import install_wandb_sink

        install_wandb_sink()
        return entry(argv)

    return run


def train(argv: list[str] | None = None) -> int:
    """``train``, registering the model."""
    return _with_tracker(_with_registry(lambda args: train_command.main(args, registrar=_register)))(argv)


def sweep(argv: list[str] | None = None) -> int:
    """``sweep``, registering the best trial's model."""
    return _with_tracker(_with_registry(lambda args: sweep_command.main(args, registrar=_register)))(argv)


def _registry_metrics(reference: str) -> dict | None:
    from genomenlp.steps.support.registry import registered_metrics

    return registered_metrics(reference)


def fit_powerlaw(argv: list[str] | None = None) -> int:
    """``fit_powerlaw``, taking registry references and their registered metrics."""
    return _with_registry(lambda args: fit_powerlaw_command.main(args, metrics_lookup=_registry_metrics))(argv)


def cross_validate(argv: list[str] | None = None) -> int:
    """``cross_validate``, whose ``--config_from_run`` also takes registry versions and ZenML runs."""
    from genomenlp.steps.support.registry import install_run_resolver

    install_run_resolver()
    return _with_tracker(_with_registry(cross_validate_command.main))(argv)


predict = _with_registry(predict_command.main)
interpret = _with_registry(interpret_command.main)
pretrain = _with_registry(pretrain_command.main)
ensemble = _with_registry(ensemble_command.main)

_INSTALLED = {"train": train, "sweep": sweep, "fit-powerlaw": fit_powerlaw, "predict": predict,
              "interpret": interpret, "cross-validate": cross_validate, "pretrain": pretrain,
              "ensemble": ensemble}


def genomenlp(argv: list[str] | None = None) -> int:
    """``genomenlp SUBCOMMAND``: the umbrella command with the registry plugged in."""
    commands = {name: (_INSTALLED.get(name, entry), summary) for name, (entry, summary) in umbrella.COMMANDS.items()}
    return umbrella.main(argv, commands)


if __name__ == "__main__":
    sys.exit(genomenlp())
