"""What ``sweep --backend katib [--dry_run]`` does: write the Experiment YAML, or run it on the cluster."""

from __future__ import annotations

import json

from genomenlp.components.errors import InputError
from genomenlp.components.katib.config import KatibConfig, load_katib_config
from genomenlp.components.search.spec import SweepSpec
from genomenlp.components.storage import join, write_text_atomic

EXPERIMENT_FILE = "experiment.yaml"
# The same name the local search writes, so ``train -w OUT/hyperparams.json`` works after either.
BEST_FILE = "hyperparams.json"


def write_experiment_yaml(spec: SweepSpec, katib_config: KatibConfig, path: str):
    """Write the sweep's Experiment manifest to ``path`` (local or ``s3://``); returns the Experiment.

    Raises:
        InputError: The sweep or config cannot be expressed for Katib.
    """
    from genomenlp.components.katib.experiment import build_experiment, experiment_yaml

    experiment = build_experiment(spec, katib_config)
    write_text_atomic(path, experiment_yaml(experiment), overwrite=True)
    return experiment


def katib_sweep(
    spec: SweepSpec,
    *,
    katib_config: str | None,
    train: str,
    file_format: str,
    tokeniser: str,
    test: str,
    valid: str,
    trials: int,
    output_dir: str,
    fixed: dict,
    dry_run: bool,
    experiment_yaml: str | None = None,
    host: str | None = None,
    keep: bool = False,
) -> int:
    """``sweep --backend katib``: the Experiment YAML always; with a cluster, the search itself.

    Args:
        spec: The loaded sweep JSON.
        katib_config: ``--katib_config`` YAML of :class:`KatibConfig` fields, or None for defaults.
        train: TRAIN as the trial pods see it (usually ``s3://…``); likewise ``tokeniser``,
            ``test`` and ``valid``.
        file_format: FORMAT.
        tokeniser: TOKENISER.
        test: ``-t``.
        valid: ``-v``.
        trials: ``-n``: the Experiment's trial budget.
        output_dir: ``-o``: receives ``experiment.yaml`` and, after a run, ``hyperparams.json``.
        fixed: TrainConfig/ModelConfig flags given on the command line; every trial gets them.
        dry_run: Only write the YAML.
        experiment_yaml: Where to write the YAML (default ``OUTPUT_DIR/experiment.yaml``).
        host: API server URL instead of the kubeconfig (``kubectl proxy``, tests).
        keep: Keep the Experiment on the cluster afterwards.

    Returns:
        0 (problems raise :class:`InputError`, one line through ``run_command``).
    """
    config = load_katib_config(katib_config)
    # Flags add to the file's fixed settings rather than replace them.
    config = config.override("flags", train_path=train, file_format=file_format, tokeniser_path=tokeniser, test=test,
                             valid=valid, max_trial_count=trials, fixed={**config.fixed, **fixed})
    path = experiment_yaml or join(output_dir, EXPERIMENT_FILE)
    experiment = write_experiment_yaml(spec, config, path)
    print(f"Katib Experiment {config.namespace}/{experiment.metadata.name}: {path}")
    if dry_run:
        print(f"submit with: kubectl apply -f {path}")
        return 0

    from genomenlp.components.katib.launcher import KatibError, run_experiment

    try:
        result = run_experiment(spec, config, host=host, delete=not keep)
    except KatibError as error:
        raise InputError("katib", str(error)) from None
    best_path = join(output_dir, BEST_FILE)
    write_text_atomic(best_path, json.dumps(result.hyperparameters, indent=2) + "\n", overwrite=True)
    value = "n/a" if result.value is None else f"{result.value:.4f}"
    print(f"trials: {result.trials}")
    print(f"Best trial {result.best_trial} with {result.metric}={value}")
    print(f"hyperparameters: {best_path}  (train -w {best_path})")
    return 0
