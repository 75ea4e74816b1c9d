"""Step: Integrated Gradients attributions of a classifier, one escaped HTML page per sequence."""

from pathlib import Path
from typing import Annotated

from zenml import step
from zenml.types import HTMLString

from genomenlp.components.export import staging_folder
from genomenlp.components.inference.config import InterpretConfig
from genomenlp.components.inference.interpret import INDEX_FILE
from genomenlp.components.inference.interpret import interpret_sequences as interpret
from genomenlp.components.model_io import load_model
from genomenlp.components.names import PRODUCTION_MODEL, Artifacts
from genomenlp.steps.support.registry import install_registry_resolver


@step
def interpret_sequences(
    inputs: list[str],
    config: InterpretConfig,
    model_dir: Path | None = None,
    model: str = PRODUCTION_MODEL,
    labels: list[str] | None = None,
    input_digests: dict | None = None,
) -> tuple[
    Annotated[dict, Artifacts.INTERPRETATION],
    Annotated[Path, Artifacts.INTERPRETATION_DIR],
    Annotated[HTMLString, Artifacts.INTERPRETATION_REPORT],
]:
    """Attribute each sequence's prediction to its tokens and bases.

    Args:
        inputs: FASTA files and/or raw sequences.
        config: Integration steps, target class, batching.
        model_dir: A model folder from an earlier step of the run; when absent, ``model`` is used.
        model: A model reference; by default the registry's production classifier.
        labels: True class name of each input file, when known.
        input_digests: Digests of ``inputs`` (and of ``model``); only part of the cache key.

    Returns:
        Counts and the largest convergence delta; the folder of pages, ``index.html`` and attribution
        tables as the ``interpret`` command writes it (the pipeline's export step copies it to
        ``output_dir``); and ``index.html``.
    """
    install_registry_resolver()
    loaded = load_model(str(model_dir) if model_dir is not None else model)
    folder = staging_folder("interpret")
    result = interpret(loaded, inputs, str(folder), config, labels)
    # Paths into the staging folder would mislead: the export step says where the folder went.
    counts = {key: value for key, value in result.items() if key not in ("index", "out_dir")}
    return counts, folder, HTMLString((folder / INDEX_FILE).read_text(encoding="utf-8"))
