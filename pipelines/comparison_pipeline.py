"""The comparison pipeline: registered model versions → weight-spectrum comparison."""

from zenml import pipeline
from zenml.enums import ExecutionMode

from components.configs import PowerlawConfig
from components.names import Pipelines
from steps.compare_models import compare_models

DEFAULT_POWERLAW = PowerlawConfig()


# The step writes a user-facing folder, so a cached (skipped) step would leave output_dir unwritten.
@pipeline(name=Pipelines.COMPARISON, enable_cache=False, execution_mode=ExecutionMode.FAIL_FAST)
def comparison_pipeline(
    models: list[str], output_dir: str, powerlaw: PowerlawConfig = DEFAULT_POWERLAW, overwrite: bool = False
) -> None:
    """Compare N models (folders or ``registry:`` versions) by the power-law fits of their weights.

    Args:
        models: Model references, e.g. ``registry:genomic_bert@1`` and ``registry:genomic_bert@production``.
        output_dir: Folder of the per-model tables, overlays and ``summary.tsv``.
        powerlaw: WeightWatcher settings.
        overwrite: Replace ``output_dir`` if it exists.
    """
    compare_models(models, powerlaw, output_dir, overwrite)
