"""The PyTorchJob of one training or pre-training run, built from the Training Operator SDK's typed models.

Every replica runs the same command: ``torchrun`` with the node count, node rank, processes per
node and the Master's address and port taken from the variables the operator sets in each
container (``PET_NNODES``, ``PET_NODE_RANK``, ``PET_NPROC_PER_NODE``, ``MASTER_ADDR``,
``MASTER_PORT``; Kubernetes expands ``$(NAME)`` in a container's arguments), then
:mod:`genomenlp.components.training_operator.worker`, which runs the unchanged ``train`` or ``pretrain``
command and has rank 0 publish its output folder to object storage, commit marker last.
"""

from __future__ import annotations

import secrets

from kubernetes import client as k8s
from pydantic import BaseModel

from genomenlp.components.errors import InputError
from genomenlp.components.katib.experiment import IMAGE_UID
from genomenlp.components.training_operator.config import CONTAINER_NAME, PORT_NAME, DistributedConfig

GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"
GPU_RESOURCE = "nvidia.com/gpu"
# Where a replica's command writes its run folder before rank 0 publishes it (pod-local).
POD_OUTPUT = "/tmp/job"
# Istio sidecars never exit, which would keep a finished replica's pod running.
_POD_ANNOTATIONS = {"sidecar.istio.io/inject": "false"}


def job_name(stage: str) -> str:
    """A fresh DNS-safe name, ``genomenlp-<stage>-<6 hex>``: a re-run never collides with the last job."""
    return f"genomenlp-{stage}-{secrets.token_hex(3)}"


def config_flags(config: BaseModel, skip: tuple[str, ...] = ()) -> list[str]:
    """A config's fields as the commands' flags (``--name=value``, ``--name``/``--no-name`` for booleans).

    Raises:
        InputError: A field holds a mapping, which no flag carries (``fsdp_config``: give a JSON file).
    """
    flags = []
    for name, value in config.model_dump(mode="json").items():
        if name in skip or value is None:
            continue
        if isinstance(value, dict | list):
            raise InputError(name, "a mapping cannot travel to a PyTorchJob's command line; give a JSON file path")
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        else:
            flags.append(f"--{name}={value!r}" if isinstance(value, float) else f"--{name}={value}")
    return flags


def replica_command(config: DistributedConfig, publish: str, command: list[str]) -> list[str]:
    """What every replica runs: ``torchrun`` over the operator's variables, the worker wrapper, the command."""
    return ["torchrun", "--no-python", "--nnodes=$(PET_NNODES)", "--node_rank=$(PET_NODE_RANK)",
            "--nproc_per_node=$(PET_NPROC_PER_NODE)", "--master_addr=$(MASTER_ADDR)", "--master_port=$(MASTER_PORT)",
            "python", "-m", "genomenlp.components.training_operator.worker", f"--publish={publish}", "--", *command]


def _template(config: DistributedConfig, command: list[str]) -> k8s.V1PodTemplateSpec:
    limits = {"memory": config.memory}
    if config.gpus_per_worker:
        limits[GPU_RESOURCE] = str(config.gpus_per_worker)
    env = [k8s.V1EnvVar(name="AWS_ENDPOINT_URL", value=config.s3_endpoint_url)] if config.s3_endpoint_url else None
    env_from = ([k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=config.s3_secret))]
                if config.s3_secret else None)
    container = k8s.V1Container(
        name=CONTAINER_NAME, image=config.image, image_pull_policy=config.image_pull_policy, command=command,
        env=env, env_from=env_from, ports=[k8s.V1ContainerPort(name=PORT_NAME, container_port=config.port)],
        resources=k8s.V1ResourceRequirements(requests={"cpu": config.cpu, "memory": config.memory}, limits=limits),
        security_context=k8s.V1SecurityContext(
            run_as_non_root=True, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, allow_privilege_escalation=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"])))
    pod = k8s.V1PodSpec(
        containers=[container], service_account_name=config.service_account,
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=IMAGE_UID,
                                                  run_as_group=IMAGE_UID,
                                                  seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")),
        # Replicas read data and publish results through S3 credentials, never the Kubernetes API.
        automount_service_account_token=False,
        node_selector=dict(config.node_selector) or None,
        tolerations=[k8s.V1Toleration(**t.model_dump(exclude_none=True)) for t in config.tolerations] or None)
    return k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(annotations=_POD_ANNOTATIONS), spec=pod)


def build_pytorch_job(name: str, config: DistributedConfig, publish: str, command: list[str]) -> dict:
    """The PyTorchJob manifest (as the API server takes it) running ``command`` on ``config.workers`` pods.

    Args:
        name: The job's name.
        config: Replicas, GPUs, placement.
        publish: Object-storage prefix rank 0 publishes the run folder to.
        command: The ``train``/``pretrain`` command line, writing to :data:`POD_OUTPUT`.
    """
    from kubeflow.training import models

    template = _template(config, replica_command(config, publish, command))
    # A failed replica fails the run: retrying would only spend the GPUs twice on the same error.
    replicas = {"Master": models.KubeflowOrgV1ReplicaSpec(replicas=1, restart_policy="Never", template=template)}
    if config.workers > 1:
        replicas["Worker"] = models.KubeflowOrgV1ReplicaSpec(replicas=config.workers - 1, restart_policy="Never",
                                                             template=template)
    job = models.KubeflowOrgV1PyTorchJob(
        api_version=f"{GROUP}/{VERSION}", kind=KIND,
        metadata=k8s.V1ObjectMeta(name=name, namespace=config.namespace, labels={"app.kubernetes.io/part-of":
                                                                               "genomenlp"}),
        spec=models.KubeflowOrgV1PyTorchJobSpec(
            nproc_per_node=str(max(1, config.gpus_per_worker)), pytorch_replica_specs=replicas,
            run_policy=models.KubeflowOrgV1RunPolicy(backoff_limit=0, clean_pod_policy="None",
                                                     active_deadline_seconds=int(config.timeout_s))))
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(job)


def train_command(data: str, model: BaseModel, training: BaseModel, gpus: int) -> list[str]:
    """``train`` on the dataset published at ``data`` (its parquet splits and tokeniser), into :data:`POD_OUTPUT`.

    Registration stays with the pipeline (its ``model:``), so the job registers nothing itself.
    """
    return ["train", f"{data}/train.parquet", "parquet", f"{data}/tokenizer.json", "-t", "test", "-v", "valid",
            "-o", POD_OUTPUT, f"--device={'cuda' if gpus else 'cpu'}", "--no_progress", "--no_register",
            *config_flags(model), *config_flags(training, skip=("device",))]


def pretrain_command(corpus_files: list[str], data: str, model: BaseModel, config: BaseModel, kmer_stride: int,
                     gpus: int) -> list[str]:
    """``pretrain`` on ``corpus_files`` (paths in the image or ``s3://``) with the dataset at ``data`` held out."""
    return ["pretrain", *corpus_files, f"{data}/tokenizer.json", "-o", POD_OUTPUT, "--exclude", data,
            f"--kmer_stride={kmer_stride}", f"--device={'cuda' if gpus else 'cpu'}", "--no_progress",
            *config_flags(model), *config_flags(config, skip=("device",))]
