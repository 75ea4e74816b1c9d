"""``genomenlp_kubeflow``: ZenML's Kubeflow orchestrator with per-step placement and compile-only output.

ZenML 0.98's ``KubeflowOrchestrator`` loses the placement a pipeline's YAML asks for:

* its settings validator always rebuilds ``pod_settings`` from the legacy ``node_selectors`` key,
  so a step's own node selectors and tolerations are replaced by empty ones;
* it hands ``ResourceSettings(memory=...)`` to KFP as a float, which KFP rejects (``TypeError``);
* it emits a GPU only when a node selector is literally named ``accelerator``, uses that label's
  value as the resource name, and applies one step's constraint to every step;
* it hands a five-field cron expression to Kubeflow, whose parser takes seconds first, so
  ``0 2 * * *`` would run at minute 2 of every hour;
* it logs a failed upload as a warning and reports the run as submitted.

This flavor subclasses it, fixes those, and adds what a cluster run of this project needs:

* :meth:`GenomeKubeflowOrchestrator.compile_snapshot` writes the KFP v2 YAML of a ZenML snapshot
  without uploading it (``genomenlp-pipeline compile``; no cluster, no Docker, no ZenML server);
* ``image``: the project image built from the ``Dockerfile`` and pushed outside ZenML, so the
  client never builds one;
* ``secret_env``: Kubernetes Secrets whose keys become each step's environment, so S3 and ZenML
  credentials live in the cluster and never in a compiled YAML;
* ``service_account``: the Kubernetes identity of the run's pods (``k8s/rbac.yaml``).

Placement comes from each step's settings in the pipeline's YAML: ``resources`` (``cpu_count``
and ``memory`` become requests, ``gpu_count`` a limit of ``gpu_resource``) and
``orchestrator.genomenlp_kubeflow.pod_settings`` (node selectors, tolerations, CPU/memory limits,
labels, annotations, image pull secrets).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from kfp import dsl
from kfp import kubernetes as kfp_k8s
from kfp.compiler import Compiler
from pydantic import Field, model_validator
from zenml.entrypoints import StepEntrypointConfiguration
from zenml.enums import ExecutionMode
from zenml.environment import Environment
from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import (
    KubeflowOrchestratorConfig,
    KubeflowOrchestratorFlavor,
    KubeflowOrchestratorSettings,
)
from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import (
    ENV_KFP_RUN_ID,
    KubeflowOrchestrator,
)
from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings
from zenml.logger import get_logger
from zenml.orchestrators import SubmissionResult
from zenml.orchestrators.utils import get_orchestrator_run_name

if TYPE_CHECKING:
    from zenml.config import ResourceSettings
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.models import PipelineRunResponse, PipelineSnapshotBase, PipelineSnapshotResponse
    from zenml.stack import Stack

logger = get_logger(__name__)

FLAVOR_NAME = "genomenlp_kubeflow"
# What `zenml orchestrator flavor register` needs: the class path from the source root.
FLAVOR_SOURCE = f"{__name__}.GenomeKubeflowOrchestratorFlavor"
# The key a pipeline YAML puts this flavor's settings under (per step or for the whole pipeline).
SETTINGS_KEY = f"orchestrator.{FLAVOR_NAME}"

# Pod settings with a KFP platform-config equivalent; any other field is refused, not dropped.
SUPPORTED_POD_FIELDS = frozenset(
    {"node_selectors", "tolerations", "resources", "labels", "annotations", "image_pull_secrets"}
)
# Environment variables that carry credentials: a compiled YAML written to disk never holds them.
_CREDENTIAL_NAME = re.compile(r"(^|_)(API_KEY|API_TOKEN|TOKEN|PASSWORD|SECRET)(_|$)", re.IGNORECASE)


def kfp_cron(expression: str) -> str:
    """A ZenML (standard, five-field) cron expression in Kubeflow's six-field form.

    Kubeflow's scheduler reads a leading seconds field and an optional day-of-week, so a
    five-field ``0 2 * * *`` handed over unchanged means "minute 2 of every hour", not 02:00.
    ZenML passes it through as written; here a five-field expression gets ``0`` seconds in front.

    Args:
        expression: Five fields (minute hour day month weekday), or six with seconds first.

    Returns:
        The six-field expression.

    Raises:
        ValueError: Neither five nor six fields.
    """
    fields = expression.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise ValueError(f"cron expression {expression!r} must have 5 fields (or 6 with seconds first)")


class GenomeKubeflowOrchestratorSettings(KubeflowOrchestratorSettings):
    """Per-run and per-step settings (``settings.orchestrator.genomenlp_kubeflow`` in a pipeline YAML)."""

    gpu_resource: str = Field(
        "nvidia.com/gpu",
        description="Extended resource that `resources.gpu_count` asks for (the device plugin's name).",
    )
    secret_env: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Kubernetes Secret name → keys; each key becomes the environment variable of the same "
        "name in every step pod (e.g. s3-credentials: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]).",
    )
    service_account: str | None = Field(
        None, description="Service account of the run's pods (None: the Kubeflow profile's default)."
    )

    # Same name as the parent's validator, so it replaces it (pydantic keys validators by name).
    @model_validator(mode="before")
    @classmethod
    def _validate_and_migrate_pod_settings(cls, data: Any) -> Any:
        """Keep given ``pod_settings``; build them from the legacy ``node_selectors`` only when it is used.

        ZenML 0.98 overwrites ``pod_settings`` unconditionally, which is what loses every step's
        node selectors and tolerations.

        Raises:
            ValueError: Legacy keys beside ``pod_settings``, node affinity (KFP has no field for it),
                or a username without a password.
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("node_affinity"):
            raise ValueError(f"node_affinity is not supported with {FLAVOR_NAME}; use pod_settings.node_selectors")
        data.pop("node_affinity", None)
        if legacy := data.pop("node_selectors", None):
            if data.get("pod_settings"):
                raise ValueError("give node_selectors inside pod_settings, not beside it")
            data["pod_settings"] = KubernetesPodSettings(node_selectors=legacy)
        if (data.get("client_username") is None) != (data.get("client_password") is None):
            raise ValueError("`client_username` and `client_password` both need to be set together.")
        return data


