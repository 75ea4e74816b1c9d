"""Reports reach the open-source dashboard: each is an artifact visualization served by ZenML's REST API.

The real ZenML server runs on 127.0.0.1; the pipelines run against it (local orchestrator, the
server's default stack), and the visualizations come back through the endpoint the dashboard uses.
"""

from __future__ import annotations

import json
import os
import random
import urllib.error
import urllib.parse
import urllib.request

import pytest
from zenml.enums import ExecutionStatus
from zenml.enums import StackComponentType as Component

from genomenlp.components.compare.powerlaw import PowerlawConfig
from genomenlp.components.configs import DatasetConfig, InterpretConfig, KmerConfig, ModelConfig, SweepSpec, TrainConfig
from genomenlp.components.names import Artifacts
from genomenlp.platform.cluster import using_stack

# 64 wide: WeightWatcher fits matrices with at least 50 eigenvalues, so the comparison can use this model.
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=64, num_heads=2, intermediate_size=128, max_positions=64)
REPORTS = {
    "sweep_hyperparameters": Artifacts.SWEEP_REPORT,
    "train_classifier": Artifacts.TRAINING_REPORT,
    "cross_validate_model": Artifacts.CV_REPORT,
    "interpret_sequences": Artifacts.INTERPRETATION_REPORT,
}


@pytest.fixture(scope="module", autouse=True)
def local_file_access():
    """Let the server read the local artifact store, as ``zenml login --local`` starts it.

    Autouse, so it is set before ``zenml_server`` copies the environment into the server process. A
    cluster's store is S3, which the server reads without this.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZENML_SERVER_ALLOW_LOCAL_FILE_ACCESS", "true")
        yield


def _token(url: str) -> str:
    """An access token for the server's default user, as the dashboard's login gets one."""
    # The credentials the server_client fixture logs in with.
    user = {"username": os.environ["ZENML_STORE_USERNAME"], "password": os.environ["ZENML_STORE_PASSWORD"]}
    form = urllib.parse.urlencode(user).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/api/v1/login", data=form), timeout=30) as response:
        return json.load(response)["access_token"]


def _visualization(url: str, token: str, artifact_version_id) -> dict:
    request = urllib.request.Request(f"{url}/api/v1/artifact_versions/{artifact_version_id}/visualize?index=0",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{error.code}: {error.read()[:2000]!r}") from None


@pytest.fixture(scope="module")
def runs(server_client, tiny_fasta_pair_module, tmp_path_factory, one_torch_thread):
    """A tiny training run and a comparison of its model, both recorded by the server."""
    out = tmp_path_factory.mktemp("dashboard")
    files = [str(path) for path in tiny_fasta_pair_module]
    # A local store at a path both processes resolve alike (the default one's path follows each process's
    # ZenML config folder, which the test client and server keep apart, unlike `zenml login --local`).
    server_client.create_stack_component("dashboard-store", "local", Component.ARTIFACT_STORE,
                                         {"path": str(out / "artifacts")})
    server_client.create_stack("dashboard", components={Component.ORCHESTRATOR: "default",
                                                        Component.ARTIFACT_STORE: "dashboard-store"})
    with using_stack("dashboard"):
        training, comparison = _run_pipelines(files, out)
    return {"training": server_client.get_pipeline_run(training.id),
            "comparison": server_client.get_pipeline_run(comparison.id), "out": out}


def _run_pipelines(files: list[str], out):
    from genomenlp.pipelines.comparison_pipeline import comparison_pipeline
    from genomenlp.pipelines.training_pipeline import training_pipeline

    training = training_pipeline(
        class_files=files, output_dir=str(out / "training"), kmer=KmerConfig(k=3),
        sweep=SweepSpec(method="grid", parameters={"learning_rate": {"values": [1e-3]}}),
        dataset=DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1), model=TINY_MODEL,
        training=TrainConfig(num_train_epochs=1, per_device_train_batch_size=16, device="cpu", collapse_epochs=0),
        trials=1, folds=2, explain=[files[0]], interpret=InterpretConfig(n_steps=4),
    )
    model_dir = out / "training" / "train" / "model_files"
    return training, comparison_pipeline([str(model_dir)], str(out / "compare"), PowerlawConfig())


@pytest.fixture(scope="module")
def tiny_fasta_pair_module(tmp_path_factory):
    """Two classes × 40 seeded random 60-bp records, a motif planted in the first (as ``tiny_fasta_pair``)."""
    folder, rng = tmp_path_factory.mktemp("fasta"), random.Random(1)
    paths = []
    for name, motif in (("class_a", "TATAAT"), ("class_b", "")):
        records = ["".join(rng.choice("ACGT") for _ in range(60 - len(motif))) + motif for _ in range(40)]
        paths.append(folder / f"{name}.fasta")
        paths[-1].write_text("".join(f">{name}_{index}\n{record}\n" for index, record in enumerate(records)))
    return paths


def test_every_report_is_an_html_visualization_served_by_the_rest_api(zenml_server, runs):
    training, comparison = runs["training"], runs["comparison"]
    assert training.status == comparison.status == ExecutionStatus.COMPLETED
    token = _token(zenml_server)
    served = {}
    for step, artifact in REPORTS.items():
        version = training.steps[step].outputs[artifact][0]
        served[artifact] = _visualization(zenml_server, token, version.id)
    version = comparison.steps["compare_models"].outputs[Artifacts.COMPARISON_REPORT][0]
    served[Artifacts.COMPARISON_REPORT] = _visualization(zenml_server, token, version.id)

    assert {name: page["type"] for name, page in served.items()} == dict.fromkeys(served, "html")
    # The training report comes back exactly as the run exported it to output_dir.
    exported = (runs["out"] / "training" / "train" / "report.html").read_text()
    assert served[Artifacts.TRAINING_REPORT]["value"] == exported
    assert "1–4-mer" in exported or "kmer" in exported
    assert served[Artifacts.CV_REPORT]["value"] == (runs["out"] / "training" / "cv" / "report.html").read_text()
    assert "<table" in served[Artifacts.COMPARISON_REPORT]["value"]


def test_headline_figures_are_run_metadata_on_the_server(runs):
    metadata = runs["training"].run_metadata
    assert {"test_mcc", "kmer_1_4_test_mcc", "test_mcc_margin_over_kmer", "cv_test_mcc_mean"} <= set(metadata)
    assert metadata["test_mcc_margin_over_kmer"] == pytest.approx(metadata["test_mcc"] - metadata["kmer_1_4_test_mcc"])
    sweep = runs["training"].steps["sweep_hyperparameters"].run_metadata
    assert (sweep["trials"], sweep["complete_trials"], sweep["collapsed_trials"]) == (1, 1, 0)
    assert (metadata["sweep_trials"], metadata["sweep_failed_trials"], metadata["sweep_collapsed_trials"]) == (1, 0, 0)
