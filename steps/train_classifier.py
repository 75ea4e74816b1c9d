"""Step: train the classifier with the chosen hyperparameters and report it on the test split."""

from pathlib import Path
from typing import Annotated

from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.enums import ArtifactType

from components.names import Artifacts
from components.registry import version_metadata
from components.training.config import (
    ModelConfig,
    TrainConfig,
    model_config_from_mapping,
    training_config_from_mapping,
)
from components.training.run import MODEL_DIR, TrainingData
from components.training.run import train_classifier as train
from pipelines.registry import install_registry_resolver


@step
def train_classifier(
    dataset_dir: Path,
    hyperparameters: dict,
    model: ModelConfig,
    training: TrainConfig,
    output_dir: str,
    overwrite: bool = False,
) -> tuple[
    # A model artifact: a run with a ZenML `model:` lists it among the version's models.
    Annotated[Path, ArtifactConfig(name=Artifacts.MODEL_DIR, artifact_type=ArtifactType.MODEL)],
    Annotated[dict, Artifacts.TRAINING_METRICS],
]:
    """Train one model, pick its epoch on valid and score it on test beside the baselines.

    Args:
        dataset_dir: Dataset folder (splits as parquet and its ``tokenizer.json``).
        hyperparameters: Settings that override ``model`` and ``training`` (a sweep's best).
        model: Model shape.
        training: Training settings.
        output_dir: Run folder (model, metrics, history, plots, report; user-facing).
        overwrite: Replace a finished run in ``output_dir``.

    Returns:
        The HF model folder (model, tokeniser, ``genomenlp.json``) and the metrics summary.
    """
    source = Artifacts.BEST_HYPERPARAMETERS
    model = model_config_from_mapping({**model.model_dump(), **hyperparameters}, source)
    training = training_config_from_mapping({**training.model_dump(), **hyperparameters}, source)
    # `init_from: registry:…` must resolve in this process too (a Kubeflow pod, not only the CLI's).
    install_registry_resolver()
    data = TrainingData.from_dataset_dir(dataset_dir)
    metrics = train(data, model, training, output_dir, overwrite, show_progress=False)
    scalars = version_metadata(metrics)
    log_metadata(scalars)
    # infer_model raises unless the step or its pipeline is configured with a `model:`.
    if get_step_context().model_version is not None:
        log_metadata(scalars, infer_model=True)
    return Path(output_dir) / MODEL_DIR, metrics
