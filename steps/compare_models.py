"""Step: compare models by their weights alone (power-law fits of the encoder's spectra)."""

from typing import Annotated

import pandas as pd
from zenml import step

from components.compare.powerlaw import PowerlawConfig, fit_powerlaw
from components.names import Artifacts
from pipelines.registry import install_registry_resolver, registered_metrics


@step
def compare_models(
    models: list[str], config: PowerlawConfig, output_dir: str, overwrite: bool = False
) -> Annotated[pd.DataFrame, Artifacts.POWERLAW_SUMMARY]:
    """Run WeightWatcher on each model's encoder and write per-model and overlay figures.

    Args:
        models: Model folders or registry references (``registry:NAME@VERSION|@STAGE``).
        config: Analysis settings.
        output_dir: Folder of the tables and figures (user-facing).
        overwrite: Replace an existing ``output_dir``.

    Returns:
        One row per model: alpha summary beside its registered test metrics.
    """
    install_registry_resolver()
    return fit_powerlaw(models, config, output_dir, overwrite, metrics_lookup=registered_metrics)
