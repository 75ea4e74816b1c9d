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

from genomenlp.components.errors import InputError
from genomenlp.components.search.spec import ALIASES, Distribution, Method, SweepSpec, split_settings
from genomenlp.components.storage import prepare_resumable_dir
from genomenlp.components.training.baselines import fit_baselines
from genomenlp.components.training.collapse import HIGH_LEARNING_RATE, TrainingCollapsed
from genomenlp.components.training.config import ModelConfig, TrainConfig, apply_hyperparameters
from genomenlp.components.training.report import beats_baseline, write_sweep_report
from genomenlp.components.training.run import (
    METRICS_FILE,
    MODEL_DIR,
    REPORT_FILE,
    TrainingData,
    load_training_data,
    train_classifier,
)
from genomenlp.components.training.state import PruneRun, TrainingDiverged

STUDY_FILE = "study.db"


class TrialSettingsError(InputError):
    """A trial's sampled settings are invalid together (e.g. hidden_size not divisible by num_heads)."""


TRIALS_FILE = "trials.csv"
# Every trial's full settings by trial id, for `cross_validate --config_from_run TRIAL_ID -m OUT`.
TRIAL_SETTINGS_FILE = "trials.json"
BEST_FILE = "hyperparams.json"
TRIALS_DIR = "trials"
# Optuna user attributes: why a trial collapsed, and that a trial was cut short by Ctrl-C (not finished).
COLLAPSED = "collapsed"
INTERRUPTED = "interrupted"
# A learning-rate range suggested after collapses when no completed trial shows a better top: where AdamW on
# a small transformer classifier usually trains (this project's default is 5e-4).
SUGGESTED_MIN_LEARNING_RATE = 1e-5
SUGGESTED_MAX_LEARNING_RATE = 1e-3


