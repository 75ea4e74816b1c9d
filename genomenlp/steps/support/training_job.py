"""A training step's work as a Kubeflow Training Operator PyTorchJob: export, submit, wait, fetch the outputs.

As the Katib sweep does: the run's dataset goes to a plain object-storage prefix the replicas read
(``<artifact store>/training-jobs/<run id>/<job>/data/``, commit marker last); rank 0 publishes the run
folder to ``…/<job>/outputs/``; the step copies it back into its staging folder and goes on as if it
had trained in-process (its metadata, artifacts and the run's model version are written once, here).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from genomenlp.components.filenames import METRICS_FILE
from genomenlp.components.katib.trial_data import export_trial_dataset
from genomenlp.components.storage import COMMIT_MARKER
from genomenlp.components.training_operator.config import DistributedConfig
from genomenlp.components.training_operator.job import build_pytorch_job, job_name
from genomenlp.components.training_operator.launcher import custom_objects_api, run_job


def with_stack_defaults(distributed: DistributedConfig) -> DistributedConfig:
    """Replicas run the stack's image and reach its artifact store, unless the block names others."""
    from zenml.client import Client

    stack = Client().active_stack
    changes = {}
    image = getattr(stack.orchestrator.config, "image", None)
    if image and "image" not in distributed.model_fields_set:
        changes["image"] = image
    if stack.artifact_store.path.startswith("s3://") and "s3_endpoint_url" not in distributed.model_fields_set:
        endpoint = (getattr(stack.artifact_store.config, "client_kwargs", None) or {}).get("endpoint_url")
        changes["s3_endpoint_url"] = endpoint
    return distributed.model_copy(update=changes)


def run_as_pytorch_job(stage: str, distributed: DistributedConfig, dataset_dir: Path, folder: Path,
                       command: Callable[[str], list[str]]) -> dict:
    """Run ``command(data prefix)`` as a PyTorchJob and copy its published run folder into ``folder``.

    Args:
        stage: ``train`` or ``pretrain`` (names the job).
        distributed: The step's ``distributed:`` block.
        dataset_dir: The run's dataset folder, exported for the replicas.
        folder: The step's staging folder, which receives the run folder.
        command: The replicas' command line, given where the dataset was exported.

    Returns:
        The run's ``metrics.json``.
    """
    from zenml import get_step_context
    from zenml.client import Client
    from zenml.io import fileio

    distributed = with_stack_defaults(distributed)
    name = job_name(stage)
    root = Client().active_stack.artifact_store.path.rstrip("/")
    prefix = f"{root}/training-jobs/{get_step_context().pipeline_run.id}/{name}"
    data = export_trial_dataset(dataset_dir, f"{prefix}/data", lambda source, target: fileio.copy(source, target, True))
    outputs = f"{prefix}/outputs"
    job = build_pytorch_job(name, distributed, outputs, command(data))
    print(f"PyTorchJob {distributed.namespace}/{name}: {distributed.workers} workers × "
          f"{max(1, distributed.gpus_per_worker)} processes; outputs to {outputs}", flush=True)
    run_job(custom_objects_api(distributed.host), job, distributed.timeout_s, distributed.poll_interval_s)
    if not fileio.exists(f"{outputs}/{COMMIT_MARKER}"):
        raise RuntimeError(f"PyTorchJob {name} succeeded without publishing {outputs} (no {COMMIT_MARKER})")
    folder.mkdir(parents=True, exist_ok=True)
    for directory, _, files in fileio.walk(outputs):
        relative = str(directory).rstrip("/")[len(outputs):].lstrip("/")
        for file in files:
            if relative == "" and str(file) == COMMIT_MARKER:
                continue
            target = folder / relative / str(file)
            target.parent.mkdir(parents=True, exist_ok=True)
            fileio.copy(f"{str(directory).rstrip('/')}/{file}", str(target), overwrite=True)
    return json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
