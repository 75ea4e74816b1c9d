"""Step: the model the training pipeline serves, the ensemble of its final model and fold models, on test."""

import html
from pathlib import Path
from typing import Annotated

from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.enums import ArtifactType
from zenml.types import HTMLString

from genomenlp.components.export import staging_folder
from genomenlp.components.filenames import MODEL_DIR, REPORT_FILE
from genomenlp.components.headlines import training_headlines
from genomenlp.components.names import Artifacts
from genomenlp.components.training.ensemble import served_model_folder
from genomenlp.components.training.run import TrainingData, load_training_data


@step
def ensemble_models(
    dataset_dir: Path,
    model_dir: Path,
    training_metrics: dict,
    cv_dir: Path,
    cv_metrics: dict,
) -> tuple[
    # A model artifact: the registry's references (registry:genomic_bert@production) resolve to it.
    Annotated[Path, ArtifactConfig(name=Artifacts.SERVED_MODEL_DIR, artifact_type=ArtifactType.MODEL)],
    Annotated[dict, Artifacts.SERVED_METRICS],
    Annotated[Path, Artifacts.ENSEMBLE_DIR],
    Annotated[HTMLString, Artifacts.ENSEMBLE_REPORT],
]:
    """Average the final model with the cross-validation's fold models at the chosen epoch; score it on test.

    The members are trained already (the folds by the cross-validation), so this costs predictions only.
    Without fold models at the chosen epoch, or when the final model collapsed, the final model is served alone.

    Args:
        dataset_dir: Dataset folder (splits as parquet and its ``tokenizer.json``).
        model_dir: The final model's folder.
        training_metrics: The final model's metrics (test figures and baselines).
        cv_dir: The cross-validation's folder (``fold_K/model_at_chosen_epoch``).
        cv_metrics: The cross-validation result (``chosen_models``).

    Returns:
        The served model's folder, its metrics (the final model's, with the ensemble's test figures in their
        place and the final model's kept under ``final_model``), the whole folder (``OUT/model_files``,
        ``metrics.json``, ``report.html``) and the report.
    """
    folder = staging_folder("ensemble")
    data = load_training_data(TrainingData.from_dataset_dir(dataset_dir))
    served = served_model_folder(training_metrics, model_dir, cv_dir, cv_metrics, data, folder)
    figures = {"ensemble_members": len(served["ensemble_members"]), **training_headlines(served)}
    if "final_model" in served:
        figures["final_model_test_mcc"] = served["final_model"]["test_mcc"]
    log_metadata(figures)
    # infer_model raises unless the step or its pipeline is configured with a `model:`.
    if get_step_context().model_version is not None:
        log_metadata(figures, infer_model=True)
    report = folder / REPORT_FILE
    page = (report.read_text(encoding="utf-8") if report.exists()
            else f"<p>{html.escape(served.get('ensemble_note', 'no report: no baseline could be fitted'))}</p>")
    return folder / MODEL_DIR, served, folder, HTMLString(page)