def trial_id(number: int) -> str:
    """The id ``sweep`` prints for a trial (its folder name under ``OUT/trials``)."""
    return f"trial_{number:04d}"


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, with what was kept on disk.

    Attributes:
        kept: One line naming the study, its finished trials and how to continue.
    """

    def __init__(self, kept: str) -> None:
        super().__init__(kept)
        self.kept = kept


class _QuietTrialFailures(logging.Filter):
    """Drop Optuna's traceback for trials stopped by bad settings (divergence) and drop Ctrl-C reports.

    Optuna logs every failed trial with its traceback; a diverged trial is an expected outcome that
    trials.csv records, and Ctrl-C is reported once, as one line, by the command.
    """

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, KeyboardInterrupt) or "KeyboardInterrupt" in record.getMessage():
            self.interrupted = True
            return False
        if self.interrupted:  # Optuna's second line about the interrupted trial ("failed with value None")
            return False
        if isinstance(error, InputError):
            record.exc_info = None
            record.exc_text = None
        return True


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
    tracking: dict | None = None,
) -> dict:
    """Run (or continue) the study until it holds ``trials`` finished trials; keep the best model.

    A trial whose validation predictions collapse (one class, or chance F1) is stopped after at most
    ``collapse_epochs`` epochs and pruned; it is never chosen. Ctrl-C keeps the study and every
    finished trial and raises :class:`SweepInterrupted` saying so.

    Args:
        spec: The sweep specification.
        data: The dataset.
        base_model: Model settings under the search.
        base_training: Training settings under the search.
        trials: Finished trials the study should hold.
        out_dir: Output folder (the study lives in it).
        show_progress: Show progress bars.
        tracking: The original's tracker names, recorded in ``metrics.json``.

    Returns:
        ``{"best_trial", "best_value", "metric", "hyperparameters" (fixed settings and best values, as in
        ``hyperparams.json``), "best_values" (the searched values and selection metric only), "trials",
        "best_id", "collapsed" (how many trials collapsed), "collapse_advice", "summary"}``.

    Raises:
        InputError: No trial finished, e.g. every trial collapsed (the message says how many and what to change).
        SweepInterrupted: Ctrl-C.
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
            model, training = apply_hyperparameters(
                base_model, base_training, {**train_fields, **model_fields}, spec.name,
                {"metric_for_best_model": metric, "greater_is_better": direction == "maximize"})
        except InputError as error:
            # A sampled combination the model cannot take fails this trial, not the search.
            raise TrialSettingsError(error.source, error.problem, f"trial {trial.number}") from None
        trial.set_user_attr("train_fields", train_fields)
        trial.set_user_attr("model_fields", model_fields)

        def report(epoch: int, row: dict) -> None:
            print(f"trial={trial.number} epoch={epoch} {metric}={row[metric]:.6g}", flush=True)
            trial.report(row[metric], epoch)
            if trial.should_prune():
                raise PruneRun(f"pruned after epoch {epoch}")

        trial_dir = out / TRIALS_DIR / trial_id(trial.number)
        try:
            summary = train_classifier(data, model, training, str(trial_dir), overwrite=True,
                                       show_progress=show_progress, on_epoch=report, with_baselines=False,
                                       keep_collapsed=False)
        except TrainingCollapsed as error:
            shutil.rmtree(trial_dir, ignore_errors=True)
            trial.set_user_attr(COLLAPSED, error.problem)
            print(f"trial={trial.number} {error.problem}", flush=True)
            raise optuna.TrialPruned(error.problem) from None
        except PruneRun as error:
            shutil.rmtree(trial_dir, ignore_errors=True)
            raise optuna.TrialPruned(str(error)) from None
        except TrainingDiverged:
            shutil.rmtree(trial_dir, ignore_errors=True)
            raise
        except KeyboardInterrupt:
            shutil.rmtree(trial_dir, ignore_errors=True)
            trial.set_user_attr(INTERRUPTED, True)
            raise
        return summary[metric]

    # A trial cut short by Ctrl-C is recorded as failed by Optuna but does not count: it is run again.
    finished = [t for t in study.trials if t.state.is_finished() and not t.user_attrs.get(INTERRUPTED)]
    remaining = max(0, trials - len(finished))
    quiet = _QuietTrialFailures()
    optuna_logger = logging.getLogger("optuna.study._optimize")
    optuna_logger.addFilter(quiet)
    try:
        if remaining:
            study.optimize(objective, n_trials=remaining, catch=(TrainingDiverged, TrialSettingsError))
    except KeyboardInterrupt:
        raise SweepInterrupted(_kept_after_interrupt(study, out)) from None
    finally:
        optuna_logger.removeFilter(quiet)
    result = _publish(study, spec, out, metric)
    # The fixed settings under the search travel with the best values, so `train -w` reproduces the run.
    fixed = {**base_model.model_dump(mode="json"), **base_training.model_dump(mode="json", exclude={"device"})}
    result["best_values"] = result["hyperparameters"]
    result["hyperparameters"] = {key: value for key, value in {**fixed, **result["best_values"]}.items()
                                 if value is not None}
    (out / BEST_FILE).write_text(json.dumps(result["hyperparameters"], indent=2) + "\n")
    selection = {"metric_for_best_model": metric, "greater_is_better": direction == "maximize"}
    (out / TRIAL_SETTINGS_FILE).write_text(json.dumps(_trial_settings(study, fixed, selection), indent=2) + "\n")
    _add_baselines(result["summary"], load_training_data(data), base_training.seed)
    result["summary"]["sweep"] = {"best_trial": result["best_id"], "trials": len(result["trials"]),
                                  "collapsed_trials": result["collapsed"]}
    if tracking:
        result["summary"]["tracking"] = dict(tracking)
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


def _kept_after_interrupt(study, out: Path) -> str:
    """What an interrupted sweep leaves: the study, its finished trials' folders, and how to continue."""
    counted = [t for t in study.trials if t.state.is_finished() and not t.user_attrs.get(INTERRUPTED)]
    complete = [t for t in counted if t.state.name == "COMPLETE"]
    folders = [str(out / TRIALS_DIR / trial_id(t.number)) for t in complete]
    kept = f"kept {out / STUDY_FILE} with {len(counted)} finished trial(s)"
    if folders:
        kept += f" and their models in {', '.join(folders)}"
    return (f"{kept}; the unfinished trial was discarded and no summary was written; "
            "run the same command again to continue the study")


