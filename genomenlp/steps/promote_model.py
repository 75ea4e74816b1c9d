"""Step: give the registry's ``production`` stage to the version the promotion rule picks."""

import logging
from typing import Annotated

from zenml import get_step_context, log_metadata, step

from genomenlp.components.headlines import promotion_headlines, training_headlines
from genomenlp.components.names import Artifacts
from genomenlp.components.registry import BASELINE_SCORE, CV_SCORE, version_metadata
from genomenlp.steps.support.registry import promote_best


# Never cached: the registry's stages change between runs, and a cached training step logs nothing to
# the run's new model version, so this step records the version's figures before promoting.
@step(enable_cache=False)
def promote_model(
    training_metrics: dict, cv_metrics: dict, margin: float = 0.0
) -> Annotated[int | None, Artifacts.PRODUCTION_VERSION]:
    """Promote the best version of the run's model that beats its k-mer baseline.

    Args:
        training_metrics: The classifier's metrics (test figures and baselines).
        cv_metrics: The cross-validation result.
        margin: MCC a version must gain over its k-mer baseline to qualify.

    Returns:
        The version holding ``production`` afterwards, or ``None`` when none qualifies (or the run
        has no registry model configured).
    """
    context = get_step_context()
    scalars = version_metadata(training_metrics, cv_metrics)
    # The run page's headline even when training came from the cache (a cached step logs nothing).
    log_metadata({**training_headlines(training_metrics), CV_SCORE: scalars[CV_SCORE]},
                 run_id_name_or_prefix=context.pipeline_run.id)
    if context.model_version is None:
        logging.getLogger(__name__).warning("no `model:` configured for this run: nothing to promote")
        return None
    # Idempotent when the training steps ran (same values); the only record when they came from the cache.
    log_metadata(scalars, infer_model=True)
    chosen = promote_best(context.model_version.model.name, margin)
    decision = promotion_headlines(context.model_version.number, chosen, scalars.get(CV_SCORE),
                                   scalars.get(BASELINE_SCORE), margin)
    log_metadata(decision)
    log_metadata(decision, run_id_name_or_prefix=context.pipeline_run.id)
    message = f"production: version {chosen}" if chosen else "no version beats its k-mer baseline: production unchanged"
    logging.getLogger(__name__).info("%s (cross-validated MCC %.3f)", message,
                                     cv_metrics["summary"]["test_mcc"]["mean"])
    return chosen
