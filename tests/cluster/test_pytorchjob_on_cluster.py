"""``distributed: {workers: 2}``: the training step runs as a PyTorchJob whose replicas run as pods here.

The step (in a one-step pipeline with a ZenML ``model:``, on the local orchestrator and an S3 artifact
store on moto) exports the dataset, submits its PyTorchJob to a stand-in Kubernetes API
(:mod:`training_operator`), whose controller runs the Master and the Worker at once as two pods of
the project "image" with the operator's environment; they train with gloo over 127.0.0.1, rank 0
publishes the run folder, and the step picks it up from the artifact store.
"""

from __future__ import annotations

import json

import pytest
from harness import PodRunner
from training_operator import TrainingOperatorStandIn
from zenml.enums import StackComponentType as Component

from components.names import Artifacts
from components.training.config import ModelConfig, TrainConfig
from components.training_operator.config import DistributedConfig
from pipelines.cluster import using_stack
from pipelines.stacks import s3_artifact_store_configuration

BUCKET = "genomenlp-jobs"
ROOT = f"s3://{BUCKET}/zenml"
MODEL = "genomic_bert_pytorchjob"
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
TINY_TRAINING = TrainConfig(num_train_epochs=2, per_device_train_batch_size=8, learning_rate=0.01, collapse_epochs=0)


@pytest.fixture(scope="module")
def s3_stack(clean_zenml_client, restartable_s3):
    """The local orchestrator with an S3 artifact store on the loopback server, active for the module."""
    restartable_s3.client().create_bucket(Bucket=BUCKET)
    clean_zenml_client.create_stack_component("job-artifacts", "s3", Component.ARTIFACT_STORE,
                                              s3_artifact_store_configuration(ROOT, restartable_s3.endpoint))
    clean_zenml_client.create_stack("jobs", components={Component.ORCHESTRATOR: "default",
                                                        Component.ARTIFACT_STORE: "job-artifacts"})
    with using_stack("jobs"):
        yield


@pytest.fixture
def operator(tmp_path):
    (tmp_path / "image-app").mkdir()
    pods = PodRunner(tmp_path / "image-app",
                     {"s3-credentials": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}})
    stand_in = TrainingOperatorStandIn(pods)
    yield stand_in
    stand_in.close()
    pods.close()


def test_the_training_step_runs_as_a_two_worker_pytorchjob(s3_stack, clean_zenml_client, restartable_s3,
                                                           tiny_kmer_dataset, operator):
    from zenml import Model, pipeline

    from steps.train_classifier import train_classifier

    distributed = DistributedConfig(workers=2, gpus_per_worker=0, host=operator.url, poll_interval_s=1,
                                    timeout_s=600, node_selector={}, tolerations=[])

    @pipeline(enable_cache=False, model=Model(name=MODEL))
    def train_on_two_nodes() -> None:
        train_classifier(tiny_kmer_dataset, {}, TINY_MODEL, TINY_TRAINING, distributed=distributed)

    run = train_on_two_nodes()

    # The operator's replicas: one Master and one Worker, ranks 0 and 1 of 2, started from the job's template.
    (name,) = operator.jobs
    replicas = sorted(operator.replica_runs, key=lambda replica: replica["rank"])
    for replica in replicas:
        assert replica["result"].returncode == 0, replica["result"].stderr[-3000:]
    assert [(r["rank"], r["env"]["WORLD_SIZE"], r["env"]["PET_NNODES"]) for r in replicas] == [(0, "2", "2"),
                                                                                                 (1, "2", "2")]
    assert replicas[0]["command"][:2] == ["torchrun", "--no-python"]
    assert f"--node_rank={replicas[1]['rank']}" in replicas[1]["command"]
    assert all(r["env"]["AWS_ENDPOINT_URL"] == restartable_s3.endpoint for r in replicas)
    assert operator.deleted == [name]
    # Rank 0 alone prints the metric lines and publishes.
    master, worker = (replica["result"].stdout for replica in replicas)
    assert master.count("eval_f1=") == 2 and "published to" in master
    assert "eval_f1=" not in worker and "published to" not in worker

    step = run.steps["train_classifier"]
    metrics = step.outputs[Artifacts.TRAINING_METRICS][0].load()
    assert metrics["processes"] == 2 and metrics["sharding"] == "ddp" and metrics["epochs_run"] == 2
    folder = step.outputs[Artifacts.TRAINING_DIR][0].load()
    assert sorted(path.name for path in folder.iterdir()) == ["history.csv", "metrics.json", "model_files", "plots",
                                                              "report.html", "test_predictions.csv"]
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert step.run_metadata["test_mcc"] == metrics["test_mcc"]
    keys = [item["Key"] for page in restartable_s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for item in page.get("Contents", [])]
    published = f"zenml/training-jobs/{run.id}/{name}/outputs"
    assert f"{published}/_SUCCESS" in keys and f"{published}/model_files/model.safetensors" in keys
    # One model version, holding the one model folder and the metrics, logged once.
    versions = clean_zenml_client.list_model_versions(model=MODEL, size=10)
    assert [version.number for version in versions] == [1]
    version = clean_zenml_client.get_model_version(MODEL, 1)
    assert version.get_artifact(Artifacts.MODEL_DIR) is not None
    assert version.run_metadata["test_mcc"] == metrics["test_mcc"]
