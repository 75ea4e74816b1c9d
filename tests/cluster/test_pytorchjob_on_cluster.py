"""``distributed: {workers: 2}``: pre-training and training steps run as PyTorchJobs whose replicas are pods here.

Each step (in a pipeline with a ZenML ``model:``, on the local orchestrator and an S3 artifact store
on moto) exports the dataset, submits its PyTorchJob to a stand-in Kubernetes API
(:mod:`training_operator`), whose controller runs the Master and the Worker at once as two pods of
the project "image" with the operator's environment; they train with gloo over 127.0.0.1, rank 0
publishes the run folder, and the step picks it up from the artifact store.
"""

from __future__ import annotations

import json
import random

import pytest
from harness import PodRunner
from training_operator import TrainingOperatorStandIn
from zenml.enums import StackComponentType as Component

from genomenlp.components.names import Artifacts
from genomenlp.components.pretraining.config import PretrainConfig
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training_operator.config import DistributedConfig
from genomenlp.platform.cluster import using_stack
from genomenlp.platform.stacks import s3_artifact_store_configuration

BUCKET = "genomenlp-jobs"
ROOT = f"s3://{BUCKET}/zenml"
MODEL = "genomic_bert_pytorchjob"
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
TINY_TRAINING = TrainConfig(num_train_epochs=2, per_device_train_batch_size=8, learning_rate=0.01, collapse_epochs=0)
TINY_PRETRAINING = PretrainConfig(max_steps=2, per_device_train_batch_size=4, logging_steps=1, checkpoint_every=2,
                                  shuffle_buffer=8)
# In the image (the pods' /app), where the pipeline's corpus parameter points.
GENOME = "data/genome.fa"


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
    (tmp_path / "image-app" / "data").mkdir(parents=True)
    rng = random.Random(3)
    (tmp_path / "image-app" / GENOME).write_text(">chr\n" + "".join(rng.choice("ACGT") for _ in range(2000)) + "\n")
    pods = PodRunner(tmp_path / "image-app",
                     {"s3-credentials": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}})
    stand_in = TrainingOperatorStandIn(pods)
    yield stand_in
    stand_in.close()
    pods.close()


def test_pretraining_and_training_steps_run_as_two_worker_pytorchjobs(s3_stack, clean_zenml_client, restartable_s3,
                                                                      tiny_kmer_dataset, operator):
    from zenml import Model, pipeline

    from genomenlp.steps.pretrain_encoder import pretrain_encoder
    from genomenlp.steps.train_classifier import train_classifier

    distributed = DistributedConfig(workers=2, gpus_per_worker=0, host=operator.url, poll_interval_s=1,
                                    timeout_s=600, node_selector={}, tolerations=[])

    @pipeline(enable_cache=False, model=Model(name=MODEL))
    def train_on_two_nodes() -> None:
        pretrain_encoder([GENOME], tiny_kmer_dataset, TINY_PRETRAINING, TINY_MODEL, distributed=distributed)
        train_classifier(tiny_kmer_dataset, {}, TINY_MODEL, TINY_TRAINING, distributed=distributed,
                         after="pretrain_encoder")

    run = train_on_two_nodes()

    pretraining_job, name = operator.jobs
    assert pretraining_job.startswith("genomenlp-pretrain-") and name.startswith("genomenlp-train-")
    pretrained = run.steps["pretrain_encoder"].outputs[Artifacts.PRETRAINING_METRICS][0].load()
    assert pretrained["steps"] == 2 and pretrained["exclusion"]["held_out_sequences"] > 0
    assert run.steps["pretrain_encoder"].run_metadata["steps"] == 2
    encoder = run.steps["pretrain_encoder"].outputs[Artifacts.ENCODER_DIR][0].load()
    assert (encoder / "model.safetensors").stat().st_size > 0
    pretraining = [r for r in operator.replica_runs if r["name"].startswith(pretraining_job)]
    assert sorted(r["rank"] for r in pretraining) == [0, 1]
    assert all(r["result"].returncode == 0 for r in pretraining), [r["result"].stderr[-2000:] for r in pretraining]

    # The operator's replicas: one Master and one Worker, ranks 0 and 1 of 2, started from the job's template.
    replicas = sorted((r for r in operator.replica_runs if r["name"].startswith(name)), key=lambda r: r["rank"])
    for replica in replicas:
        assert replica["result"].returncode == 0, replica["result"].stderr[-3000:]
    assert [(r["rank"], r["env"]["WORLD_SIZE"], r["env"]["PET_NNODES"]) for r in replicas] == [(0, "2", "2"),
                                                                                                 (1, "2", "2")]
    assert replicas[0]["command"][:2] == ["torchrun", "--no-python"]
    assert f"--node_rank={replicas[1]['rank']}" in replicas[1]["command"]
    assert all(r["env"]["AWS_ENDPOINT_URL"] == restartable_s3.endpoint for r in replicas)
    assert operator.deleted == [pretraining_job, name]
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


def test_a_failed_replica_fails_the_job_the_launcher_raises_and_deletes_it(operator):
    from genomenlp.components.training_operator.job import build_pytorch_job
    from genomenlp.components.training_operator.launcher import JobFailed, custom_objects_api, run_job

    distributed = DistributedConfig(workers=2, gpus_per_worker=0, node_selector={}, tolerations=[])
    # The Worker fails, the Master succeeds: the job fails, as the operator fails it.
    job = build_pytorch_job("genomenlp-train-f00d00", distributed, "s3://unused/outputs", [])
    job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"] = ["true"]
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"] = [
        "sh", "-c", "test $(RANK) = 1 && exit 3"]
    with pytest.raises(JobFailed, match=r"genomenlp/genomenlp-train-f00d00 failed .*worker-0"):
        run_job(custom_objects_api(operator.url), job, timeout_s=60, poll_interval_s=0.2)
    assert operator.deleted == ["genomenlp-train-f00d00"]
    assert sorted(r["result"].returncode for r in operator.replica_runs) == [0, 3]
