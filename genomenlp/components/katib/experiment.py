"""A sweep JSON as a Katib ``Experiment``, built from the Katib and Kubernetes SDK models.

Mapping:

* method → algorithm: random → ``random``, grid → ``grid``, bayes → ``tpe`` (hyperopt's TPE) or
  ``bayesianoptimization`` (skopt's Gaussian process), chosen by ``KatibConfig.bayes_algorithm``.
* metric → objective: ``eval/f1`` → ``eval_f1`` with ``maximize``/``minimize``; the objective
  keeps each trial's best epoch (strategy max/min), as ``train`` does when it picks its checkpoint.
* parameters → feasible spaces: ``values`` lists → ``discrete`` (numbers) or ``categorical``;
  ``min``/``max`` → ``int`` or ``double`` after the type of the config field they set, with
  ``log_uniform_values`` → ``distribution: logUniform`` and ``q_uniform`` → ``step``. A fixed
  ``value`` is no search dimension: it becomes a fixed flag of the trial command.
* early_terminate hyperband → Katib's ``medianstop`` early stopping, not Katib's ``hyperband``
  algorithm. Katib's hyperband replaces the search algorithm (it samples at random only), needs
  the epoch count as a searched parameter it overrides, and ties ``parallelTrialCount`` to its
  bracket sizes; medianstop composes with random, grid and bayes and with any trial budget, and
  stops a trial whose best objective after ``start_step`` epochs falls below the mean of finished
  trials, which is hyperband's first-rung decision. ``min_iter`` (epochs every trial gets) →
  ``start_step``; ``eta`` (hyperband compares eta trials to keep one) → ``min_trials_required``;
  ``max_iter`` has no counterpart (the epochs parameter bounds trials).

Parameter names, trial parameter names and the trial's flags are the TrainConfig/ModelConfig field
names, so ``${trialParameters.learning_rate}`` fills ``--learning_rate`` and the best trial's
assignments are ready for ``train -w``.
"""

from __future__ import annotations

import math
import re

import yaml
from kubeflow.katib import ApiClient, models
from kubernetes import client as k8s

from genomenlp.components.errors import InputError
from genomenlp.components.katib.config import GPU_RESOURCE, KatibConfig
from genomenlp.components.search.spec import ALIASES, Distribution, Method, Parameter, SweepSpec
from genomenlp.components.training.config import ModelConfig, TrainConfig

API_VERSION = "kubeflow.org/v1beta1"
PRIMARY_CONTAINER = "train"
TRIAL_COMMAND = "train"
# Katib's StdOut collector default (pkg/metricscollector/v1beta1/common/const.go).
KATIB_DEFAULT_METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
# Ours: a whole line ``name=value`` as ``train`` prints it, optionally after an RFC 3339 timestamp
# (which Katib uses to order values for early stopping). Anchoring keeps a stray ``x=1`` inside a
# warning from being read as a metric; the value needs a digit so ``eval_loss=nan`` is skipped.
METRICS_FORMAT = r"^(?:\d{4}-\d\d-\d\dT\S+\s+)?([\w-]+)=([+-]?(?:\d+\.?\d*|\.\d+)(?:[Ee][+-]?\d+)?)$"
# What ``train`` prints once per epoch (genomenlp/components/training/run.py::print_metric_lines).
REPORTED_METRICS = ("eval_f1", "eval_f1_macro", "eval_mcc", "eval_roc_auc", "eval_pr_auc", "eval_accuracy",
                    "eval_loss", "train_loss")
# Katib wraps the trial command in ``sh -c "<arguments joined by spaces>"`` to capture stdout, so an
# argument must not hold anything the shell splits or expands.
_SHELL_SAFE = re.compile(r"^[\w./:=@%+,-]+$")
# Istio sidecars never exit, which would keep a finished trial's Job running.
_POD_ANNOTATIONS = {"sidecar.istio.io/inject": "false"}
# The image's user (Dockerfile: useradd --uid 10001).
IMAGE_UID = 10001


def _field(name: str):
    return TrainConfig.model_fields.get(name) or ModelConfig.model_fields[name]


def _value_text(value: float | int | str | bool) -> str:
    """A value as Katib (strings everywhere) and ``train``'s flags read it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(getattr(value, "value", value))


def experiment_name(spec: SweepSpec, config: KatibConfig) -> str:
    """A DNS-1035 label of at most 40 characters (Katib's limit: it names services after it)."""
    raw = (config.name or spec.name).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:40].rstrip("-")
    if not name:
        raise InputError("name", f"{raw!r} leaves no letters for a Kubernetes name; set KatibConfig.name")
    return name


