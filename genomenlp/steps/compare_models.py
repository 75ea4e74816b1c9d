"""Step: compare models by their weights alone (power-law fits of the encoder's spectra)."""

from pathlib import Path
from typing import Annotated

import pandas as pd
from zenml import step
from zenml.types import HTMLString

from genomenlp.components.compare.powerlaw import PowerlawConfig, fit_powerlaw
from genomenlp.components.compare.report import comparison_page
from genomenlp.components.export import staging_folder
from genomenlp.components.names import Artifacts
from genomenlp.steps.support.registry import install_registry_resolver, registered_metrics


@step
def compare_models(
    models: list[str], config: PowerlawConfig, input_digests: dict | None = None
) -> tuple[
    Annotated[pd.DataFrame, Artifacts.POWERLAW_SUMMARY],
    Annotated[Path, Artifacts.COMPARISON_DIR],
    Annotated[HTMLString, Artifacts.COMPARISON_REPORT],
]:
    """Run WeightWatcher on each model's encoder and draw per-model and overlay figures.

    Args:
        models: Model folders or registry references (``registry:NAME@VERSION|@STAGE``).
        config: Analysis settings.
        input_digests: Digests of the model folders the references name now; only part of the cache
            key (``@production`` moving to another version re-runs the step).

    Returns:
        One row per model (alpha summary beside its registered test metrics), the folder of tables
        and figures as ``fit_powerlaw`` writes it (the pipeline's export step copies it to
        ``output_dir``), and the summary page.
    """
    install_registry_resolver()
    folder = staging_folder("comparison")
    summary = fit_powerlaw(models, config, str(folder), metrics_lookup=registered_metrics)
    return summary, folder, HTMLString(comparison_page(folder, summary))
