"""The project's two ZenML stacks, registered from the repository rather than by hand.

* ``local``: ZenML's embedded default (local orchestrator, local artifact store, SQLite): what
  ``make run`` and the tests use.
* ``kubeflow``: the ``genomenlp_kubeflow`` orchestrator (:mod:`genomenlp.platform.kubeflow_flavor`), an
  S3 artifact store through s3fs, a container registry and an image builder, described by a small
  YAML (``genomenlp/pipelines/configs/stacks/kubeflow.yaml``) and registered with
  ``genomenlp-pipeline stack register-kubeflow``.

Credentials never come from a file in the repository: the S3 artifact store reads them from a
ZenML secret (created from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in the environment
when it does not exist yet) or, without one, from the environment of whatever process uses it;
step pods get theirs from Kubernetes Secrets (``secret_env``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genomenlp.components.errors import InputError, describe_validation_error
from genomenlp.components.object_store import S3_RETRIES

if TYPE_CHECKING:
    from zenml.client import Client
    from zenml.models import StackResponse

LOCAL_STACK = "local"
# Environment variables a new ZenML secret for the artifact store is made from.
AWS_KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


class KubeflowStackConfig(BaseModel):
    """The ``kubeflow`` stack: where Kubeflow, the bucket, the registry and the image are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("kubeflow", description="Stack name; its components are named <name>-orchestrator etc.")
    kubeflow_hostname: str | None = Field(
        None, description="Kubeflow Pipelines API, e.g. https://kubeflow.example.com/pipeline (multi-user).")
    kubernetes_context: str | None = Field(
        None, description="kubeconfig context of a single-user Kubeflow Pipelines (instead of the hostname).")
    kubeflow_namespace: str = Field("kubeflow", description="Namespace Kubeflow Pipelines is deployed in.")
    user_namespace: str | None = Field(None, description="Kubeflow profile namespace runs are created in.")
    service_account: str | None = Field("genomenlp-runner", description="Service account of the step pods.")
    image: str = Field(description="Project image the steps run (Dockerfile, built and pushed beforehand).")
    registry: str = Field(description="Container registry URI the image lives in, e.g. registry.example.com/genomenlp.")
    artifact_path: str = Field(description="ZenML artifact store root, s3://bucket/prefix.")
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, Ceph, ...); None for AWS S3 itself.")
    s3_region: str = Field("us-east-1", description="Region of the bucket.")
    s3_secret: str | None = Field(
        None, description="ZenML secret with aws_access_key_id/aws_secret_access_key for the artifact store; "
        "None: the AWS_* environment of the client and of the pods (secret_env).")
    secret_env: dict[str, list[str]] = Field(
        default_factory=lambda: {"s3-credentials": list(AWS_KEY_VARIABLES)},
        description="Kubernetes Secret → keys set as environment variables in every step pod.")
    synchronous: bool = Field(False, description="Wait for each submitted run to finish.")
    pod_zenml_url: str | None = Field(
        None, description="ZenML server URL as step pods reach it; None: the URL you are logged in to.")
    kfp_token_env: str | None = Field(
        None, description="Environment variable with a bearer token for a protected Kubeflow Pipelines API.")
    kfp_username: str | None = Field(
        None, description="Dex user for a multi-user Kubeflow; the password is read from $KFP_PASSWORD.")
    kfp_ca_cert: str | None = Field(None, description="CA bundle of the Kubeflow endpoint's TLS certificate.")

    @field_validator("artifact_path")
    @classmethod
    def _s3_path(cls, value: str) -> str:
        if not value.startswith("s3://") or len(value) <= len("s3://"):
            raise ValueError(f"{value!r} is not an s3://bucket[/prefix] path")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_way_to_kubeflow(self) -> KubeflowStackConfig:
        if (self.kubeflow_hostname is None) == (self.kubernetes_context is None):
            raise ValueError("give exactly one of kubeflow_hostname and kubernetes_context")
        return self