def collapse_advice(rows: list[dict]) -> str:
    """How many trials collapsed, the learning rates they used, and a narrower range to try."""
    collapsed = [row for row in rows if row.get(COLLAPSED)]
    line = f"{len(collapsed)} of {len(rows)} trials collapsed (validation predictions one class or at chance)"
    rates = sorted(row["param_learning_rate"] for row in collapsed if row.get("param_learning_rate") is not None)
    if not rates:
        return line + "; narrow the learning-rate range in the sweep spec"
    line += f" at learning_rate {rates[0]:g}-{rates[-1]:g}"
    high = [rate for rate in rates if rate > HIGH_LEARNING_RATE]
    if not high:
        return line + ": rates this small may need more epochs; raise the range's min or the epochs"
    # Keep the top of the range under the collapses: at the largest completed rate below them, else the default.
    below = [row["param_learning_rate"] for row in rows if row["state"] == "COMPLETE"
             and row.get("param_learning_rate") is not None and row["param_learning_rate"] < high[0]]
    top = max(below) if below else SUGGESTED_MAX_LEARNING_RATE
    return (line + "; narrow the learning-rate range in the sweep spec, e.g. "
            f'"learning_rate": {{"min": {SUGGESTED_MIN_LEARNING_RATE:g}, "max": {top:.2g}}}')


def _trial_settings(study, fixed: dict, selection: dict) -> dict:
    """Every trial's state, value and full settings (fixed settings under the sampled ones), by trial id."""
    settings = {}
    for trial in study.trials:
        sampled = {**trial.user_attrs.get("train_fields", {}), **trial.user_attrs.get("model_fields", {}),
                   **selection}
        settings[trial_id(trial.number)] = {
            "state": trial.state.name, "value": trial.value, COLLAPSED: trial.user_attrs.get(COLLAPSED),
            "hyperparameters": {key: value for key, value in {**fixed, **sampled}.items() if value is not None}}
    return settings


def _publish(study, spec: SweepSpec, out: Path, metric: str) -> dict:
    import optuna

    rows = []
    for trial in study.trials:
        state = "INTERRUPTED" if trial.user_attrs.get(INTERRUPTED) else trial.state.name
        rows.append({"trial": trial.number, "id": trial_id(trial.number), "state": state,
                     metric: trial.value, COLLAPSED: trial.user_attrs.get(COLLAPSED) or "",
                     "seconds": trial.duration.total_seconds() if trial.duration else None,
                     **{f"param_{k}": v for k, v in trial.params.items()}})
    with (out / TRIALS_FILE).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    complete = [t for t in study.trials if t.state is optuna.trial.TrialState.COMPLETE]
    if not complete:
        if any(row[COLLAPSED] for row in rows):
            raise InputError(str(out), f"no trial to choose: {collapse_advice(rows)}")
        raise InputError(str(out), "no trial finished (all failed or were pruned); narrow the learning-rate range")
    best = study.best_trial
    hyperparameters = {**best.user_attrs["train_fields"], **best.user_attrs["model_fields"],
                       "metric_for_best_model": metric, "greater_is_better": spec.metric.goal == "maximize"}
    (out / BEST_FILE).write_text(json.dumps(hyperparameters, indent=2) + "\n")
    best_dir = out / TRIALS_DIR / trial_id(best.number)
    if (out / MODEL_DIR).exists():
        shutil.rmtree(out / MODEL_DIR)
    shutil.copytree(best_dir / MODEL_DIR, out / MODEL_DIR)
    shutil.copy(best_dir / METRICS_FILE, out / METRICS_FILE)
    logging.getLogger(__name__).info("best trial %s", best.number)
    collapsed = sum(bool(row[COLLAPSED]) for row in rows)
    return {"best_trial": best.number, "best_id": trial_id(best.number), "best_value": best.value,
            "metric": spec.metric.name, "hyperparameters": hyperparameters, "trials": rows,
            "collapsed": collapsed, "collapse_advice": collapse_advice(rows) if collapsed else None,
            "summary": json.loads((out / METRICS_FILE).read_text())}
