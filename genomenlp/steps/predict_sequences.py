"""Step: classify sequences with a trained model into a TSV of labels and class probabilities."""

from pathlib import Path
from typing import Annotated

from zenml import step

from genomenlp.components.inference.config import PredictConfig
from genomenlp.components.inference.predict import write_predictions
from genomenlp.components.model_io import load_model
from genomenlp.components.names import PRODUCTION_MODEL, Artifacts
from genomenlp.steps.support.registry import install_registry_resolver


@step
def predict_sequences(
    inputs: list[str],
    config: PredictConfig,
    output: str,
    model_dir: Path | None = None,
    model: str = PRODUCTION_MODEL,
    overwrite: bool = False,
) -> Annotated[dict, Artifacts.PREDICTIONS]:
    """Predict every record of the inputs, streaming rows into ``output``.

    Args:
        inputs: FASTA files and/or raw sequences.
        config: Batching, window overlap, alphabet, device.
        output: The TSV to write (user-facing).
        model_dir: A model folder from an earlier step of the run; when absent, ``model`` is used.
        model: A model reference; by default the registry's production classifier.
        overwrite: Replace an existing ``output``.

    Returns:
        Counts of records, windows and records per predicted class, and the TSV's path.
    """
    install_registry_resolver()
    loaded = load_model(str(model_dir) if model_dir is not None else model)
    result = write_predictions(loaded, inputs, output, config, overwrite)
    return {**result, "output": output}