class GenomeKubeflowOrchestratorConfig(KubeflowOrchestratorConfig, GenomeKubeflowOrchestratorSettings):
    """Stack-component configuration: ZenML's Kubeflow fields, this flavor's settings and the image."""

    image: str | None = Field(
        None,
        description="Pre-built project image every step runs (Dockerfile, pushed to the registry); "
        "None lets ZenML build one with the stack's image builder.",
    )


def _placement_problems(pod: KubernetesPodSettings) -> list[str]:
    """Pod settings this flavor cannot express in KFP, as messages (empty: all supported)."""
    problems = [
        f"pod_settings.{name} is not supported with {FLAVOR_NAME}"
        for name in sorted(pod.model_fields_set - SUPPORTED_POD_FIELDS)
        if getattr(pod, name)
    ]
    unknown = sorted(set(pod.resources) - {"limits"})
    if unknown:
        problems.append(
            f"pod_settings.resources.{unknown[0]}: only `limits` go here; requests and GPUs are "
            "`resources:` settings (cpu_count, memory, gpu_count)"
        )
    extra_limits = sorted(set(pod.resources.get("limits", {})) - {"cpu", "memory"})
    if extra_limits:
        problems.append(f"pod_settings.resources.limits.{extra_limits[0]}: only cpu and memory limits go here")
    return problems


