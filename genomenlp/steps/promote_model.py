"""Step: give the registry's ``production`` stage to the version the promotion rule picks."""

import logging
from typing import Annotated

from zenml import get_step_context, log_metadata, step

from genomenlp.components.headlines import promotion_headlines, training_headlines
from genomenlp.components.names import Artifacts
from genomenlp.components.registry import CV_SCORE, promotion_figures, version_metadata
from genomenlp.steps.support.registry import production_version, promote_best, withdraw_collapsed_version


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
    name, number = context.model_version.model.name, context.model_version.number
    if training_metrics.get("collapsed"):
        return _withdraw(name, number, training_metrics["collapsed"], context.pipeline_run.id)
    chosen = promote_best(name, margin)
    decision = promotion_headlines(number, chosen, *promotion_figures(scalars), margin)
    log_metadata(decision)
    log_metadata(decision, run_id_name_or_prefix=context.pipeline_run.id)
    message = f"production: version {chosen}" if chosen else "no version beats its k-mer baseline: production unchanged"
    logging.getLogger(__name__).info("%s (cross-validated MCC %.3f)", message,
                                     cv_metrics["summary"]["test_mcc"]["mean"])
    return chosen


def _withdraw(name: str, number: int, reason: str, run_id) -> int | None:
    """A collapsed model is never a candidate: archive its version and say so on the version and the run."""
    withdraw_collapsed_version(name, number)
    decision = {"promoted": False, "candidate": False, "collapsed_reason": reason}
    current = production_version(name)
    if current is not None:
        decision["production_version"] = current
    log_metadata(decision)
    log_metadata(decision, infer_model=True)
    log_metadata(decision, run_id_name_or_prefix=run_id)
    logging.getLogger(__name__).warning("version %s of %s %s: archived, never a production candidate",
                                        number, name, reason)
    return current
