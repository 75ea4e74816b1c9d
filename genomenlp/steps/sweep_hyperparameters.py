"""Step: search hyperparameters on the dataset's train/valid splits (Optuna, in-process)."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import PositiveInt
from zenml import get_step_context, log_metadata, step
from zenml.types import HTMLString

from genomenlp.components.export import staging_folder
from genomenlp.components.headlines import sweep_headlines
from genomenlp.components.katib.config import KatibConfig
from genomenlp.components.katib.launcher import katib_trial_config, run_experiment
from genomenlp.components.katib.report import write_katib_summary
from genomenlp.components.katib.trial_data import export_trial_dataset, trial_data_prefix
from genomenlp.components.names import Artifacts
from genomenlp.components.search.local import run_sweep
from genomenlp.components.search.spec import SweepSpec
from genomenlp.components.training.config import ModelConfig, TrainConfig, training_config_from_mapping
from genomenlp.components.training.run import REPORT_FILE, TrainingData
from genomenlp.steps.support.registry import install_registry_resolver


@step
def sweep_hyperparameters(
    dataset_dir: Path,
    spec: SweepSpec,
    model: ModelConfig,
    training: TrainConfig,
    trials: PositiveInt,
    epochs: PositiveInt | None = None,
    backend: Literal["local", "katib"] = "local",
    katib: KatibConfig | None = None,
    katib_host: str | None = None,
    init_digests: dict | None = None,
) -> tuple[
    Annotated[dict, Artifacts.BEST_HYPERPARAMETERS],
    Annotated[list[dict], Artifacts.SWEEP_TRIALS],
    Annotated[Path, Artifacts.SWEEP_DIR],
    Annotated[HTMLString, Artifacts.SWEEP_REPORT],
]:
    """Train ``trials`` models with settings drawn from ``spec`` and return the best settings.

    Args:
        dataset_dir: Dataset folder (splits as parquet and its ``tokenizer.json``).
        spec: The sweep: method, metric, searched parameters, early termination.
        model: Model shape the searched parameters are applied to.
        training: Training settings the searched parameters are applied to.
        trials: Finished trials the study should hold.
        epochs: Epochs per trial, when a trial should train shorter than ``training`` says.
        backend: ``local`` (Optuna in this step) or ``katib`` (an Experiment on the cluster, whose trials
            read the dataset from the artifact store).
        katib: Placement and budgets of the Katib Experiment. Unless it says otherwise, trials run the
            stack's image, reach the stack's S3 endpoint, and read this run's dataset exported under
            ``<artifact store>/katib-data/<run id>/``.
        katib_host: Kubernetes API server URL instead of the pod's in-cluster credentials.
        init_digests: Digest of the encoder ``training.init_from`` names; only part of the cache key.

    Returns:
        The best trial's hyperparameters (TrainConfig and ModelConfig fields, selection metric), one
        row per trial, the sweep folder as the ``sweep`` command writes it (the pipeline's export step
        copies it to ``output_dir``) and its report.
    """
    folder = staging_folder("sweep")
    training = training_config_from_mapping(training.model_dump(), "epochs", {"num_train_epochs": epochs})
    if backend == "katib":
        katib = _with_stack_defaults(katib or KatibConfig())
        config = katib_trial_config(katib, _trial_dataset(dataset_dir, katib), model, training, trials)
        result = run_experiment(spec, config, host=katib_host)
        rows = [{"experiment": result.name, "best_trial": result.best_trial, spec.metric.key: result.value,
                 **result.trials}]
        write_katib_summary(folder, result.hyperparameters, rows)
        found = {} if result.value is None else {f"best_{spec.metric.key}": result.value}
        log_metadata({"katib_experiment": result.name, **found})
        report = HTMLString((folder / REPORT_FILE).read_text(encoding="utf-8"))
        return result.hyperparameters, rows, folder, report
    # `init_from: registry:…` must resolve in this process too (a Kubeflow pod, not only the CLI's).
    install_registry_resolver()
    data = TrainingData.from_dataset_dir(dataset_dir)
    result = run_sweep(spec, data, model, training, trials, str(folder), show_progress=False)
    headlines = sweep_headlines(result["trials"], spec.metric.key, spec.metric.goal == "maximize")
    log_metadata(headlines)
    # Prefixed on the run, beside the other steps' figures.
    log_metadata({f"sweep_{key}": value for key, value in headlines.items()},
                 run_id_name_or_prefix=get_step_context().pipeline_run.id)
    # Only the searched values: the pipeline's own settings (e.g. the final epochs) must not be overridden.
    report = HTMLString((folder / REPORT_FILE).read_text(encoding="utf-8"))
    return result["best_values"], result["trials"], folder, report


def _with_stack_defaults(katib: KatibConfig) -> KatibConfig:
    """Trials run the stack's image and reach its artifact store, unless the config names others."""
    from zenml.client import Client

    stack = Client().active_stack
    changes = {}
    image = getattr(stack.orchestrator.config, "image", None)
    if image and "image" not in katib.model_fields_set:
        changes["image"] = image
    if stack.artifact_store.path.startswith("s3://") and "s3_endpoint_url" not in katib.model_fields_set:
        # None (AWS itself) must replace the dev cluster's default endpoint too.
        endpoint = (getattr(stack.artifact_store.config, "client_kwargs", None) or {}).get("endpoint_url")
        changes["s3_endpoint_url"] = endpoint
    # model_copy keeps track of which fields the user set, which _trial_dataset relies on.
    return katib.model_copy(update=changes)


def _trial_dataset(dataset_dir: Path, katib: KatibConfig) -> str:
    """Where trial pods read the dataset: the configured folder, else an export into the artifact store."""
    if "train_path" in katib.model_fields_set:
        return katib.train_path.rsplit("/", 1)[0]
    from zenml import get_step_context
    from zenml.client import Client
    from zenml.io import fileio

    prefix = trial_data_prefix(Client().active_stack.artifact_store.path, str(get_step_context().pipeline_run.id))
    return export_trial_dataset(dataset_dir, prefix, lambda source, target: fileio.copy(source, target, True))
