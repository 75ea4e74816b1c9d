"""The dataset pipeline with ZenML's S3 artifact store on a loopback S3 server, restarted mid-run."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
from zenml.enums import ExecutionStatus
from zenml.enums import StackComponentType as Component

from genomenlp.components.configs import DatasetConfig, KmerConfig
from genomenlp.components.names import Artifacts
from genomenlp.pipelines.dataset_pipeline import dataset_pipeline
from genomenlp.platform.cluster import using_stack
from genomenlp.platform.stacks import s3_artifact_store_configuration

BUCKET = "zenml-artifacts"
ROOT = f"s3://{BUCKET}/zenml"
TINY_DATASET = DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1)


@pytest.fixture(scope="module")
def s3_stack(clean_zenml_client, restartable_s3):
    """The local orchestrator with an S3 artifact store on the loopback server, active for the module."""
    restartable_s3.client().create_bucket(Bucket=BUCKET)
    clean_zenml_client.create_stack_component(
        "s3-artifacts",
        "s3",
        Component.ARTIFACT_STORE,
        s3_artifact_store_configuration(ROOT, restartable_s3.endpoint),
    )
    clean_zenml_client.create_stack(
        "s3-local", components={Component.ORCHESTRATOR: "default", Component.ARTIFACT_STORE: "s3-artifacts"}
    )
    with using_stack("s3-local"):
        yield


def _keys(server) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _run(fasta_pair, output_dir: Path):
    from zenml.client import Client

    run = dataset_pipeline(
        class_files=[str(path) for path in fasta_pair],
        output_dir=str(output_dir),
        kmer=KmerConfig(k=3),
        dataset=TINY_DATASET,
    )
    return Client().get_pipeline_run(run.id)


def _assert_artifacts_load_as_written(run, server, output_dir: Path) -> None:
    """Every output of the run is an object under the store's root and loads back as written."""
    keys = _keys(server)
    for step in run.steps.values():
        for versions in step.outputs.values():
            prefix = versions[0].uri.removeprefix(f"s3://{BUCKET}/")
            assert versions[0].uri.startswith(ROOT)
            assert any(key.startswith(prefix) for key in keys), versions[0].uri
    written = json.loads((output_dir / "manifest.json").read_text())
    outputs = {name: versions[0] for step in run.steps.values() for name, versions in step.outputs.items()}
    assert outputs[Artifacts.DATASET_MANIFEST].load() == written
    # The folder artifact comes back from the bucket as a local copy with every file of the original.
    stored = Path(outputs[Artifacts.DATASET_DIR].load())
    assert json.loads((stored / "manifest.json").read_text()) == written
    assert sorted(p.name for p in stored.iterdir()) == sorted(p.name for p in output_dir.iterdir())
    assert (stored / "tokenizer.json").read_text() == (output_dir / "tokenizer.json").read_text()


def test_dataset_pipeline_keeps_its_artifacts_in_the_bucket(s3_stack, restartable_s3, tiny_fasta_pair, tmp_path):
    run = _run(tiny_fasta_pair, tmp_path / "dataset")

    assert run.status == ExecutionStatus.COMPLETED
    _assert_artifacts_load_as_written(run, restartable_s3, tmp_path / "dataset")
    # Step logs go to the same store.
    assert any(key.startswith("zenml/logs/") for key in _keys(restartable_s3))


class _RetryLog(logging.Handler):
    """Counts botocore's "Retry needed" decisions (standard retry mode, as the store is configured)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Retry needed, retrying"):
            self.retries += 1


def test_an_s3_restart_mid_run_is_retried_and_loses_nothing(s3_stack, restartable_s3, tiny_fasta_pair, tmp_path):
    seen_before = set(_keys(restartable_s3))
    restarted_at: list[float] = []

    def restart_after_the_first_artifact() -> None:
        # The tokeniser's artifact marks the middle of the run: the dataset step has yet to write.
        deadline = time.monotonic() + 120
        while not any("/tokenizer_json/" in key for key in set(_keys(restartable_s3)) - seen_before):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        restartable_s3.restart(downtime=2.0)
        restarted_at.append(time.time())

    retry_logger = logging.getLogger("botocore.retries.standard")
    log, level = _RetryLog(), retry_logger.level
    retry_logger.addHandler(log)
    retry_logger.setLevel(logging.DEBUG)
    restarter = threading.Thread(target=restart_after_the_first_artifact, daemon=True)
    restarter.start()
    try:
        run = _run(tiny_fasta_pair, tmp_path / "dataset")
    finally:
        restarter.join(timeout=30)
        retry_logger.removeHandler(log)
        retry_logger.setLevel(level)

    assert restarted_at, "the server was never restarted: the tokeniser artifact did not appear"
    assert run.status == ExecutionStatus.COMPLETED
    # Requests made while the server was down were retried, not failed.
    assert log.retries >= 1
    # The dataset step's outputs were written after the restart...
    server_client = restartable_s3.client()
    new_keys = set(_keys(restartable_s3)) - seen_before
    dataset_keys = [key for key in new_keys if key.startswith("zenml/create_dataset/")]
    assert dataset_keys
    for key in dataset_keys:
        assert server_client.head_object(Bucket=BUCKET, Key=key)["LastModified"].timestamp() >= restarted_at[0] - 1
    # ...no upload was left half-done, and after one more restart everything loads as written.
    assert not server_client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    restartable_s3.restart(downtime=0)
    _assert_artifacts_load_as_written(run, restartable_s3, tmp_path / "dataset")


def test_output_dir_may_be_in_the_bucket_too(s3_stack, restartable_s3, tiny_fasta_pair, monkeypatch):
    # The export reaches object storage through fsspec, which takes its endpoint from the environment.
    monkeypatch.setenv("AWS_ENDPOINT_URL", restartable_s3.endpoint)
    destination = f"s3://{BUCKET}/exports/dataset"

    run = _run(tiny_fasta_pair, destination)

    assert run.status == ExecutionStatus.COMPLETED
    assert run.steps["export_outputs"].outputs[Artifacts.EXPORTED_FOLDERS][0].load() == {"dataset": destination}
    keys = set(_keys(restartable_s3))
    assert {f"exports/dataset/{name}" for name in ("manifest.json", "tokenizer.json", "train.parquet")} <= keys
    stored = Path(run.steps["create_dataset"].outputs[Artifacts.DATASET_DIR][0].load())
    assert {key.removeprefix("exports/dataset/") for key in keys if key.startswith("exports/dataset/")} == {
        path.relative_to(stored).as_posix() for path in stored.rglob("*") if path.is_file()}