def _katib_parameter(field: str, parameter: Parameter) -> models.V1beta1ParameterSpec:
    if parameter.values is not None:
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in parameter.values)
        return models.V1beta1ParameterSpec(
            name=field, parameter_type="discrete" if numeric else "categorical",
            feasible_space=models.V1beta1FeasibleSpace(list=[_value_text(v) for v in parameter.values]))
    # The config field's type decides int vs double, so a log range over batch sizes stays integral.
    integer = _field(field).annotation is int or parameter.distribution is Distribution.INT_UNIFORM
    bounds = []
    for bound in (parameter.min, parameter.max):
        if integer and not float(bound).is_integer():
            raise InputError(f"parameters.{field}", f"bound {bound} of an integer setting is not a whole number")
        bounds.append(str(int(bound)) if integer else _value_text(float(bound)))
    space = models.V1beta1FeasibleSpace(min=bounds[0], max=bounds[1])
    if parameter.distribution is Distribution.LOG_UNIFORM_VALUES:
        space.distribution = "logUniform"
    if parameter.distribution is Distribution.Q_UNIFORM and parameter.q:
        space.step = str(int(parameter.q)) if integer else _value_text(float(parameter.q))
    return models.V1beta1ParameterSpec(name=field, parameter_type="int" if integer else "double",
                                       feasible_space=space)


def searched_parameters(spec: SweepSpec) -> dict[str, Parameter]:
    """Searched parameters by config field name (fixed ``value`` entries left out)."""
    return {ALIASES.get(name, name): p for name, p in spec.parameters.items() if p.value is None}


def fixed_settings(spec: SweepSpec, config: KatibConfig) -> dict:
    """Settings every trial gets: ``KatibConfig.fixed`` with the sweep's fixed values on top."""
    settings = dict(config.fixed)
    settings.update({ALIASES.get(name, name): p.value for name, p in spec.parameters.items() if p.value is not None})
    for name in searched_parameters(spec):
        settings.pop(name, None)
    return settings


def _flag(name: str, value) -> str:
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no-{name}"
    return f"--{name}={_value_text(value)}"


def trial_command(spec: SweepSpec, config: KatibConfig) -> list[str]:
    """The trial container's command: ``train`` with fixed flags and ``${trialParameters.…}`` ones.

    Raises:
        InputError: A path or fixed value would be split or expanded by the shell Katib adds.
    """
    command = [TRIAL_COMMAND, config.train_path, config.file_format, config.tokeniser_path,
               "-t", config.test, "-v", config.valid, "-o", config.output_dir,
               f"--device={'cuda' if config.gpus else 'cpu'}", "--no_register", "--no_progress",
               # A collapsed trial exits non-zero: Katib counts it failed and never makes it the optimal trial.
               "--fail_on_collapse",
               f"--metric_for_best_model={spec.metric.key}",
               _flag("greater_is_better", spec.metric.goal == "maximize")]
    command += [_flag(name, value) for name, value in sorted(fixed_settings(spec, config).items())]
    for argument in command:
        if not _SHELL_SAFE.match(argument):
            raise InputError("KatibConfig", f"trial argument {argument!r} holds characters the shell that Katib "
                             "wraps the command in would split or expand")
    command += [f"--{name}=${{trialParameters.{name}}}" for name in searched_parameters(spec)]
    return command


def _trial_job(spec: SweepSpec, config: KatibConfig) -> k8s.V1Job:
    limits = {"memory": config.memory}
    if config.gpus:
        limits[GPU_RESOURCE] = str(config.gpus)
    env = env_from = None
    if config.s3_endpoint_url:
        env = [k8s.V1EnvVar(name="AWS_ENDPOINT_URL", value=config.s3_endpoint_url)]
    if config.s3_secret:
        env_from = [k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=config.s3_secret))]
    container = k8s.V1Container(
        name=PRIMARY_CONTAINER, image=config.image, image_pull_policy=config.image_pull_policy,
        command=trial_command(spec, config), env=env, env_from=env_from,
        resources=k8s.V1ResourceRequirements(requests={"cpu": config.cpu, "memory": config.memory}, limits=limits),
        # The restricted Pod Security profile's container fields; Katib copies them to its metrics-collector
        # sidecar when its katib-config sets init.controller.injectSecurityContext (k8s/README.md).
        security_context=k8s.V1SecurityContext(
            run_as_non_root=True, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, allow_privilege_escalation=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"])),
    )
    pod = k8s.V1PodSpec(
        containers=[container], restart_policy="Never", service_account_name=config.service_account,
        # Pod-wide, so Katib's injected sidecar runs under them too: its image has no user of its own (it
        # would run as root and fail runAsNonRoot), and sharing our uid lets it watch and, for early
        # stopping, signal the training process in the shared process namespace Katib sets up.
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")),
        # Trials read data and write results through S3 credentials, never the Kubernetes API.
        automount_service_account_token=False,
        node_selector=dict(config.node_selector) or None,
        tolerations=[k8s.V1Toleration(**t.model_dump(exclude_none=True)) for t in config.tolerations] or None,
    )
    return k8s.V1Job(
        api_version="batch/v1", kind="Job",
        # A failed trial is a data point for the search; retrying it would only spend the GPU twice.
        spec=k8s.V1JobSpec(backoff_limit=0, active_deadline_seconds=config.trial_timeout_s,
                           template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(annotations=_POD_ANNOTATIONS),
                                                          spec=pod)),
    )


