"""Settings of the ``genomenlp_kubeflow`` flavor and how they place one step's KFP task.

A step's ``resources`` and ``orchestrator.genomenlp_kubeflow`` settings in a pipeline YAML become
CPU/memory requests and limits, a GPU limit, node selectors, tolerations, pod metadata and secret
environment on its task (:func:`place_task`); what KFP cannot express is refused, not dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kfp import dsl
from kfp import kubernetes as kfp_k8s
from pydantic import Field, model_validator
from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import (
    KubeflowOrchestratorConfig,
    KubeflowOrchestratorSettings,
)
from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings

if TYPE_CHECKING:
    from zenml.config import ResourceSettings

FLAVOR_NAME = "genomenlp_kubeflow"
# The key a pipeline YAML puts this flavor's settings under (per step or for the whole pipeline).
SETTINGS_KEY = f"orchestrator.{FLAVOR_NAME}"
# The Dex password of `kfp_username`: read when submitting, never stored with the stack.
KFP_PASSWORD_ENV = "KFP_PASSWORD"

# Pod settings with a KFP platform-config equivalent; any other field is refused, not dropped.
SUPPORTED_POD_FIELDS = frozenset(
    {"node_selectors", "tolerations", "resources", "labels", "annotations", "image_pull_secrets"}
)


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
    pod_zenml_url: str | None = Field(
        None,
        description="ZenML server URL as the step pods reach it (e.g. an in-cluster service); None: the URL "
        "the submitting client uses.",
    )
    # How `submit` authenticates to a protected Kubeflow Pipelines endpoint. Only names and paths are
    # stored here: the token and the password are read from the submitting shell's environment.
    kfp_token_env: str | None = Field(
        None,
        description="Environment variable holding a bearer token for the Kubeflow Pipelines API (e.g. from "
        "`kubectl create token`, or an oauth2-proxy/OIDC ID token); sent as `Authorization: Bearer`.",
    )
    kfp_username: str | None = Field(
        None,
        description="Dex user of a multi-user Kubeflow (its login form); the password comes from the "
        f"environment variable {KFP_PASSWORD_ENV}.",
    )
    kfp_ca_cert: str | None = Field(None, description="CA bundle that signed the Kubeflow endpoint's certificate.")


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