def load_stack_config(path: str | os.PathLike) -> KubeflowStackConfig:
    """Read and validate a stack YAML such as ``genomenlp/pipelines/configs/stacks/kubeflow.yaml``.

    Raises:
        InputError: A missing file, bad YAML, or an unknown or invalid field (one line).
    """
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), "no such stack configuration") from None
    except yaml.YAMLError as error:
        raise InputError(str(path), f"not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise InputError(str(path), "expected a mapping of stack settings")
    try:
        return KubeflowStackConfig(**values)
    except ValidationError as error:
        raise InputError(str(path), describe_validation_error(error)) from None


def s3_artifact_store_configuration(
    path: str, endpoint_url: str | None = None, region: str = "us-east-1", secret: str | None = None
) -> dict[str, Any]:
    """Configuration of a ZenML ``s3`` artifact store, with retries that outlast a server restart.

    Args:
        path: ``s3://bucket/prefix``.
        endpoint_url: S3-compatible endpoint; None for AWS (or ``AWS_ENDPOINT_URL`` from the environment).
        region: The bucket's region.
        secret: ZenML secret holding the keys; None reads them from the environment.

    Returns:
        The ``configuration`` mapping for ``Client.create_stack_component``.
    """
    client_kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        client_kwargs["endpoint_url"] = endpoint_url
    configuration: dict[str, Any] = {
        "path": path,
        "client_kwargs": client_kwargs,
        "config_kwargs": {"retries": dict(S3_RETRIES)},
    }
    if secret:
        configuration["authentication_secret"] = secret
    return configuration


def _upsert_component(client: Client, component_type, name: str, flavor: str, configuration: dict) -> None:
    """Create a stack component, or bring an existing one of the same name up to ``configuration``."""
    try:
        existing = client.get_stack_component(component_type, name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack_component(name, flavor, component_type, configuration)
        return
    if existing.flavor_name != flavor:
        raise InputError(name, f"exists as a {existing.flavor_name} {component_type.value}, not {flavor}")
    # None removes a key that a previous registration set (ZenML drops None values on update).
    stale = {key: None for key in existing.configuration if key not in configuration}
    client.update_stack_component(name, component_type, configuration={**stale, **configuration})


def _upsert_stack(client: Client, name: str, components: dict) -> StackResponse:
    try:
        client.get_stack(name, allow_name_prefix_match=False)
    except KeyError:
        return client.create_stack(name, components=components)
    return client.update_stack(name, component_updates=components)


def ensure_flavor(client: Client | None = None) -> None:
    """Register the ``genomenlp_kubeflow`` orchestrator flavor unless the store has it already."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    from genomenlp.platform.kubeflow_flavor import FLAVOR_NAME, FLAVOR_SOURCE

    client = client or Client()
    try:
        client.get_flavor_by_name_and_type(FLAVOR_NAME, StackComponentType.ORCHESTRATOR)
    except KeyError:
        client.create_flavor(source=FLAVOR_SOURCE, component_type=StackComponentType.ORCHESTRATOR)


def ensure_s3_secret(name: str, client: Client | None = None) -> None:
    """Make sure the ZenML secret ``name`` exists, creating it from the AWS_* environment if not.

    Raises:
        InputError: Neither the secret nor the environment variables exist.
    """
    from zenml.client import Client

    client = client or Client()
    try:
        client.get_secret(name, allow_partial_name_match=False, allow_partial_id_match=False)
        return
    except KeyError:
        pass
    missing = [variable for variable in AWS_KEY_VARIABLES if not os.environ.get(variable)]
    if missing:
        raise InputError(
            f"s3_secret {name}",
            f"no such ZenML secret, and {', '.join(missing)} not set to create it from; run "
            f"`zenml secret create {name} --aws_access_key_id=... --aws_secret_access_key=...`",
        )
    key, secret = (os.environ[variable] for variable in AWS_KEY_VARIABLES)
    client.create_secret(name, {"aws_access_key_id": key, "aws_secret_access_key": secret})


def register_kubeflow_stack(config: KubeflowStackConfig, client: Client | None = None) -> StackResponse:
    """Register (or update) the kubeflow stack and its four components from ``config``.

    Nothing contacts the cluster, the registry or the bucket: registration only writes the
    ZenML store, so it works on a laptop and in tests.

    Args:
        config: The stack settings.
        client: ZenML client (default: a new one on the configured store).

    Returns:
        The registered stack.
    """
    from zenml.client import Client
    from zenml.enums import StackComponentType as Type

    from genomenlp.platform.kubeflow_flavor import FLAVOR_NAME

    client = client or Client()
    ensure_flavor(client)
    if config.s3_secret:
        ensure_s3_secret(config.s3_secret, client)
    orchestrator = {
        key: value
        for key, value in {
            "kubeflow_hostname": config.kubeflow_hostname,
            "kubernetes_context": config.kubernetes_context,
            "kubeflow_namespace": config.kubeflow_namespace,
            "user_namespace": config.user_namespace,
            "service_account": config.service_account,
            "image": config.image,
            "secret_env": config.secret_env,
            "synchronous": config.synchronous,
            "pod_zenml_url": config.pod_zenml_url,
            "kfp_token_env": config.kfp_token_env,
            "kfp_username": config.kfp_username,
            "kfp_ca_cert": config.kfp_ca_cert,
        }.items()
        if value is not None
    }
    names = {
        Type.ORCHESTRATOR: (f"{config.name}-orchestrator", FLAVOR_NAME, orchestrator),
        Type.ARTIFACT_STORE: (
            f"{config.name}-artifact-store",
            "s3",
            s3_artifact_store_configuration(
                config.artifact_path, config.s3_endpoint_url, config.s3_region, config.s3_secret
            ),
        ),
        Type.CONTAINER_REGISTRY: (f"{config.name}-registry", "default", {"uri": config.registry}),
        # Required by the Kubeflow orchestrator; unused while `image` names a pre-built image.
        Type.IMAGE_BUILDER: (f"{config.name}-image-builder", "local", {}),
    }
    for component_type, (name, flavor, configuration) in names.items():
        _upsert_component(client, component_type, name, flavor, configuration)
    return _upsert_stack(client, config.name, {kind: name for kind, (name, _, _) in names.items()})


def register_local_stack(client: Client | None = None) -> StackResponse:
    """Register ``local``: the embedded default stack's components (local orchestrator and artifact store)."""
    from zenml.client import Client

    client = client or Client()
    default = client.get_stack("default", allow_name_prefix_match=False)
    return _upsert_stack(client, LOCAL_STACK, {kind: models[0].id for kind, models in default.components.items()})
