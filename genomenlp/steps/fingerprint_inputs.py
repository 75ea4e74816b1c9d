"""Step: digests of the run's inputs, so a changed file or registry stage re-runs the cached steps that read it."""

from typing import Annotated

from zenml import step

from genomenlp.components.export import input_digests
from genomenlp.components.model_io import resolve_model_path
from genomenlp.components.names import Artifacts
from genomenlp.steps.support.registry import install_registry_resolver


# Never cached: the files behind unchanged paths (or the version a registry stage names) may have changed.
@step(enable_cache=False)
def fingerprint_inputs(
    files: list[str], models: list[str] | None = None, explain: list[str] | None = None
) -> tuple[
    Annotated[dict, Artifacts.INPUT_DIGESTS],
    Annotated[dict, Artifacts.MODEL_DIGESTS],
    Annotated[dict, Artifacts.EXPLAIN_DIGESTS],
]:
    """Hash each input file, folder or model reference, in three groups for the steps reading each.

    Steps take a group as an input artifact. ZenML keys their cache on its content, so unchanged
    inputs keep them cached and an edited file (or a stage moved to another version) re-runs them.

    Args:
        files: The data files (FASTA class files, genomes).
        models: Model references or folders (``registry:NAME@STAGE`` is resolved to the folder it names now).
        explain: Files or inline sequences to interpret.

    Returns:
        ``{reference: sha256}`` for each group (empty for a group not given).
    """
    install_registry_resolver()
    return (input_digests(files), input_digests(models or [], resolve_model_path),
            input_digests(explain or []))
