"""Run a sweep in-process with Optuna: the same algorithm families Katib's suggestion services use.

random → RandomSampler, grid → GridSampler, bayes → TPE; hyperband → HyperbandPruner on the
per-epoch validation metric. The study lives in SQLite under the output folder, so running the
command again tops the same study up to the requested number of trials.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

from components.errors import InputError
from components.storage import prepare_resumable_dir
from components.search.spec import ALIASES, Distribution, Method, SweepSpec, split_settings
from components.training.baselines import fit_baselines
from components.training.config import ModelConfig, TrainConfig, model_config_from_mapping, training_config_from_mapping
from components.training.loop import TrainingDiverged
from components.training.report import beats_baseline, write_sweep_report
from components.training.run import (
    METRICS_FILE,
    MODEL_DIR,
    REPORT_FILE,
    TrainingData,
    load_training_data,
    train_classifier,
)

STUDY_FILE = "study.db"


class TrialSettingsError(InputError):
    """A trial's sampled settings are invalid together (e.g. hidden_size not divisible by num_heads)."""


TRIALS_FILE = "trials.csv"
BEST_FILE = "hyperparams.json"
TRIALS_DIR = "trials"


def _sampler(spec: SweepSpec, seed: int):
    import optuna

    if spec.method is Method.GRID:
        return optuna.samplers.GridSampler({n: p.values for n, p in spec.parameters.items() if p.values is not None}
                                           | {n: [p.value] for n, p in spec.parameters.items() if p.value is not None},
                                           seed=seed)
    if spec.method is Method.BAYES:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)
    return optuna.samplers.RandomSampler(seed=seed)


def _pruner(spec: SweepSpec, max_epochs: int):
    import optuna

    if spec.early_terminate is None:
        return optuna.pruners.NopPruner()
    rule = spec.early_terminate
    return optuna.pruners.HyperbandPruner(min_resource=rule.min_iter, max_resource=rule.max_iter or max_epochs,
                                          reduction_factor=rule.eta)


def _max_epochs(spec: SweepSpec, default: int) -> int:
    """The most epochs any trial can run: hyperband's largest budget."""
    epochs = spec.parameters.get("epochs") or spec.parameters.get("num_train_epochs")
    if epochs is None:
        return default
    return int(max(epochs.values or [epochs.value if epochs.value is not None else epochs.max]))


def _integer_field(name: str) -> bool:
    """Whether a sweep parameter sets a whole-number setting (batch size, epochs, layers)."""
    field = ALIASES.get(name, name)
    info = TrainConfig.model_fields.get(field) or ModelConfig.model_fields.get(field)
    return info is not None and info.annotation is int


def sample(trial, spec: SweepSpec) -> dict:
    """Draw one value per parameter (sweep names kept)."""
    values = {}
    for name, parameter in spec.parameters.items():
        if parameter.value is not None:
            values[name] = parameter.value
        elif parameter.values is not None:
            values[name] = trial.suggest_categorical(name, parameter.values)
        elif parameter.is_integer or _integer_field(name):
            values[name] = trial.suggest_int(name, int(parameter.min), int(parameter.max),
                                             log=parameter.distribution is Distribution.LOG_UNIFORM_VALUES)
        else:
            values[name] = trial.suggest_float(
                name, parameter.min, parameter.max,
                log=parameter.distribution is Distribution.LOG_UNIFORM_VALUES,
                step=parameter.q if parameter.distribution is Distribution.Q_UNIFORM else None,
            )
    return values


