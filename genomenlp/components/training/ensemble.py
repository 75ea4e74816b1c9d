"""An ensemble from trained model folders: one folder like ``train``'s, scored on the test split.

The training pipeline's members are the final model and each cross-validation fold's model at the
epoch the folds chose (``fold_K/model_at_chosen_epoch``): models the pipeline trains anyway, so the
ensemble costs no training. Members must share the tokeniser and the classes.

The folder holds ``model_files/`` (the ensemble, which ``predict``, ``interpret`` and the registry
take as one model), and with data also ``metrics.json`` (the ensemble's test figures, each
member's, the baselines') and ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genomenlp.components.errors import InputError
from genomenlp.components.filenames import METRICS_FILE, MODEL_DIR, REPORT_FILE
from genomenlp.components.model_io import LoadedModel, load_model
from genomenlp.components.storage import atomic_output_dir, write_text_atomic
from genomenlp.components.training.ensemble_model import build_ensemble, is_ensemble
from genomenlp.components.training.epoch_choice import held_out_figures
from genomenlp.components.training.metrics import positive_index, roc_points
from genomenlp.components.training.report import beats_baseline

# Metadata key (genomenlp.json) naming the members of an ensemble folder.
MEMBERS_KEY = "ensemble_members"
# The final model's figures kept beside an ensemble's in the served model's metrics.
MEMBER_FIGURES = ("test_mcc", "test_roc_auc", "test_f1")


def fold_model_dirs(cv_dir: str | Path, cv_result: dict) -> list[tuple[str, Path]]:
    """(name, folder) of every fold model a cross-validation kept at its chosen epoch."""
    epoch = (cv_result.get("epoch_choice") or {}).get("chosen_epoch")
    return [(f"{relative.split('/')[0].replace('_', ' ')} at epoch {epoch}", Path(cv_dir) / relative)
            for relative in cv_result.get("chosen_models") or []]


def same_tokens(first, second) -> bool:
    """Whether two tokenisers give the same ids (a model folder's copy gains HF's special-token entries)."""
    return (first.describe() == second.describe()
            and first.tokenizer.get_vocab(with_added_tokens=True) == second.tokenizer.get_vocab(with_added_tokens=True))


def load_members(members: list[tuple[str, str | Path]]) -> list[LoadedModel]:
    """Load the members; refuse fewer than two, an ensemble among them, or differing tokenisers or classes."""
    if len(members) < 2:
        raise InputError("MODEL", f"an ensemble needs at least two models, got {len(members)}")
    loaded = [load_model(str(path)) for _, path in members]
    first = loaded[0]
    for (name, path), member in zip(members, loaded, strict=True):
        if is_ensemble(member.model):
            raise InputError(str(path), f"{name} is an ensemble already: give the models it was built from")
        if not same_tokens(member.tokenizer, first.tokenizer):
            raise InputError(str(path), f"{name} was trained with another tokeniser than {members[0][0]}")
        if member.label_names != first.label_names:
            raise InputError(str(path), f"{name} has classes {member.label_names}, {members[0][0]} has "
                             f"{first.label_names}")
    return loaded


def split_probabilities(model, tokenizer, input_ids: list, batch_size: int = 128) -> np.ndarray:
    """Class probabilities of token-id rows (already ``<s> … </s>``) with the product's prediction path."""
    import torch

    from genomenlp.components.inference.predict import window_probabilities
    from genomenlp.components.inference.windows import special_ids
    from genomenlp.components.tokenisers.common import PAD

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = [list(map(int, row)) for row in input_ids]
    probabilities = window_probabilities(model.to(device), rows, batch_size, special_ids(tokenizer)[PAD], device)
    model.cpu()
    return probabilities


