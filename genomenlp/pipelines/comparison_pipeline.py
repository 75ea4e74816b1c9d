"""The comparison pipeline: registered model versions → weight-spectrum comparison."""

from zenml import pipeline
from zenml.enums import ExecutionMode

from genomenlp.components.configs import PowerlawConfig
from genomenlp.components.names import Pipelines
from genomenlp.steps.compare_models import compare_models
from genomenlp.steps.export_outputs import export_outputs
from genomenlp.steps.fingerprint_inputs import fingerprint_inputs

DEFAULT_POWERLAW = PowerlawConfig()


# The cached step's folder is stored; export_outputs (never cached) writes output_dir.
@pipeline(name=Pipelines.COMPARISON, enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
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
    # Digests of the folders the references name now: `@production` may have moved since the last run.
    _, digests, _ = fingerprint_inputs([], models)
    _, comparison_dir, _ = compare_models(models, powerlaw, digests)
    export_outputs(output_dir, overwrite, flat=True, comparison=comparison_dir)