def run_sweep(
    spec: SweepSpec,
    data: TrainingData,
    base_model: ModelConfig,
    base_training: TrainConfig,
    trials: int,
    out_dir: str,
    show_progress: bool = True,
) -> dict:
    """Run (or continue) the study until it holds ``trials`` finished trials; keep the best model.

    Returns:
        ``{"best_trial", "best_value", "metric", "hyperparameters" (fixed settings and best values, as in
        ``hyperparams.json``), "best_values" (the searched values and selection metric only), "trials",
        "summary"}``.
    """
    import optuna

    metric = spec.metric.key
    # Checked before the study exists, so a refused spec leaves no study.db behind.
    if metric not in {f"eval_{m}" for m in ("f1", "mcc", "roc_auc", "pr_auc", "accuracy", "loss", "f1_macro")}:
        raise InputError("metric.name", f"{spec.metric.name!r} is not a validation metric this trainer reports")
    # Continues its own study; a folder of anything else is refused, not written into.
    out = prepare_resumable_dir(out_dir, False, None, STUDY_FILE, "sweep")
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = spec.metric.goal
    max_epochs = _max_epochs(spec, base_training.num_train_epochs)
    study = optuna.create_study(study_name=spec.name, storage=f"sqlite:///{out / STUDY_FILE}", load_if_exists=True,
                                direction=direction, sampler=_sampler(spec, base_training.seed),
                                pruner=_pruner(spec, max_epochs))

    def objective(trial) -> float:
        values = sample(trial, spec)
        train_fields, model_fields = split_settings(values)
        # Built anew, not model_copy: sampled values must be validated (a YAML "5e-4" is a string).
        try:
            training = training_config_from_mapping({**base_training.model_dump(), **train_fields,
                                                     "metric_for_best_model": metric,
                                                     "greater_is_better": direction == "maximize"}, spec.name)
            model = model_config_from_mapping({**base_model.model_dump(), **model_fields}, spec.name)
        except InputError as error:
            # A sampled combination the model cannot take fails this trial, not the search.
            raise TrialSettingsError(error.source, error.problem, f"trial {trial.number}") from None
        trial.set_user_attr("train_fields", train_fields)
        trial.set_user_attr("model_fields", model_fields)

        def report(epoch: int, row: dict) -> None:
            print(f"trial={trial.number} epoch={epoch} {metric}={row[metric]:.6g}", flush=True)
            trial.report(row[metric], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")

        trial_dir = out / TRIALS_DIR / f"trial_{trial.number:04d}"
        try:
            summary = train_classifier(data, model, training, str(trial_dir), overwrite=True,
                                       show_progress=show_progress, on_epoch=report, with_baselines=False)
        except (optuna.TrialPruned, TrainingDiverged):
            shutil.rmtree(trial_dir, ignore_errors=True)
            raise
        return summary[metric]

    finished = [t for t in study.trials if t.state.is_finished()]
    remaining = max(0, trials - len(finished))
    if remaining:
        study.optimize(objective, n_trials=remaining, catch=(TrainingDiverged, TrialSettingsError))
    result = _publish(study, spec, out, metric)
    # The fixed settings under the search travel with the best values, so `train -w` reproduces the run.
    fixed = {**base_model.model_dump(mode="json"), **base_training.model_dump(mode="json", exclude={"device"})}
    result["best_values"] = result["hyperparameters"]
    result["hyperparameters"] = {key: value for key, value in {**fixed, **result["best_values"]}.items()
                                 if value is not None}
    (out / BEST_FILE).write_text(json.dumps(result["hyperparameters"], indent=2) + "\n")
    _add_baselines(result["summary"], load_training_data(data), base_training.seed)
    (out / METRICS_FILE).write_text(json.dumps(result["summary"], indent=2))
    write_sweep_report(out / REPORT_FILE, result, plot_trials(result["trials"], metric, out / "trials.png"))
    return result


def plot_trials(rows: list[dict], metric: str, path: Path) -> Path:
    """The metric of every trial against its learning rate (or trial number); failed trials at zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = "param_learning_rate" if any("param_learning_rate" in row for row in rows) else "trial"
    figure, axes = plt.subplots(figsize=(6, 4))
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "s"), ("FAIL", "x")):
        chosen = [row for row in rows if row["state"] == state and row.get(x_key) is not None]
        values = [row[metric] if row[metric] is not None else 0.0 for row in chosen]
        axes.scatter([row[x_key] for row in chosen], values, marker=marker, label=state.lower())
    if x_key == "param_learning_rate":
        axes.set_xscale("log")
    axes.set(xlabel=x_key.removeprefix("param_"), ylabel=f"{metric} (valid)", title="Trials")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _add_baselines(summary: dict, loaded, seed: int) -> None:
    """Trials skip the baselines; the best model gets them, so it can be compared and promoted."""
    train, test = loaded.splits["train"], loaded.splits["test"]
    if train.features and test.features:
        summary["baselines"] = fit_baselines(train.features, train.labels, test.features, test.labels, seed)
        summary["beats_kmer_baseline"] = beats_baseline(summary, summary["baselines"])


def _publish(study, spec: SweepSpec, out: Path, metric: str) -> dict:
    import optuna

    rows = []
    for trial in study.trials:
        rows.append({"trial": trial.number, "state": trial.state.name, metric: trial.value,
                     "seconds": trial.duration.total_seconds() if trial.duration else None,
                     **{f"param_{k}": v for k, v in trial.params.items()}})
    with (out / TRIALS_FILE).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    complete = [t for t in study.trials if t.state is optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise InputError(spec.name, "no trial finished (all failed or were pruned); narrow the learning-rate range")
    best = study.best_trial
    hyperparameters = {**best.user_attrs["train_fields"], **best.user_attrs["model_fields"],
                       "metric_for_best_model": metric, "greater_is_better": spec.metric.goal == "maximize"}
    (out / BEST_FILE).write_text(json.dumps(hyperparameters, indent=2) + "\n")
    best_dir = out / TRIALS_DIR / f"trial_{best.number:04d}"
    if (out / MODEL_DIR).exists():
        shutil.rmtree(out / MODEL_DIR)
    shutil.copytree(best_dir / MODEL_DIR, out / MODEL_DIR)
    shutil.copy(best_dir / METRICS_FILE, out / METRICS_FILE)
    logging.getLogger(__name__).info("best trial %s", best.number)
    return {"best_trial": best.number, "best_value": best.value, "metric": spec.metric.name,
            "hyperparameters": hyperparameters, "trials": rows,
            "summary": json.loads((out / METRICS_FILE).read_text())}