def place_task(
    task: dsl.PipelineTask,
    resources: ResourceSettings,
    settings: GenomeKubeflowOrchestratorSettings,
) -> dsl.PipelineTask:
    """Apply one step's resources, placement and secret environment to its KFP task.

    Args:
        task: The step's task in the KFP pipeline.
        resources: The step's ``resources`` settings: CPU and memory requests, GPU count.
        settings: The step's settings of this flavor (pod settings, GPU resource, secrets).

    Returns:
        The same task.

    Raises:
        ValueError: The settings ask for something KFP cannot express (a pod setting without a KFP
            equivalent, or a GPU count KFP does not accept).
    """
    from zenml.integrations.kubernetes.kube_utils import convert_resource_settings_to_k8s_format

    # ZenML's own conversion, as its Kubernetes orchestrator uses: CPU "4"/"500m", memory in Mi.
    requests, _, _ = convert_resource_settings_to_k8s_format(resources)
    if "cpu" in requests:
        task.set_cpu_request(requests["cpu"])
    if "memory" in requests:
        task.set_memory_request(requests["memory"])
    if resources.gpu_count:
        # KFP's backend turns an accelerator type + count into a container limit of that resource.
        task.set_accelerator_type(settings.gpu_resource).set_accelerator_limit(resources.gpu_count)

    pod = settings.pod_settings
    if pod is not None:
        problems = _placement_problems(pod)
        if problems:
            raise ValueError("; ".join(problems))
        limits = pod.resources.get("limits", {})
        if "cpu" in limits:
            task.set_cpu_limit(str(limits["cpu"]))
        if "memory" in limits:
            task.set_memory_limit(str(limits["memory"]))
        for key, value in pod.node_selectors.items():
            kfp_k8s.add_node_selector(task, label_key=key, label_value=value)
        for toleration in pod.tolerations:
            kfp_k8s.add_toleration(
                task,
                key=toleration.get("key"),
                operator=toleration.get("operator"),
                value=toleration.get("value"),
                effect=toleration.get("effect"),
                # ZenML stores Kubernetes objects camelCased; YAML written by hand may use snake_case.
                toleration_seconds=toleration.get("toleration_seconds", toleration.get("tolerationSeconds")),
            )
        for key, value in pod.labels.items():
            kfp_k8s.add_pod_label(task, key, value)
        for key, value in pod.annotations.items():
            kfp_k8s.add_pod_annotation(task, key, value)
        if pod.image_pull_secrets:
            kfp_k8s.set_image_pull_secrets(task, list(pod.image_pull_secrets))
    for secret, keys in settings.secret_env.items():
        kfp_k8s.use_secret_as_env(task, secret_name=secret, secret_key_to_env={key: key for key in keys})
    return task


