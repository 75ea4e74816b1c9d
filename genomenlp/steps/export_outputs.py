"""Step: copy the run's stored folders to the user's ``output_dir``, exactly as the commands lay them out."""

from pathlib import Path
from typing import Annotated

from zenml import step

from genomenlp.components.export import export_folders
from genomenlp.components.names import Artifacts
from genomenlp.components.storage import join


# Never cached: the export is the run's only write to output_dir, and must happen on every run.
@step(enable_cache=False)
def export_outputs(
    output_dir: str,
    overwrite: bool = False,
    flat: bool = False,
    dataset: Path | None = None,
    sweep: Path | None = None,
    train: Path | None = None,
    cv: Path | None = None,
    ensemble: Path | None = None,
    interpret: Path | None = None,
    pretrain: Path | None = None,
    comparison: Path | None = None,
) -> Annotated[dict, Artifacts.EXPORTED_FOLDERS]:
    """Copy every folder given to ``output_dir/<name>`` (or to ``output_dir`` itself when ``flat``).

    Args:
        output_dir: Where the user finds the run's folders (local or ``s3://``).
        overwrite: Replace folders of an earlier run; otherwise an existing one stops the export.
        flat: The run has one folder, which *is* ``output_dir`` (dataset and comparison pipelines).
        dataset: The dataset folder.
        sweep: The hyperparameter search folder.
        train: The classifier's run folder.
        cv: The cross-validation folder.
        ensemble: The served model's folder (the ensemble of the final and fold models).
        interpret: The interpretation pages.
        pretrain: The pre-training run folder.
        comparison: The weight-spectrum comparison folder.

    Returns:
        ``{folder name: where it now is}``.
    """
    folders = {"dataset": dataset, "sweep": sweep, "train": train, "cv": cv, "ensemble": ensemble,
               "interpret": interpret, "pretrain": pretrain, "comparison": comparison}
    given = {name: folder for name, folder in folders.items() if folder is not None}
    if flat and len(given) != 1:
        raise ValueError(f"flat export takes exactly one folder, got {sorted(given)}")
    destinations = {name: output_dir if flat else join(output_dir, name) for name in given}
    exported = export_folders({destinations[name]: folder for name, folder in given.items()}, overwrite)
    return {name: exported[destinations[name]] for name in given}
