"""Step: train the classifier with the chosen hyperparameters and report it on the test split."""

from pathlib import Path
from typing import Annotated

from pydantic import PositiveInt
from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.enums import ArtifactType
from zenml.types import HTMLString

from genomenlp.components.export import staging_folder
from genomenlp.components.headlines import training_headlines
from genomenlp.components.names import Artifacts
from genomenlp.components.registry import version_metadata
from genomenlp.components.training.config import (
    ModelConfig,
    TrainConfig,
    apply_hyperparameters,
)
from genomenlp.components.training.epoch_choice import stop_epoch_from
from genomenlp.components.training.run import METRICS_FILE, MODEL_DIR, REPORT_FILE
from genomenlp.components.training.state import write_json_atomically
from genomenlp.components.training_operator.config import DistributedConfig
from genomenlp.components.training_operator.job import train_command
from genomenlp.steps.support.accelerated_stage import run_stage
from genomenlp.steps.support.training_job import run_as_pytorch_job


@step
def train_classifier(
    dataset_dir: Path,
    hyperparameters: dict,
    model: ModelConfig,
    training: TrainConfig,
    init_digests: dict | None = None,
    processes_per_pod: PositiveInt = 1,
    distributed: DistributedConfig | None = None,
    cv_metrics: dict | None = None,
) -> tuple[
    # A model artifact: a run with a ZenML `model:` lists it among the version's models.
    Annotated[Path, ArtifactConfig(name=Artifacts.MODEL_DIR, artifact_type=ArtifactType.MODEL)],
    Annotated[dict, Artifacts.TRAINING_METRICS],
    Annotated[Path, Artifacts.TRAINING_DIR],
    Annotated[HTMLString, Artifacts.TRAINING_REPORT],
]:
    """Train one model, stop at the epoch cross-validation chose (else pick it on valid), score it on test.

    Args:
        dataset_dir: Dataset folder (splits as parquet and its ``tokenizer.json``).
        hyperparameters: Settings that override ``model`` and ``training`` (a sweep's best).
        model: Model shape.
        training: Training settings.
        init_digests: Digest of the encoder ``training.init_from`` names; only part of the cache key.
        processes_per_pod: Training processes in this step's pod, one per GPU; above 1 they run under ZenML's
            ``run_with_accelerate`` (DDP, or FSDP with ``training.fsdp``), and this step still logs once.
        distributed: Run the training as a Kubeflow Training Operator PyTorchJob of this many workers and
            GPUs each instead (multi-node), and pick its outputs up from the artifact store.
        cv_metrics: The cross-validation of the same settings: its folds' epoch choice becomes ``stop_at_epoch``
            when they trained as many epochs; how the epoch was chosen is recorded as ``epoch_choice``.

    Returns:
        The HF model folder (model, tokeniser, ``genomenlp.json``), the metrics summary, the whole run
        folder as the ``train`` command writes it (the pipeline's export step copies it to
        ``output_dir``) and its ``report.html``.
    """
    source = Artifacts.BEST_HYPERPARAMETERS
    model, training = apply_hyperparameters(model, training, hyperparameters, source)
    epoch_choice = stop_epoch_from(cv_metrics, training)
    if epoch_choice["stop_at_epoch"] is not None:
        stop = {"stop_at_epoch": epoch_choice["stop_at_epoch"]}
        training = apply_hyperparameters(model, training, stop, Artifacts.CV_METRICS)[1]
    folder = staging_folder("train")
    if distributed is not None:
        metrics = run_as_pytorch_job("train", distributed, dataset_dir, folder, lambda data: train_command(
            data, model, training, distributed.gpus_per_worker))
    else:
        metrics = run_stage("train", {"dataset_dir": str(dataset_dir), "model": model.model_dump(mode="json"),
                                      "training": training.model_dump(mode="json"), "out_dir": str(folder),
                                      "epoch_note": epoch_choice["note"] if epoch_choice["stop_at_epoch"] else None},
                            processes_per_pod)
    # In the folder's metrics.json too, so the exported run says how its epoch was chosen.
    metrics = {**metrics, "epoch_choice": epoch_choice}
    write_json_atomically(folder / METRICS_FILE, metrics, indent=2)
    scalars, context = version_metadata(metrics), get_step_context()
    log_metadata({**scalars, **training_headlines(metrics)})
    # The run page shows the headline figures without opening the step.
    log_metadata(training_headlines(metrics), run_id_name_or_prefix=context.pipeline_run.id)
    # infer_model raises unless the step or its pipeline is configured with a `model:`.
    if context.model_version is not None:
        log_metadata(scalars, infer_model=True)
    # The report needs the baselines, which a dataset without k-mer features lacks.
    report = folder / REPORT_FILE
    html = report.read_text(encoding="utf-8") if report.exists() else "<p>no report: no baseline could be fitted</p>"
    return folder / MODEL_DIR, metrics, folder, HTMLString(html)