class GenomeKubeflowOrchestrator(KubeflowOrchestrator):
    """Kubeflow orchestrator that honours each step's placement and can compile without uploading."""

    @property
    def config(self) -> GenomeKubeflowOrchestratorConfig:
        """The component's configuration."""
        return cast(GenomeKubeflowOrchestratorConfig, self._config)

    @property
    def settings_class(self) -> type[GenomeKubeflowOrchestratorSettings]:
        """Settings a pipeline or step may give under ``orchestrator.genomenlp_kubeflow``."""
        return GenomeKubeflowOrchestratorSettings

    @property
    def supported_execution_modes(self) -> list[ExecutionMode]:
        """ZenML's ``stop_on_failure`` besides the parent's ``continue_on_failure``.

        Argo, which runs a KFP pipeline's DAG, schedules no further task once one fails (its DAG
        ``failFast`` default) and lets running ones finish: ``stop_on_failure``. It cannot stop
        running siblings, so ``fail_fast`` (the local configs' mode) is refused rather than
        pretended; the cluster configs say ``execution_mode: stop_on_failure``.
        """
        return [ExecutionMode.STOP_ON_FAILURE, ExecutionMode.CONTINUE_ON_FAILURE]

    def get_docker_builds(self, snapshot: PipelineSnapshotBase) -> list[BuildConfiguration]:
        """No builds when the stack names a pre-built image; otherwise ZenML's builds.

        Args:
            snapshot: The pipeline snapshot.

        Returns:
            The builds ZenML must make before the run.
        """
        if self.config.image:
            return []
        return super().get_docker_builds(snapshot)

    def get_image(self, snapshot: PipelineSnapshotResponse, step_name: str | None = None) -> str:
        """The image a step runs: the configured project image, else the snapshot's build.

        Args:
            snapshot: The pipeline snapshot.
            step_name: The step (None: the pipeline image).

        Returns:
            The image reference.
        """
        if self.config.image:
            return self.config.image
        return KubeflowOrchestrator.get_image(snapshot=snapshot, step_name=step_name)

    def _step_settings(self, step: Any) -> GenomeKubeflowOrchestratorSettings:
        return cast(GenomeKubeflowOrchestratorSettings, self.get_settings(step))

    def compile_snapshot(
        self,
        snapshot: PipelineSnapshotResponse,
        step_environments: dict[str, dict[str, str]],
        path: str | os.PathLike,
        run_name: str | None = None,
    ) -> Path:
        """Write the KFP v2 pipeline YAML of ``snapshot``: one container task per step.

        Args:
            snapshot: The ZenML snapshot; each task runs its step with ``--snapshot_id``.
            step_environments: Environment variables per step name.
            path: The YAML file to write (its folder is created).
            run_name: Name of the KFP pipeline (default: derived from the pipeline's name).

        Returns:
            The written file.

        Raises:
            ValueError: A step's placement cannot be expressed in KFP (names the step), or the
                pipeline's execution mode is not one KFP provides.
        """
        # The check ZenML makes before a run, so a compiled YAML never promises a mode KFP lacks.
        self._validate_execution_mode(snapshot)
        run_name = run_name or get_orchestrator_run_name(snapshot.pipeline_configuration.name).replace("_", "-")
        components = {}
        tasks: dict[str, dsl.PipelineTask] = {}
        for step_name in snapshot.step_configurations:
            components[step_name] = self._create_dynamic_component(
                self.get_image(snapshot=snapshot, step_name=step_name),
                StepEntrypointConfiguration.get_entrypoint_command(),
                StepEntrypointConfiguration.get_entrypoint_arguments(step_name=step_name, snapshot_id=snapshot.id),
                step_name,
            )

        # No return annotation: with postponed annotations KFP would read the string "None" as an output.
        @dsl.pipeline(
            display_name=run_name,
            description=f"ZenML pipeline {snapshot.pipeline_configuration.name}, snapshot {snapshot.id}",
        )
        def zenml_pipeline():
            # The snapshot's steps in dependency order, each placed by its own settings.
            for step_name, component in components.items():
                step = snapshot.step_configurations[step_name]
                task = (
                    component()
                    .set_display_name(name=step_name)
                    .set_caching_options(enable_caching=False)
                    .set_env_variable(name=ENV_KFP_RUN_ID, value=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
                    .after(*(tasks[name] for name in step.spec.upstream_steps))
                )
                for key, value in step_environments.get(step_name, {}).items():
                    task.set_env_variable(name=key, value=value)
                try:
                    place_task(task, step.config.resource_settings, self._step_settings(step))
                except ValueError as error:
                    raise ValueError(f"step {step_name}: {error}") from None
                tasks[step_name] = task

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Compiler().compile(pipeline_func=zenml_pipeline, package_path=str(path), pipeline_name=run_name)
        logger.info("Wrote the Kubeflow pipeline to `%s`.", path)
        return path

    def submit_pipeline(
        self,
        snapshot: PipelineSnapshotResponse,
        stack: Stack,
        base_environment: dict[str, str],
        step_environments: dict[str, dict[str, str]],
        placeholder_run: PipelineRunResponse | None = None,
    ) -> SubmissionResult | None:
        """Compile the snapshot and upload it as a run, or as a recurring run when it has a schedule.

        Args:
            snapshot: The pipeline snapshot to submit.
            stack: The stack it runs on.
            base_environment: Environment shared by all steps (already part of each step's).
            step_environments: Environment per step.
            placeholder_run: The run ZenML created for this submission, if any.

        Returns:
            A waiter for synchronous runs, else None.

        Raises:
            RuntimeError: Inside a notebook (the image cannot contain notebook code).
        """
        if Environment.in_notebook():
            raise RuntimeError("The Kubeflow orchestrator cannot run pipelines from a notebook.")
        run_name = get_orchestrator_run_name(snapshot.pipeline_configuration.name).replace("_", "-")
        path = self.compile_snapshot(
            snapshot, step_environments, Path(self.pipeline_directory) / f"{run_name}.yaml", run_name
        )
        return self._upload_and_run_pipeline(snapshot=snapshot, pipeline_file_path=str(path), run_name=run_name)

    def _upload_and_run_pipeline(
        self, snapshot: PipelineSnapshotResponse, pipeline_file_path: str, run_name: str
    ) -> SubmissionResult | None:
        """Upload the compiled pipeline: a one-off run, or a recurring run for a scheduled snapshot.

        Unlike ZenML's, an API or connection error propagates, so ZenML marks the run failed
        instead of waiting for a run that was never created.

        Args:
            snapshot: The pipeline snapshot (its schedule decides one-off or recurring).
            pipeline_file_path: The compiled YAML.
            run_name: Name of the KFP run or recurring run.

        Returns:
            A waiter for synchronous one-off runs, else None.
        """
        settings = cast(GenomeKubeflowOrchestratorSettings, self.get_settings(snapshot))
        client = self._get_kfp_client(settings=settings)
        namespace = settings.user_namespace
        pipeline_name = snapshot.pipeline_configuration.name
        schedule = snapshot.schedule
        if schedule:
            try:
                experiment = client.get_experiment(experiment_name=pipeline_name, namespace=namespace)
            except ValueError:  # kfp's "no experiment with this name"
                experiment = client.create_experiment(pipeline_name, namespace=namespace)
            recurring = client.create_recurring_run(
                experiment_id=experiment.experiment_id,
                job_name=run_name,
                pipeline_package_path=pipeline_file_path,
                enable_caching=False,
                cron_expression=kfp_cron(schedule.cron_expression) if schedule.cron_expression else None,
                start_time=schedule.utc_start_time,
                end_time=schedule.utc_end_time,
                interval_second=int(schedule.interval_second.total_seconds()) if schedule.interval_second else None,
                no_catchup=not schedule.catchup,
                service_account=settings.service_account,
            )
            logger.info(
                "Created recurring run `%s` (%s) in experiment `%s`.",
                recurring.recurring_run_id,
                kfp_cron(schedule.cron_expression) if schedule.cron_expression else f"every {schedule.interval_second}",
                pipeline_name,
            )
            return None
        result = client.create_run_from_pipeline_package(
            pipeline_file_path,
            arguments={},
            run_name=run_name,
            enable_caching=False,
            namespace=namespace,
            service_account=settings.service_account,
        )
        logger.info("Started Kubeflow run `%s`.", result.run_id)
        if not settings.synchronous:
            return None
        return SubmissionResult(
            wait_for_completion=lambda: client.wait_for_run_completion(run_id=result.run_id, timeout=settings.timeout)
        )


class GenomeKubeflowOrchestratorFlavor(KubeflowOrchestratorFlavor):
    """The ``genomenlp_kubeflow`` orchestrator flavor (register with ``genomenlp-pipeline stack``)."""

    @property
    def name(self) -> str:
        """The flavor's name."""
        return FLAVOR_NAME

    @property
    def config_class(self) -> type[GenomeKubeflowOrchestratorConfig]:
        """The component configuration class."""
        return GenomeKubeflowOrchestratorConfig

    @property
    def implementation_class(self) -> type[GenomeKubeflowOrchestrator]:
        """The orchestrator class."""
        return GenomeKubeflowOrchestrator


def workload_environments(snapshot: PipelineSnapshotResponse, stack: Stack) -> dict[str, dict[str, str]]:
    """Environment of each step's pod for a compiled YAML, without any credential.

    ZenML's run path adds a workload API token scoped to one run; a YAML compiled for later use
    gets none (the pods read credentials from ``secret_env`` instead), so nothing secret is written.

    Args:
        snapshot: The snapshot being compiled.
        stack: The stack it is compiled for.

    Returns:
        Environment variables per step name.
    """
    from zenml.orchestrators.utils import get_config_environment_vars
    from zenml.utils.env_utils import get_runtime_environment

    base, _credentials = get_config_environment_vars()
    base = {key: value for key, value in base.items() if not _CREDENTIAL_NAME.search(key)}
    return {
        name: {**base, **get_runtime_environment(config=step.config, stack=stack)}
        for name, step in snapshot.step_configurations.items()
    }
