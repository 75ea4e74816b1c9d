"""The tracker flags reach a ``wandb`` experiment tracker of the active ZenML stack, offline.

A real ZenML ``wandb`` experiment tracker is registered in a throw-away store and stack; with
``WANDB_MODE=offline`` wandb writes its run to disk, which is read back with wandb's own record reader.
"""

from __future__ import annotations

import json
import time

import pytest
from zenml.enums import StackComponentType

from genomenlp.platform import commands

TINY = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
        "--max_positions", "64", "--no_progress", "-d", "cpu", "--num_train_epochs", "2", "--learning_rate", "0.01",
        "--per_device_train_batch_size", "8", "--collapse_epochs", "0"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def wandb_stack(clean_zenml_client):
    """The default stack plus ZenML's ``wandb`` experiment tracker, active; the default stack back afterwards."""
    client = clean_zenml_client
    default = client.active_stack_model
    tracker = client.create_stack_component(
        name="wandb_tracker", flavor="wandb", component_type=StackComponentType.EXPERIMENT_TRACKER,
        configuration={"api_key": "0" * 40, "entity": "stack_team", "project_name": "stack_project"})
    components = {kind: models[0].id for kind, models in default.components.items()}
    client.create_stack(name="with_wandb", components={**components, StackComponentType.EXPERIMENT_TRACKER: tracker.id})
    client.activate_stack("with_wandb")
    try:
        yield client
    finally:
        client.activate_stack(default.id)


@pytest.fixture(scope="module")
def offline_wandb(tmp_path_factory):
    """Where wandb keeps offline runs: one folder for the module (wandb reads its environment once a process)."""
    folder = tmp_path_factory.mktemp("wandb_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_DIR", str(folder))
        patch.setenv("WANDB_SILENT", "true")
        yield folder / "wandb"


def _records(path) -> list:
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(str(path))
    records = []
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        records.append(record)
    return records


def offline_run(folder, job_type: str) -> dict:
    """The run record, config and summary of the offline run of ``job_type`` under ``folder``, as wandb wrote it.

    wandb's service process writes the file; it is read once the run's ``exit`` record is in it.
    """
    deadline = time.monotonic() + 60
    while True:
        runs = [_records(path) for path in folder.glob("offline-run-*/run-*.wandb")]
        finished = [records for records in runs if any(r.WhichOneof("record_type") == "exit" for r in records)]
        mine = [records for records in finished
                if any(r.WhichOneof("record_type") == "run" and r.run.job_type == job_type for r in records)]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (records,) = mine
    found = {"config": {}, "summary": {}}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            found["run"] = record.run
            found["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "summary":
            found["summary"].update({item.key: json.loads(item.value_json) for item in record.summary.update})
    return found


def test_train_sends_entity_project_group_and_tags_to_the_stacks_wandb_tracker(
        wandb_stack, offline_wandb, tiny_kmer_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [str(tiny_kmer_dataset / "train.parquet"), "parquet", str(tiny_kmer_dataset / "tokenizer.json"),
            "-e", "tyagilab", "-p", "testm3", "-g", "promoters", "-o", str(out), *TINY]
    assert commands.train(argv) == 0
    printed = capsys.readouterr().out
    assert "sent to the stack's wandb tracker wandb_tracker: tyagilab/testm3, group promoters" in printed

    recorded = offline_run(offline_wandb, "train")
    run = recorded["run"]
    assert (run.entity, run.project, run.run_group, run.job_type) == ("tyagilab", "testm3", "promoters", "train")
    assert sorted(run.tags) == ["entity:tyagilab", "group:promoters", "project:testm3"]
    assert recorded["config"]["learning_rate"] == 0.01 and recorded["config"]["num_layers"] == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert recorded["summary"]["test_mcc"] == pytest.approx(metrics["test_mcc"])
    # The same names are the registered version's tags and metadata.
    version = wandb_stack.get_model_version("genomic_bert")
    assert {tag.name for tag in version.tags} >= {"entity:tyagilab", "project:testm3", "group:promoters"}
    assert version.run_metadata["entity_name"] == "tyagilab" and version.run_metadata["group_name"] == "promoters"


def test_without_flags_the_trackers_own_entity_and_project_are_used(wandb_stack, offline_wandb, tiny_kmer_dataset,
                                                                    tmp_path):
    argv = [str(tiny_kmer_dataset / "train.parquet"), "parquet", "-k", "2", "-o", str(tmp_path / "cv"), *TINY]
    assert commands.cross_validate(argv) == 0
    run = offline_run(offline_wandb, "cross_validate")
    assert (run["run"].entity, run["run"].project) == ("stack_team", "stack_project")
    # The original's default group for cross-validation, and the folds' figures.
    assert run["run"].run_group == "crossval" and run["run"].job_type == "cross_validate"
    assert "cv_test_mcc_mean" in run["summary"] and run["summary"]["collapsed_folds"] == 0
