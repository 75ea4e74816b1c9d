"""Step: k-fold cross-validation of the chosen hyperparameters on the training split."""

from pathlib import Path
from typing import Annotated

from pydantic import Field, PositiveInt
from zenml import get_step_context, log_metadata, step
from zenml.types import HTMLString

from genomenlp.components.export import staging_folder
from genomenlp.components.names import Artifacts
from genomenlp.components.registry import cv_metadata
from genomenlp.components.training.config import (
    ModelConfig,
    TrainConfig,
    apply_hyperparameters,
)
from genomenlp.components.training.cross_validation import cross_validate
from genomenlp.components.training.run import REPORT_FILE, TrainingData
from genomenlp.steps.support.registry import install_registry_resolver


@step
def cross_validate_model(
    dataset_dir: Path,
    hyperparameters: dict,
    model: ModelConfig,
    training: TrainConfig,
    folds: Annotated[int, Field(ge=2)],
    epochs: PositiveInt | None = None,
    init_digests: dict | None = None,
) -> tuple[
    Annotated[dict, Artifacts.CV_METRICS],
    Annotated[Path, Artifacts.CV_DIR],
    Annotated[HTMLString, Artifacts.CV_REPORT],
]:
    """Train a fresh model per fold and score it on the held-out fold beside the baselines.

    Args:
        dataset_dir: Dataset folder (splits as parquet and its ``tokenizer.json``).
        hyperparameters: Settings that override ``model`` and ``training`` (a sweep's best).
        model: Model shape.
        training: Training settings.
        folds: Number of folds.
        epochs: Epochs per fold, when a fold should train shorter than ``training`` says.
        init_digests: Digest of the encoder ``training.init_from`` names; only part of the cache key.

    Returns:
        Per-fold figures and their mean and sd (``summary``), as in ``cv_metrics.json`` (its ``chosen_models``
        name each fold's model at the chosen epoch, the ensemble's members); the folder as the
        ``cross_validate`` command writes it (the pipeline's export step copies it to ``output_dir``) and its
        report.
    """
    source = Artifacts.BEST_HYPERPARAMETERS
    model, training = apply_hyperparameters(model, training, hyperparameters, source, {"num_train_epochs": epochs})
    # `init_from: registry:…` must resolve in this process too (a Kubeflow pod, not only the CLI's).
    install_registry_resolver()
    data = TrainingData.from_dataset_dir(dataset_dir)
    folder = staging_folder("cv")
    result = cross_validate(data, model, training, folds, str(folder), show_progress=False)
    # Prefixed: the training step logs test_mcc etc. to the same model version.
    summary, context = cv_metadata(result), get_step_context()
    log_metadata(summary)
    log_metadata(summary, run_id_name_or_prefix=context.pipeline_run.id)
    # infer_model raises unless the step or its pipeline is configured with a `model:`.
    if context.model_version is not None:
        log_metadata(summary, infer_model=True)
    return result, folder, HTMLString((folder / REPORT_FILE).read_text(encoding="utf-8"))
