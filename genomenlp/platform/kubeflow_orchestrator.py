"""The ``genomenlp_kubeflow`` orchestrator: compiles a ZenML snapshot to KFP v2 YAML, with or without uploading it.

:meth:`GenomeKubeflowOrchestrator.compile_snapshot` writes the YAML only (``genomenlp-pipeline compile``);
:meth:`GenomeKubeflowOrchestrator.submit_pipeline` compiles and uploads it as a run or a recurring run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import kfp
from kfp import dsl
from kfp.compiler import Compiler
from zenml.entrypoints import StepEntrypointConfiguration
from zenml.enums import ExecutionMode
from zenml.environment import Environment
from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import KubeflowOrchestratorSettings
from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import (
    ENV_KFP_RUN_ID,
    KubeflowOrchestrator,
)
from zenml.logger import get_logger
from zenml.orchestrators import SubmissionResult
from zenml.orchestrators.utils import get_orchestrator_run_name

from genomenlp.platform.kubeflow_environment import (
    ZENML_API_KEY_VARIABLE,
    kfp_cron,
    pod_environment,
    probe_endpoint,
    server_needs_credentials,
)
from genomenlp.platform.kubeflow_outputs import STEP_OUTPUTS, output_component
from genomenlp.platform.kubeflow_settings import (
    KFP_PASSWORD_ENV,
    GenomeKubeflowOrchestratorConfig,
    GenomeKubeflowOrchestratorSettings,
    place_task,
)

if TYPE_CHECKING:
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.models import PipelineRunResponse, PipelineSnapshotBase, PipelineSnapshotResponse
    from zenml.stack import Stack

logger = get_logger(__name__)


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

    def _plain_component(self, name: str, image: str, command: list[str], arguments: list[str]):
        """ZenML's container component of a step, with the arguments in :func:`output_component`'s order."""
        return self._create_dynamic_component(image, command, arguments, name)

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
        step_environments = {
            name: pod_environment(environment, self.config.pod_zenml_url)
            for name, environment in step_environments.items()
        }
        needs_key = server_needs_credentials()
        run_name = run_name or get_orchestrator_run_name(snapshot.pipeline_configuration.name).replace("_", "-")
        components = {}
        tasks: dict[str, dsl.PipelineTask] = {}
        for step_name in snapshot.step_configurations:
            # Steps with results run through a wrapper that also writes them as KFP output artifacts.
            create = output_component if step_name in STEP_OUTPUTS else self._plain_component
            components[step_name] = create(
                step_name,
                self.get_image(snapshot=snapshot, step_name=step_name),
                StepEntrypointConfiguration.get_entrypoint_command(),
                StepEntrypointConfiguration.get_entrypoint_arguments(step_name=step_name, snapshot_id=snapshot.id),
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
                settings = self._step_settings(step)
                if needs_key and not any(ZENML_API_KEY_VARIABLE in keys for keys in settings.secret_env.values()):
                    raise ValueError(
                        f"step {step_name}: its pod would have no credentials for the ZenML server; add "
                        f"`zenml-api-key: [{ZENML_API_KEY_VARIABLE}]` to the stack's secret_env and create that "
                        "Secret from a service-account API key (k8s/README.md, step 2)"
                    )
                try:
                    place_task(task, step.config.resource_settings, settings)
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

    def _credentials(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Client arguments and login settings for the Kubeflow endpoint, from the stack and the environment.

        Returns:
            ``(client_args, settings updates)`` to merge into the run's settings.

        Raises:
            ValueError: A credential the stack names is missing from the environment.
        """
        config = self.config
        client_args: dict[str, Any] = {}
        updates: dict[str, Any] = {}
        if config.kfp_token_env:
            token = os.environ.get(config.kfp_token_env)
            if not token:
                raise ValueError(f"kfp_token_env: ${config.kfp_token_env} is empty; export the Kubeflow token in it")
            client_args["existing_token"] = token
        if config.kfp_ca_cert:
            client_args["ssl_ca_cert"] = config.kfp_ca_cert
        if config.kfp_username:
            password = os.environ.get(KFP_PASSWORD_ENV)
            if not password:
                raise ValueError(f"kfp_username {config.kfp_username}: export its Dex password in ${KFP_PASSWORD_ENV}")
            updates = {"client_username": config.kfp_username, "client_password": password}
        return client_args, updates

    def preflight(self) -> None:
        """Fail in seconds, before ZenML creates a run, when the endpoint or its credentials are missing.

        Raises:
            ValueError: A credential is missing.
            KubeflowUnreachable: The endpoint does not answer.
        """
        client_args, _ = self._credentials()
        if self.config.kubeflow_hostname:
            probe_endpoint(self.config.kubeflow_hostname, client_args.get("existing_token"), self.config.kfp_ca_cert)

    def _get_kfp_client(self, settings: KubeflowOrchestratorSettings) -> kfp.Client:
        """A KFP client authenticated as the stack says (bearer token, Dex login or CA bundle).

        Args:
            settings: The run's orchestrator settings.

        Returns:
            The client.
        """
        client_args, updates = self._credentials()
        if self.config.kubeflow_hostname:
            probe_endpoint(self.config.kubeflow_hostname, client_args.get("existing_token"), self.config.kfp_ca_cert)
        merged = {**settings.client_args, **client_args}
        return super()._get_kfp_client(settings.model_copy(update={**updates, "client_args": merged}))

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
