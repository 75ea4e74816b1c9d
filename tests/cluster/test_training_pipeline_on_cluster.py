"""The compiled training pipeline, executed task by task as Kubeflow would, with its Katib sweep.

A real ZenML server (password and API-key auth) and a real S3 server (moto) run on 127.0.0.1;
the ``kubeflow`` stack is registered against them as ``k8s/README.md`` says. ``genomenlp-pipeline
compile`` writes the KFP YAML of ``training_pipeline_kubeflow.yaml`` with tiny parameters, and the
harness (:mod:`harness`) runs each compiled task's command with exactly its compiled environment
and its Secrets. The sweep step submits its Experiment to a stand-in Kubernetes API whose
controller runs two trials from the Experiment's own trial template.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from harness import KatibStandIn, PodRunner, compiled_tasks, run_compiled_pipeline

from genomenlp.platform import cli
from genomenlp.platform.config_overlay import load_run_config
from genomenlp.platform.stacks import KubeflowStackConfig, register_kubeflow_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_CONFIG = REPO_ROOT / "genomenlp" / "pipelines" / "configs" / "training_pipeline_kubeflow.yaml"
BUCKET = "genomenlp"
IMAGE = "registry.example.com/genomenlp/genomenlp:cuda-test"
# A closed port: compiling must never try to reach Kubeflow.
NO_KUBEFLOW = "http://127.0.0.1:9/pipeline"


@pytest.fixture(scope="module")
def cluster(server_client, restartable_s3, tmp_path_factory):
    """The kubeflow stack on the loopback servers, and the Kubernetes Secrets its pods read."""
    restartable_s3.client().create_bucket(Bucket=BUCKET)
    register_kubeflow_stack(KubeflowStackConfig(
        kubeflow_hostname=NO_KUBEFLOW, image=IMAGE, registry="registry.example.com/genomenlp",
        artifact_path=f"s3://{BUCKET}/zenml", s3_endpoint_url=restartable_s3.endpoint,
        secret_env={"s3-credentials": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
                    "zenml-api-key": ["ZENML_STORE_API_KEY"]},
    ), server_client)
    # What `zenml service-account create` + the zenml-api-key Secret give the pods.
    server_client.create_service_account(name="genomenlp-pipelines")
    api_key = server_client.create_api_key("genomenlp-pipelines", name="pods").key
    secrets = {"s3-credentials": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
               "zenml-api-key": {"ZENML_STORE_API_KEY": api_key}}
    with pytest.MonkeyPatch.context() as patch:
        # The command's `zenml init` goes here, not into the checkout.
        patch.setattr(cli, "PROJECT_ROOT", tmp_path_factory.mktemp("project"))
        yield {"secrets": secrets, "s3": restartable_s3}


@pytest.fixture
def pods(cluster, tiny_fasta_pair, tmp_path):
    """Pods of the project image, whose /app holds the tiny class files under data/tiny/."""
    app = tmp_path / "image-app"
    (app / "data" / "tiny").mkdir(parents=True)
    for fasta in tiny_fasta_pair:
        shutil.copy(fasta, app / "data" / "tiny" / fasta.name)
    runner = PodRunner(app, cluster["secrets"])
    yield runner
    runner.close()


def tiny_cluster_config(path: Path, katib_url: str) -> Path:
    """The cluster YAML with tiny parameters: placement, execution mode and Katib backend kept as they are."""
    config = load_run_config(CLUSTER_CONFIG)
    parameters = config["parameters"]
    parameters["class_files"] = ["data/tiny/class_a.fasta", "data/tiny/class_b.fasta"]
    parameters["explain"] = ["data/tiny/class_a.fasta"]
    parameters["dataset"].update(labels=["class_a", "class_b"], split_train=0.8, split_test=0.1, split_val=0.1)
    parameters["model"].update(num_layers=1, hidden_size=32, num_heads=2, intermediate_size=64, max_positions=128)
    parameters["dataset"]["max_tokens"] = 128
    # One epoch on tiny data can read as collapsed (a collapsed trial fails, as it should).
    # The classes are renamed, so the positive class (the config's `promoter`) is renamed with them.
    parameters["training"].update(num_train_epochs=1, per_device_train_batch_size=16, collapse_epochs=0,
                                  positive_label="class_a")
    parameters["sweep"] = {"method": "grid", "name": "tiny", "metric": {"name": "eval/f1", "goal": "maximize"},
                           "parameters": {"learning_rate": {"values": [1.0e-3, 3.0e-3]}}}
    parameters.update(trials=2, folds=2)
    sweep = config["steps"]["sweep_hyperparameters"]["parameters"]
    assert sweep["backend"] == "katib"
    # No GPU on this machine; the stand-in API replaces the pod's in-cluster credentials.
    sweep.update(epochs=1, katib_host=katib_url, katib={"gpus": 0, "poll_interval_s": 1, "timeout_s": 600})
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _failure(task: dict, katib: KatibStandIn) -> str:
    result = task["result"]
    trials = "".join(f"\ntrial {trial['name']} exited {trial['result'].returncode}: {trial['result'].stderr[-2000:]}"
                     for trial in katib.trial_runs if trial["result"].returncode)
    return f"task {task['name']} exited {result.returncode}:\n{result.stderr[-3000:]}{trials}"


def test_the_compiled_training_pipeline_runs_to_a_registered_model(cluster, pods, server_client, tmp_path):
    katib = KatibStandIn(pods, trials=2)
    try:
        config = tiny_cluster_config(tmp_path / "tiny_kubeflow.yaml", katib.url)
        out = tmp_path / "kfp"
        assert cli.main(["compile", "training", "--config", str(config), "--stack", "kubeflow",
                         "--output", str(out)]) == 0
        compiled = out / "training_pipeline.yaml"
        text = compiled.read_text(encoding="utf-8")
        # Nothing secret in the file a user uploads by hand.
        for secret in cluster["secrets"].values():
            for value in secret.values():
                assert value not in text
        assert "sqlite" not in text

        tasks = run_compiled_pipeline(compiled, pods, job_name="training-pipeline-harness")
        for task in tasks:
            assert task["result"].returncode == 0, _failure(task, katib)
    finally:
        katib.close()

    names = [task["name"] for task in tasks]
    assert names.index("create_dataset") < names.index("sweep_hyperparameters") < names.index("train_classifier")
    # The folds choose the final classifier's epoch, so they run before it.
    assert names.index("cross_validate_model") < names.index("train_classifier")
    # The served model averages the final classifier with the folds' models before it is promoted and explained.
    assert names.index("train_classifier") < names.index("ensemble_models") < names.index("promote_model")
    assert names.index("ensemble_models") < names.index("interpret_sequences")
    assert {task["image"] for task in tasks} == {IMAGE}

    # The run, its model version and its artifacts are where a cluster user looks for them.
    (run,) = server_client.list_pipeline_runs(sort_by="desc:created", size=1)
    assert run.status.value == "completed"
    assert run.model_version is not None and run.model_version.model.name == "genomic_bert"
    assert "model_dir" in run.model_version.model_artifact_ids or run.model_version.get_artifact("model_dir")
    # Its registry reference is the ensemble, fetched from the cluster's artifact store.
    from genomenlp.components.model_io import load_model
    from genomenlp.components.training.ensemble_model import is_ensemble
    from genomenlp.steps.support.registry import resolve_registry_reference

    served = load_model(resolve_registry_reference(f"genomic_bert@{run.model_version.number}"))
    assert is_ensemble(served.model) and len(served.model.members) == 3
    keys = [item["Key"] for page in cluster["s3"].client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for item in page.get("Contents", [])]
    assert any(key.startswith("zenml/") for key in keys)
    assert f"zenml/katib-data/{run.id}/manifest.json" in keys
    assert f"zenml/katib-data/{run.id}/_SUCCESS" in keys

    # Two trials ran the stack's image on the stack's S3 endpoint and reported the objective.
    assert len(katib.trial_runs) == 2 and katib.deleted
    for trial in katib.trial_runs:
        assert trial["result"].returncode == 0, trial["result"].stderr[-3000:]
        container = trial["job"]["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == IMAGE
        assert {"name": "AWS_ENDPOINT_URL", "value": cluster["s3"].endpoint} in container["env"]
        assert trial["values"]["eval_f1"]
    # What the Kubeflow dashboard shows: the launcher's uploads and recorded metadata, in KFP's shapes.
    outputs = {task["name"]: task["kfp_outputs"] for task in tasks}
    metrics = outputs["train_classifier"]["test_metrics"]
    assert metrics["schema"] == "system.Metrics"
    headline = {"test_mcc", "test_roc_auc", "baseline_kmer_test_mcc", "test_mcc_margin_over_kmer"}
    assert headline <= set(metrics["metadata"])
    assert all(isinstance(value, float) for value in metrics["metadata"].values())
    classification = outputs["train_classifier"]["test_classification"]
    assert classification["schema"] == "system.ClassificationMetrics"
    matrix = classification["metadata"]["confusionMatrix"]
    assert [spec["displayName"] for spec in matrix["annotationSpecs"]] == ["class_a", "class_b"]
    assert len(matrix["rows"]) == 2 and all(len(row["row"]) == 2 for row in matrix["rows"])
    roc = classification["metadata"]["confidenceMetrics"]
    assert roc and {"confidenceThreshold", "falsePositiveRate", "recall"} <= set(roc[0])
    summary = outputs["train_classifier"]["test_summary"]
    assert summary["schema"] == "system.HTML" and summary["text"].startswith("<!doctype html>")
    assert "1–4-mer baseline" in summary["text"]
    served_figures = outputs["ensemble_models"]["served_metrics"]
    assert served_figures["schema"] == "system.Metrics" and headline <= set(served_figures["metadata"])
    assert outputs["ensemble_models"]["served_summary"]["text"].startswith("<!doctype html>")
    assert {"cv_test_mcc_mean", "cv_test_mcc_sd"} <= set(outputs["cross_validate_model"]["cv_metrics"]["metadata"])
    assert outputs["cross_validate_model"]["cv_summary"]["text"].startswith("<!doctype html>")
    sweep_markdown = outputs["sweep_hyperparameters"]["sweep_summary"]
    assert sweep_markdown["schema"] == "system.Markdown"
    (experiment,) = katib.experiments
    assert f"Katib Experiment `{experiment}`" in sweep_markdown["text"]
    assert "# Promotion" in outputs["promote_model"]["promotion"]["text"]
    assert outputs["interpret_sequences"]["interpretation_summary"]["text"].startswith("# Interpretation")

    # The best assignment is what the classifier trained with.
    best = max(katib.trial_runs, key=lambda trial: max(trial["values"]["eval_f1"]))
    step = run.steps["train_classifier"]
    hyperparameters = step.inputs["hyperparameters"][0].load() if "hyperparameters" in step.inputs else None
    assert hyperparameters is not None, sorted(step.inputs)
    assert hyperparameters["learning_rate"] == pytest.approx(float(best["assignment"]["learning_rate"]))


def test_compiled_tasks_carry_the_pods_credentials_only_as_secret_references(cluster, tmp_path):
    config = tiny_cluster_config(tmp_path / "tiny_kubeflow.yaml", "http://127.0.0.1:9")
    assert cli.main(["compile", "training", "--config", str(config), "--stack", "kubeflow",
                     "--output", str(tmp_path)]) == 0
    for task in compiled_tasks(tmp_path / "training_pipeline.yaml"):
        assert task["env"]["ZENML_STORE_TYPE"] == "rest"
        assert task["env"]["ZENML_STORE_URL"].startswith("http://127.0.0.1:")
        assert not {name for name in task["env"] if "TOKEN" in name or "API_KEY" in name}
        assert task["secrets"]["zenml-api-key"] == {"ZENML_STORE_API_KEY": "ZENML_STORE_API_KEY"}
    assert json.dumps(cluster["secrets"]["zenml-api-key"]) not in (tmp_path / "training_pipeline.yaml").read_text()
