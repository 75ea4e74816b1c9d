"""An ensemble model folder from trained model folders, and its figures on a split.

The training pipeline's members are the final model and each cross-validation fold's model at the
epoch the folds chose (``fold_K/model_at_chosen_epoch``): models the pipeline trains anyway, so the
ensemble costs no training. Members must share the tokeniser and the classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genomenlp.components.errors import InputError
from genomenlp.components.filenames import CHOSEN_MODEL_DIR
from genomenlp.components.model_io import LoadedModel, load_model
from genomenlp.components.storage import atomic_output_dir
from genomenlp.components.training.ensemble_model import build_ensemble, is_ensemble
from genomenlp.components.training.metrics import classification_metrics, roc_points
from genomenlp.components.training.report import beats_baseline

ENSEMBLE_DIR = "ensemble"
# Metadata key naming the members of an ensemble folder (genomenlp.json).
MEMBERS_KEY = "ensemble_members"


def fold_model_dirs(cv_dir: str | Path, cv_result: dict) -> list[tuple[str, Path]]:
    """(name, folder) of every fold model a cross-validation kept at its chosen epoch."""
    epoch = (cv_result.get("epoch_choice") or {}).get("chosen_epoch")
    return [(f"{relative.split('/')[0].replace('_', ' ')} at epoch {epoch}", Path(cv_dir) / relative)
            for relative in cv_result.get("chosen_models") or []]


def assemble_ensemble(members: list[tuple[str, str | Path]], out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write one model folder whose logits are the mean of the members' (see :mod:`.ensemble_model`).

    Args:
        members: (name, model folder) of each member, at least two; names are recorded in ``genomenlp.json``.
        out_dir: The ensemble's folder (written whole or not at all).
        overwrite: Replace an existing folder.

    Raises:
        InputError: Fewer than two members, a member that is itself an ensemble, or members whose
            tokenisers or classes differ.
    """
    from genomenlp.components.training.run import save_model_folder

    if len(members) < 2:
        raise InputError(str(out_dir), f"an ensemble needs at least two models, got {len(members)}")
    loaded = [load_model(str(path)) for _, path in members]
    first = loaded[0]
    for (name, path), member in zip(members, loaded, strict=True):
        if is_ensemble(member.model):
            raise InputError(str(path), f"{name} is an ensemble already: give the models it was built from")
        if member.tokenizer.sha256() != first.tokenizer.sha256():
            raise InputError(str(path), f"{name} was trained with another tokeniser than {members[0][0]}")
        if member.label_names != first.label_names:
            raise InputError(str(path), f"{name} has classes {member.label_names}, {members[0][0]} "
                             f"{first.label_names}")
    ensemble = build_ensemble([member.model for member in loaded])
    metadata = {key: value for key, value in first.metadata.items() if key != "label_names"}
    metadata[MEMBERS_KEY] = [{"name": name, "model_epoch": _epoch_of(Path(path))} for name, path in members]
    with atomic_output_dir(out_dir, overwrite) as staging:
        save_model_folder(ensemble, first.tokenizer, first.label_names, staging, metadata)
    return Path(out_dir)


def _epoch_of(folder: Path) -> int | float | None:
    """The epoch a member's weights are from: a fold's chosen epoch, or what its run's metrics say."""
    import json

    from genomenlp.components.filenames import METRICS_FILE

    metrics = folder.parent / METRICS_FILE
    if folder.name == CHOSEN_MODEL_DIR or not metrics.is_file():
        return None
    return json.loads(metrics.read_text()).get("model_epoch")


def split_probabilities(loaded: LoadedModel, input_ids: list, batch_size: int = 128) -> np.ndarray:
    """Class probabilities of token-id rows (already ``<s> … </s>``) with the product's prediction path."""
    import torch

    from genomenlp.components.inference.predict import window_probabilities
    from genomenlp.components.inference.windows import special_ids
    from genomenlp.components.tokenisers.common import PAD

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = loaded.model.to(device)
    rows = [list(map(int, row)) for row in input_ids]
    return window_probabilities(model, rows, batch_size, special_ids(loaded.tokenizer)[PAD], device)


def ensemble_figures(model_dir: str | Path, test, positive: int, baselines: dict) -> dict:
    """Test figures of a model folder on an encoded split, beside baselines fitted on the same split.

    Args:
        model_dir: The ensemble (any model folder).
        test: The :class:`~genomenlp.components.training.data.EncodedSplit` to score.
        positive: Label id of the class whose ROC curve is drawn.
        baselines: The final model's baselines, fitted on the same training and test rows.
    """
    loaded = load_model(str(model_dir))
    probabilities = split_probabilities(loaded, test.input_ids)
    figures = classification_metrics(test.labels, probabilities, "test_", positive)
    chosen = np.clip(probabilities[np.arange(len(test.labels)), test.labels.astype(int)], 1e-12, 1.0)
    figures["test_loss"] = float(-np.log(chosen).mean())
    return {**figures, "members": loaded.metadata.get(MEMBERS_KEY, []),
            "parameters": sum(parameter.numel() for parameter in loaded.model.parameters()),
            "baselines": baselines, "beats_kmer_baseline": beats_baseline(figures, baselines) if baselines else None,
            "test_roc_curve": roc_points(test.labels, probabilities, positive),
            "roc_positive_label": loaded.label_names[positive]}
