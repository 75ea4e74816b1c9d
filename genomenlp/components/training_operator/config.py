"""Where and how a PyTorchJob's replicas run: workers, GPUs per worker, image, placement, object storage.

The defaults describe the dev cluster set up by ``k8s/`` (namespace ``genomenlp``, the trial service
account, the ``s3-credentials`` Secret, the in-cluster object store, the GPU node pool), as
:class:`genomenlp.components.katib.config.KatibConfig`'s do.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genomenlp.components.katib.config import _QUANTITY, GPU_POOL_LABEL, Toleration, _gpu_taint

# The Training Operator's defaults: the container it reads the port from, the port's name and number.
CONTAINER_NAME = "pytorch"
PORT_NAME = "pytorchjob-port"
DEFAULT_PORT = 23456


class DistributedConfig(BaseModel):
    """A training step's ``distributed:`` block: run the stage as a PyTorchJob of ``workers`` pods.

    Replica 0 is the job's ``Master`` (rank 0, which writes and publishes the outputs); the other
    ``workers - 1`` are its ``Worker`` replicas. Each pod runs ``torchrun`` with one process per GPU.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(2, ge=1, description="Pods in the job (nodes), the Master included.")
    gpus_per_worker: int = Field(1, ge=0, description="GPUs per pod, one training process each (0: one CPU process).")
    namespace: str = Field("genomenlp", description="Namespace of the PyTorchJob.")
    image: str = Field("genomenlp:cuda", description="Project image the replicas run (default: the stack's).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent",
                                                                         description="When nodes pull the image.")
    service_account: str = Field("genomenlp-trial", description="Service account of the pods (no API rights).")
    node_selector: dict[str, str] = Field(default_factory=lambda: dict(GPU_POOL_LABEL),
                                          description="Node labels the pods must land on.")
    tolerations: list[Toleration] = Field(default_factory=_gpu_taint, description="Taints the pods tolerate.")
    cpu: str = Field("4", description="CPU request per pod.")
    memory: str = Field("16Gi", description="Memory request (and limit) per pod.")
    s3_secret: str | None = Field("s3-credentials", description="Secret whose keys become the pods' environment.")
    s3_endpoint_url: str | None = Field("http://object-store.genomenlp.svc.cluster.local:9000",
                                        description="S3 endpoint (AWS_ENDPOINT_URL); empty for AWS itself.")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="Port of the Master's rendezvous.")
    timeout_s: float = Field(24 * 3600, gt=0, description="How long the step waits for the job.")
    poll_interval_s: float = Field(30, gt=0, description="Seconds between status polls.")
    host: str | None = Field(None, description="Kubernetes API server URL instead of the pod's in-cluster credentials.")

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not _QUANTITY.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity such as 4, 500m or 16Gi")
        return value

    @property
    def processes(self) -> int:
        """Training processes in the whole job."""
        return self.workers * max(1, self.gpus_per_worker)
