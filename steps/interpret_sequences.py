"""Step: Integrated Gradients attributions of a classifier, one escaped HTML page per sequence."""

from pathlib import Path
from typing import Annotated

from zenml import step

from components.inference.config import InterpretConfig
from components.inference.interpret import interpret_sequences as interpret
from components.model_io import load_model
from components.names import PRODUCTION_MODEL, Artifacts
from pipelines.registry import install_registry_resolver


@step
def interpret_sequences(
    inputs: list[str],
    config: InterpretConfig,
    output_dir: str,
    model_dir: Path | None = None,
    model: str = PRODUCTION_MODEL,
    labels: list[str] | None = None,
    overwrite: bool = False,
) -> Annotated[dict, Artifacts.INTERPRETATION]:
    """Attribute each sequence's prediction to its tokens and bases.

    Args:
        inputs: FASTA files and/or raw sequences.
        config: Integration steps, target class, batching.
        output_dir: Folder of the pages, ``index.html`` and the attribution tables (user-facing).
        model_dir: A model folder from an earlier step of the run; when absent, ``model`` is used.
        model: A model reference; by default the registry's production classifier.
        labels: True class name of each input file, when known.
        overwrite: Replace an existing ``output_dir``.

    Returns:
        Counts, the largest convergence delta and the path of ``index.html``.
    """
    install_registry_resolver()
    loaded = load_model(str(model_dir) if model_dir is not None else model)
    result = interpret(loaded, inputs, output_dir, config, labels, overwrite)
    return result
