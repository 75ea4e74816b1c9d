"""Step: give the registry's ``production`` stage to the version the promotion rule picks."""

import logging
from typing import Annotated

from zenml import get_step_context, step

from components.names import Artifacts
from pipelines.registry import promote_best


@step
def promote_model(cv_metrics: dict, margin: float = 0.0) -> Annotated[int | None, Artifacts.PRODUCTION_VERSION]:
    """Promote the best version of the run's model that beats its k-mer baseline.

    Args:
        cv_metrics: The cross-validation result; taken so promotion waits for its metadata.
        margin: MCC a version must gain over its k-mer baseline to qualify.

    Returns:
        The version holding ``production`` afterwards, or ``None`` when none qualifies (or the run
        has no registry model configured).
    """
    model_version = get_step_context().model_version
    if model_version is None:
        logging.getLogger(__name__).warning("no `model:` configured for this run: nothing to promote")
        return None
    chosen = promote_best(model_version.model.name, margin)
    message = f"production: version {chosen}" if chosen else "no version beats its k-mer baseline: production unchanged"
    logging.getLogger(__name__).info("%s (cross-validated MCC %.3f)", message,
                                     cv_metrics["summary"]["test_mcc"]["mean"])
    return chosen
