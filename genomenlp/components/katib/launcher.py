"""Run a sweep on Katib: submit the Experiment, wait for it, read the best trial, delete it.

The legacy ``katib-launcher`` component's flow, kept in the repository and typed: every way an
Experiment can end other than with a best trial raises (:class:`ExperimentFailed`,
:class:`ExperimentTimeout`, :class:`SubmissionError`), so a pipeline never continues with
defaults it did not search.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from genomenlp.components.errors import InputError
from genomenlp.components.katib.config import KatibConfig
from genomenlp.components.katib.experiment import build_experiment, searched_parameters
from genomenlp.components.search.spec import ALIASES, SweepSpec
from genomenlp.components.training.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)

# API errors in a row tolerated while waiting: one dropped request must not end a day-long search.
MAX_CONSECUTIVE_API_ERRORS = 3


class KatibError(RuntimeError):
    """An Experiment could not be run to a best trial."""


class SubmissionError(KatibError):
    """The API server refused the Experiment (or could not be reached)."""


class ExperimentFailed(KatibError):
    """The Experiment ended Failed, or Succeeded without a trial that reported the objective."""


class ExperimentTimeout(KatibError, TimeoutError):
    """The Experiment was still running when the launcher stopped waiting."""


@dataclass(frozen=True)
class SweepResult:
    """The outcome of a Katib sweep.

    Attributes:
        name: Experiment name (with the launcher's unique suffix).
        namespace: Its namespace.
        best_trial: Name of the optimal trial.
        metric: Objective metric key, e.g. ``eval_f1``.
        value: The optimal trial's objective (its best epoch).
        hyperparameters: TrainConfig/ModelConfig field → value, ready for ``train -w``.
        trials: Trial counts by state as Katib reports them.
    """

    name: str
    namespace: str
    best_trial: str
    metric: str
    value: float | None
    hyperparameters: dict
    trials: dict = field(default_factory=dict)


def make_client(namespace: str, host: str | None = None, kubeconfig: str | None = None,
                context: str | None = None):
    """A ``KatibClient``: for ``host`` (an API server URL, as in tests) or else from the kubeconfig.

    Args:
        namespace: Default namespace of the client's calls.
        host: API server URL, e.g. ``http://127.0.0.1:8001`` (``kubectl proxy``); no credentials.
        kubeconfig: Kubeconfig file (default: ``~/.kube/config``, or in-cluster credentials in a pod).
        context: Kubeconfig context (default: the current one).
    """
    # Imported here: the client module loads gRPC stubs and the kubeconfig machinery.
    from kubeflow.katib import KatibClient
    from kubernetes import client as k8s
    from kubernetes.config.config_exception import ConfigException

    if host:
        return KatibClient(client_configuration=k8s.Configuration(host=host), namespace=namespace)
    try:
        return KatibClient(config_file=kubeconfig, context=context, namespace=namespace)
    except ConfigException as error:
        raise InputError(kubeconfig or "~/.kube/config", f"no usable kubeconfig ({error}); "
                         "point --katib_host at the API server or use --dry_run") from None


def submit(katib, experiment, unique: bool = True) -> str:
    """Create the Experiment; returns its name.

    Args:
        katib: A ``KatibClient``.
        experiment: A ``V1beta1Experiment``; with ``unique`` its name gets a random suffix (in place),
            so re-running a pipeline never collides with the last run's Experiment.
        unique: Add the suffix.

    Raises:
        SubmissionError: The API server refused it or could not be reached.
    """
    if unique:
        experiment.metadata.name = f"{experiment.metadata.name[:33].rstrip('-')}-{secrets.token_hex(3)}"
    namespace, name = experiment.metadata.namespace, experiment.metadata.name
    try:
        katib.create_experiment(experiment, namespace=namespace)
    # The SDK raises bare Exception for a name clash, RuntimeError/TimeoutError otherwise.
    except Exception as error:  # noqa: BLE001 - re-raised typed, with the SDK's message
        raise SubmissionError(f"could not create Experiment {namespace}/{name}: {error}") from error
    log.info("created Katib Experiment %s/%s", namespace, name)
    return name


def _condition(experiment, kind: str):
    conditions = (experiment.status.conditions if experiment.status else None) or []
    return next((c for c in conditions if c.type == kind and c.status == "True"), None)


def _trial_counts(experiment) -> dict:
    status = experiment.status
    if status is None:
        return {}
    names = ("trials", "trials_succeeded", "trials_running", "trials_pending", "trials_failed", "trials_killed",
             "trials_early_stopped", "trial_metrics_unavailable")
    return {name: getattr(status, name) or 0 for name in names if hasattr(status, name)}


def wait_for_experiment(katib, name: str, namespace: str, timeout_s: float, poll_interval_s: float,
                        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
    """Poll until the Experiment Succeeded; returns it.

    Raises:
        ExperimentFailed: It reached the Failed condition.
        ExperimentTimeout: ``timeout_s`` passed first.
        KatibError: The API server failed several polls in a row.
    """
    deadline = clock() + timeout_s
    errors = 0
    while True:
        remaining = deadline - clock()
        try:
            experiment = katib.get_experiment(name, namespace, timeout=max(1, int(min(60, remaining))))
            errors = 0
        except (RuntimeError, TimeoutError) as error:
            errors += 1
            if errors >= MAX_CONSECUTIVE_API_ERRORS:
                raise KatibError(f"lost Experiment {namespace}/{name}: {error}") from error
            log.warning("polling %s/%s failed (%s); retrying", namespace, name, error)
        else:
            failed = _condition(experiment, "Failed")
            if failed is not None:
                raise ExperimentFailed(f"Experiment {namespace}/{name} failed ({failed.reason}): {failed.message}; "
                                       f"trials {_trial_counts(experiment)}")
            if _condition(experiment, "Succeeded") is not None:
                return experiment
            log.info("Experiment %s/%s running: %s", namespace, name, _trial_counts(experiment))
        if clock() + poll_interval_s > deadline:
            raise ExperimentTimeout(f"Experiment {namespace}/{name} still running after {timeout_s:g} s")
        sleep(poll_interval_s)


def _typed(name: str, text: str):
    """A Katib assignment (always a string) as the config field's type."""
    annotation = (TrainConfig.model_fields.get(name) or ModelConfig.model_fields[name]).annotation
    if annotation is int:
        return int(float(text))
    if annotation is float:
        return float(text)
    if annotation is bool:
        return text.lower() == "true"
    return text


def best_hyperparameters(experiment, spec: SweepSpec) -> tuple[dict, str, float | None]:
    """The optimal trial's settings with the sweep's fixed values, as ``sweep`` writes them locally.

    Returns:
        ``(hyperparameters, best trial name, objective value)``.

    Raises:
        ExperimentFailed: No trial reported the objective.
    """
    optimal = experiment.status.current_optimal_trial if experiment.status else None
    assignments = {a.name: a.value for a in (optimal.parameter_assignments or [])} if optimal else {}
    name = f"{experiment.metadata.namespace}/{experiment.metadata.name}"
    missing = sorted(set(searched_parameters(spec)) - set(assignments))
    if not optimal or not optimal.best_trial_name or missing:
        raise ExperimentFailed(f"Experiment {name} ended without a trial that reported {spec.metric.key} "
                               f"(trials {_trial_counts(experiment)})")
    metric = spec.metric.key
    reported = next((m for m in (optimal.observation.metrics or []) if m.name == metric), None) \
        if optimal.observation else None
    value = None
    if reported is not None:
        best = reported.max if spec.metric.goal == "maximize" else reported.min
        value = float(best if best not in (None, "") else reported.latest)
    fixed = {ALIASES.get(k, k): p.value for k, p in spec.parameters.items() if p.value is not None}
    hyperparameters = {**fixed, **{k: _typed(k, v) for k, v in assignments.items()},
                       "metric_for_best_model": metric, "greater_is_better": spec.metric.goal == "maximize"}
    return hyperparameters, optimal.best_trial_name, value


def katib_trial_config(base: KatibConfig, dataset: str, model, training, trials: int) -> KatibConfig:
    """``base`` with the dataset folder trial pods read, the trial budget, and the fixed settings.

    Args:
        base: Placement and budgets.
        dataset: Dataset folder as the pods see it (``s3://…``): ``train.parquet`` and ``tokenizer.json``.
        model: A ModelConfig whose fields every trial gets (the sweep's values win).
        training: A TrainConfig likewise (its device and selection metric are the sweep's to set).
        trials: Trials in total.
    """
    fixed = {**model.model_dump(mode="json"),
             **training.model_dump(mode="json", exclude={"device", "metric_for_best_model", "greater_is_better"})}
    fixed = {key: value for key, value in fixed.items() if value is not None}
    values = {**base.model_dump(), "train_path": f"{dataset.rstrip('/')}/train.parquet", "file_format": "parquet",
              "tokeniser_path": f"{dataset.rstrip('/')}/tokenizer.json", "max_trial_count": trials,
              "parallel_trial_count": min(base.parallel_trial_count, trials), "fixed": {**fixed, **base.fixed}}
    return KatibConfig(**values)


def run_experiment(spec: SweepSpec, config: KatibConfig, *, host: str | None = None, kubeconfig: str | None = None,
                   context: str | None = None, delete: bool = True, unique: bool = True,
                   katib=None) -> SweepResult:
    """Build, submit and wait for the sweep's Experiment; return the best trial's hyperparameters.

    Args:
        spec: The sweep.
        config: Placement, budgets and the wait's timeout and poll interval.
        host: API server URL instead of the kubeconfig (tests, ``kubectl proxy``).
        kubeconfig: Kubeconfig file.
        context: Kubeconfig context.
        delete: Delete the Experiment (and so its trials and their pods) afterwards, whatever the
            outcome: a timed-out search must not keep holding GPUs.
        unique: Suffix the name so repeated runs do not collide.
        katib: A ready ``KatibClient`` (else one is made from host/kubeconfig).

    Raises:
        SubmissionError, ExperimentFailed, ExperimentTimeout, KatibError: See :func:`submit` and
            :func:`wait_for_experiment`.
    """
    katib = katib or make_client(config.namespace, host, kubeconfig, context)
    experiment = build_experiment(spec, config)
    name = submit(katib, experiment, unique=unique)
    succeeded = False
    try:
        finished = wait_for_experiment(katib, name, config.namespace, config.timeout_s, config.poll_interval_s)
        hyperparameters, best_trial, value = best_hyperparameters(finished, spec)
        succeeded = True
    finally:
        if delete:
            try:
                katib.delete_experiment(name, namespace=config.namespace)
            except (RuntimeError, TimeoutError) as error:
                # After a failure, report that failure; a leftover Experiment is the lesser problem.
                if succeeded:
                    raise KatibError(f"could not delete Experiment {config.namespace}/{name}: {error}") from error
                log.warning("could not delete Experiment %s/%s: %s", config.namespace, name, error)
    return SweepResult(name, config.namespace, best_trial, spec.metric.key, value, hyperparameters,
                       _trial_counts(finished))
