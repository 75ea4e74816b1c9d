"""Caching of the training pipeline: a re-run takes every heavy step from the cache, a changed setting re-runs
only the step it configures and those after it, and output_dir is written every time.
"""

from __future__ import annotations

import json

from zenml import Model
from zenml.enums import ExecutionStatus

from genomenlp.components.configs import DatasetConfig, InterpretConfig, KmerConfig, ModelConfig, SweepSpec, TrainConfig
from genomenlp.components.names import Artifacts
from genomenlp.pipelines.training_pipeline import training_pipeline

MODEL_NAME = "cached_promoter_classifier"
# Every step that trains, encodes or attributes: the ones a re-run must not pay for again.
HEAVY_STEPS = ("build_kmer_tokeniser", "create_dataset", "sweep_hyperparameters", "train_classifier",
               "cross_validate_model", "interpret_sequences")
# Never cached: input digests, promotion (reads the registry) and the export to output_dir.
ALWAYS_RUN = ("fingerprint_inputs", "promote_model", "export_outputs")


def _arguments(fasta_pair, out, **changes) -> dict:
    return {
        "class_files": [str(path) for path in fasta_pair],
        "output_dir": str(out),
        "overwrite": True,
        "sweep": SweepSpec(method="grid", parameters={"learning_rate": {"values": [1e-3]}}),
        "kmer": KmerConfig(k=3),
        "dataset": DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1),
        "model": ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64),
        # One epoch on tiny data can read as collapsed; caching, not collapse, is tested here.
        "training": TrainConfig(num_train_epochs=1, per_device_train_batch_size=16, device="cpu", collapse_epochs=0),
        "trials": 1,
        "folds": 2,
        "explain": [str(fasta_pair[0])],
        "interpret": InterpretConfig(n_steps=4),
        **changes,
    }


def _run(client, fasta_pair, out, **changes):
    pipeline = training_pipeline.with_options(model=Model(name=MODEL_NAME))
    run = client.get_pipeline_run(pipeline(**_arguments(fasta_pair, out, **changes)).id)
    assert run.status == ExecutionStatus.COMPLETED
    return run, {name: step.status for name, step in run.steps.items()}


def test_rerun_is_cached_and_a_changed_setting_reruns_only_its_step_and_after(
    clean_zenml_client, tiny_fasta_pair, tmp_path, one_torch_thread
):
    out = tmp_path / "run"
    first, statuses = _run(clean_zenml_client, tiny_fasta_pair, out)
    assert all(statuses[name] == ExecutionStatus.COMPLETED for name in HEAVY_STEPS)
    report = (out / "train" / "report.html").read_text()
    (out / "train" / "report.html").unlink()

    second, statuses = _run(clean_zenml_client, tiny_fasta_pair, out)

    assert {name: statuses[name] for name in HEAVY_STEPS} == dict.fromkeys(HEAVY_STEPS, ExecutionStatus.CACHED)
    assert {name: statuses[name] for name in ALWAYS_RUN} == dict.fromkeys(ALWAYS_RUN, ExecutionStatus.COMPLETED)
    # The export wrote the folders again from the stored artifacts.
    assert (out / "train" / "report.html").read_text() == report
    assert (out / "interpret" / "index.html").is_file() and (out / "dataset" / "manifest.json").is_file()
    # The cached run's new model version holds the same model and, recorded by promotion, its figures.
    version = clean_zenml_client.get_model_version(MODEL_NAME, second.model_version.number)
    assert version.number == first.model_version.number + 1
    assert version.get_model_artifact(Artifacts.MODEL_DIR).id == first.steps["train_classifier"].outputs[
        Artifacts.MODEL_DIR][0].id
    assert {"test_mcc", "kmer_1_4_test_mcc", "cv_test_mcc_mean"} <= set(version.run_metadata)
    assert "promoted" in second.steps["promote_model"].run_metadata
    # The cached run's page still shows the model against its baseline (logged by promotion).
    assert {"test_mcc_margin_over_kmer", "cv_test_mcc_mean", "promoted"} <= set(second.run_metadata)

    # More folds: cross-validation runs again, and the classifier, whose epoch it chooses, and what reads the
    # classifier; everything before them is cached.
    _, statuses = _run(clean_zenml_client, tiny_fasta_pair, out, folds=3)
    rerun = {"cross_validate_model", "train_classifier", "interpret_sequences"}
    assert all(statuses[name] == ExecutionStatus.COMPLETED for name in rerun)
    assert all(statuses[name] == ExecutionStatus.CACHED for name in HEAVY_STEPS if name not in rerun)
    assert json.loads((out / "cv" / "cv_metrics.json").read_text())["k"] == 3

    # Another split seed: the tokeniser stays cached, the dataset and every step after it run again.
    changed = DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1, seed=7)
    _, statuses = _run(clean_zenml_client, tiny_fasta_pair, out, dataset=changed)
    assert statuses["build_kmer_tokeniser"] == ExecutionStatus.CACHED
    assert all(statuses[name] == ExecutionStatus.COMPLETED for name in HEAVY_STEPS[1:])