def build_ensemble_folder(members: list[tuple[str, str | Path]], out_dir: str | Path, data=None,
                          positive_label: str | None = None, baselines: dict | None = None,
                          overwrite: bool = False) -> dict:
    """Write ``OUT/model_files`` (the ensemble) and, given data, its test figures and report; all or nothing.

    Args:
        members: (name, model folder) of each member, at least two; names are recorded in ``genomenlp.json``.
        out_dir: The ensemble's folder.
        data: The dataset (:class:`~genomenlp.components.training.run.LoadedData`) whose test split scores the
            ensemble and each member; ``None``: the model only.
        positive_label: The class whose ROC and PR curves are drawn (default: the first).
        baselines: Baselines already fitted on the same split (the final model's); fitted here when absent.
        overwrite: Replace an existing folder.

    Returns:
        The content of ``metrics.json`` (``{"members": …}`` only, without data).
    """
    from genomenlp.components.training.run import save_model_folder

    loaded = load_members(members)
    first = loaded[0]
    ensemble = build_ensemble([member.model for member in loaded])
    metadata = {key: value for key, value in first.metadata.items() if key != "label_names"}
    metadata[MEMBERS_KEY] = [name for name, _ in members]
    summary: dict = {"members": [{"name": name, "model": str(path)} for name, path in members]}
    with atomic_output_dir(out_dir, overwrite) as staging:
        save_model_folder(ensemble, first.tokenizer, first.label_names, staging / MODEL_DIR, metadata)
        if data is not None:
            summary = _score(summary, ensemble, loaded, data, positive_label, baselines, staging)
            (staging / METRICS_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _score(summary: dict, ensemble, loaded: list[LoadedModel], data, positive_label: str | None,
           baselines: dict | None, staging: Path) -> dict:
    """The ensemble's and each member's test figures, the baselines', a report and its plots in ``staging``."""
    from genomenlp.components.training.baselines import fit_baselines
    from genomenlp.components.training.plots import plot_confusion_matrix, plot_roc_pr
    from genomenlp.components.training.report import write_report

    if not same_tokens(data.tokenizer, loaded[0].tokenizer):
        raise InputError(data.source, "was encoded with another tokeniser than the models: give the dataset they "
                         "were trained on")
    names = list(loaded[0].label_names)
    if list(data.names) != names:
        raise InputError(data.source, f"has classes {list(data.names)}, the models {names}")
    test, train = data.splits["test"], data.splits["train"]
    positive = positive_index(names, positive_label)
    if baselines is None and train.features and test.features:
        baselines = fit_baselines(train.features, train.labels, test.features, test.labels, 0, positive)
    probabilities = split_probabilities(ensemble, loaded[0].tokenizer, test.input_ids)
    figures = held_out_figures(test.labels, probabilities, positive)
    for member, row in zip(loaded, summary["members"], strict=True):
        alone = held_out_figures(test.labels, split_probabilities(member.model, member.tokenizer, test.input_ids),
                             positive)
        row.update({key: value for key, value in alone.items() if key != "test_confusion_matrix"})
    summary = {**figures, **summary, "baselines": baselines or {}, "label_names": names,
               "beats_kmer_baseline": beats_baseline(figures, baselines) if baselines else None,
               "test_roc_curve": roc_points(test.labels, probabilities, positive),
               "roc_positive_label": names[positive],
               "parameters": sum(parameter.numel() for parameter in ensemble.parameters())}
    if not baselines:
        return summary  # no sequence text to fit baselines on: no report, as train writes none then
    plots = staging / "plots"
    shown = [plot_confusion_matrix(figures["test_confusion_matrix"], names, plots / "confusion_matrix.png"),
             *plot_roc_pr(test.labels, probabilities, names, plots, positive)]
    facts = {"test rows": f"{len(test):,}", "members": ", ".join(row["name"] for row in summary["members"]),
             "parameters": f"{summary['parameters']:,} (all members)"}
    write_report(staging / REPORT_FILE, f"Ensemble of {len(loaded)} models (mean of their logits)", figures,
                 baselines, shown, facts, members={row["name"]: row for row in summary["members"]})
    return summary


def served_model_folder(final_metrics: dict, final_model_dir: str | Path, cv_dir: str | Path, cv_result: dict,
                        data, out_dir: str | Path) -> dict:
    """The folder of the model a training pipeline serves: the ensemble of the final and fold models, if it can.

    ``OUT/model_files`` is the ensemble when the final model did not collapse and the cross-validation kept
    fold models at its chosen epoch; else a copy of the final model, and ``ensemble_note`` says why.

    Args:
        final_metrics: The final model's ``metrics.json`` content (its baselines score the ensemble too).
        final_model_dir: The final model's folder.
        cv_dir: The cross-validation's folder.
        cv_result: Its ``cv_metrics.json`` content.
        data: The dataset (:class:`~genomenlp.components.training.run.LoadedData`) both were trained on.
        out_dir: The served model's folder (written whole or not at all).

    Returns:
        ``metrics.json`` of the served model: the final model's, with an ensemble's test figures in place of
        its own (kept under ``final_model``), ``ensemble_members`` and, without an ensemble, ``ensemble_note``.
    """
    import shutil

    folds = fold_model_dirs(cv_dir, cv_result)
    reason = ("the final model collapsed" if final_metrics.get("collapsed") else
              "the cross-validation kept no fold model at its chosen epoch" if not folds else None)
    if reason is None:
        members = [("final model", Path(final_model_dir)), *folds]
        ensemble = build_ensemble_folder(members, out_dir, data, final_metrics.get("roc_positive_label"),
                                         final_metrics.get("baselines"))
        final = {key: final_metrics[key] for key in MEMBER_FIGURES}
        served = {**final_metrics, **{key: value for key, value in ensemble.items() if key != "members"},
                  "final_model": final, "ensemble_members": ensemble["members"]}
    else:
        with atomic_output_dir(out_dir) as staging:
            shutil.copytree(final_model_dir, staging / MODEL_DIR)
        served = {**final_metrics, "ensemble_members": [{"name": "final model", "model": str(final_model_dir)}],
                  "ensemble_note": f"no ensemble: {reason}; the final model is served alone"}
    write_text_atomic(Path(out_dir, METRICS_FILE), json.dumps(served, indent=2), overwrite=True)
    return served


def ensemble_description(served: dict) -> str:
    """What the served model is, in a few words, for closing lines and reports."""
    members = served.get("ensemble_members") or []
    if len(members) < 2:
        return served.get("ensemble_note") or "the final model alone"
    folds = len(members) - 1
    return f"ensemble of the final model and {folds} fold model{'s' if folds > 1 else ''} (logits averaged)"
