"""Step: digests of the run's input files, so a changed file re-runs the cached steps that read it."""

from typing import Annotated

from zenml import step

from components.export import input_digests
from components.model_io import resolve_model_path
from components.names import Artifacts
from pipelines.registry import install_registry_resolver


# Never cached: the files behind unchanged paths (or the version a registry stage names) may have changed.
@step(enable_cache=False)
def fingerprint_inputs(references: list[str]) -> Annotated[dict, Artifacts.INPUT_DIGESTS]:
    """Hash each input file, folder or model reference.

    Steps that read the inputs take this dictionary as an input artifact. ZenML keys their cache on
    its content, so an unchanged file keeps them cached and an edited one re-runs them.

    Args:
        references: FASTA files, folders or model references (``registry:NAME@STAGE`` is resolved first).

    Returns:
        ``{reference: sha256}``.
    """
    install_registry_resolver()
    return input_digests(references, resolve_model_path)