def _objective(spec: SweepSpec, config: KatibConfig) -> models.V1beta1ObjectiveSpec:
    objective = spec.metric.key
    for name in [objective, *config.additional_metrics]:
        if name not in REPORTED_METRICS:
            raise InputError("metric.name" if name == objective else "KatibConfig.additional_metrics",
                             f"{name!r} is not a metric train reports; choose from {', '.join(REPORTED_METRICS)}")
    additional = [name for name in config.additional_metrics if name != objective]
    best = "max" if spec.metric.goal == "maximize" else "min"
    strategies = [models.V1beta1MetricStrategy(name=objective, value=best)]
    strategies += [models.V1beta1MetricStrategy(name=name, value="min" if name.endswith("loss") else "max")
                   for name in additional]
    return models.V1beta1ObjectiveSpec(type=spec.metric.goal, objective_metric_name=objective,
                                       additional_metric_names=additional or None, metric_strategies=strategies)


def _algorithm(spec: SweepSpec, config: KatibConfig) -> models.V1beta1AlgorithmSpec:
    name = {Method.RANDOM: "random", Method.GRID: "grid", Method.BAYES: config.bayes_algorithm}[spec.method]
    settings = None
    # Katib's optuna-backed grid enumerates the grid and takes no seed.
    if config.random_state is not None and spec.method is not Method.GRID:
        settings = [models.V1beta1AlgorithmSetting(name="random_state", value=str(config.random_state))]
    return models.V1beta1AlgorithmSpec(algorithm_name=name, algorithm_settings=settings)


def _early_stopping(spec: SweepSpec) -> models.V1beta1EarlyStoppingSpec | None:
    rule = spec.early_terminate
    if rule is None:
        return None
    return models.V1beta1EarlyStoppingSpec(algorithm_name="medianstop", algorithm_settings=[
        models.V1beta1EarlyStoppingSetting(name="min_trials_required", value=str(rule.eta)),
        models.V1beta1EarlyStoppingSetting(name="start_step", value=str(rule.min_iter)),
    ])


def build_experiment(spec: SweepSpec, config: KatibConfig) -> models.V1beta1Experiment:
    """The Experiment for a sweep; budgets and placement come from ``config``.

    Raises:
        InputError: The sweep or the config cannot be expressed for Katib (one line).
    """
    searched = searched_parameters(spec)
    if not searched:
        raise InputError("parameters", "nothing to search: every parameter has a fixed value")
    max_trials = config.max_trial_count
    if spec.method is Method.GRID:
        # Katib's grid stops when the grid is exhausted; a larger budget would only wait for trials that never come.
        max_trials = min(max_trials, math.prod(len(p.values) for p in searched.values()))
    return models.V1beta1Experiment(
        api_version=API_VERSION, kind="Experiment",
        metadata=k8s.V1ObjectMeta(name=experiment_name(spec, config), namespace=config.namespace,
                                  labels={"app.kubernetes.io/part-of": "genomenlp"}),
        spec=models.V1beta1ExperimentSpec(
            objective=_objective(spec, config),
            algorithm=_algorithm(spec, config),
            early_stopping=_early_stopping(spec),
            parameters=[_katib_parameter(name, parameter) for name, parameter in searched.items()],
            max_trial_count=max_trials,
            parallel_trial_count=min(config.parallel_trial_count, max_trials),
            max_failed_trial_count=config.max_failed_trial_count,
            metrics_collector_spec=models.V1beta1MetricsCollectorSpec(
                collector=models.V1beta1CollectorSpec(kind="StdOut"),
                source=models.V1beta1SourceSpec(filter=models.V1beta1FilterSpec(metrics_format=[METRICS_FORMAT]))),
            trial_template=models.V1beta1TrialTemplate(
                primary_container_name=PRIMARY_CONTAINER,
                trial_parameters=[models.V1beta1TrialParameterSpec(name=name, reference=name,
                                                                   description=_field(name).description)
                                  for name in searched],
                trial_spec=_trial_job(spec, config)),
        ),
    )


def experiment_to_dict(experiment: models.V1beta1Experiment) -> dict:
    """The Experiment as the API server takes it (camelCase keys, no empty fields)."""
    return ApiClient().sanitize_for_serialization(experiment)


YAML_HEADER = ("# Generated by genomenlp/components/katib/experiment.py from a sweep JSON and a KatibConfig:\n"
               "# regenerate it (k8s/README.md) rather than edit it.\n")


def experiment_yaml(experiment: models.V1beta1Experiment) -> str:
    """The Experiment as a YAML manifest for ``kubectl apply -f``."""
    return YAML_HEADER + yaml.safe_dump(experiment_to_dict(experiment), sort_keys=False, width=120)
