"""The training pipeline end to end on a throw-away local ZenML stack, from Python and from YAML.

One run per tokeniser branch: Unigram from Python without a ZenML model, k-mer through
``zenml pipeline run`` with a ``model:``, so metadata reaches a model version as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForSequenceClassification
from zenml.enums import ExecutionStatus, ModelStages

from genomenlp.components.configs import (
    DatasetConfig,
    InterpretConfig,
    ModelConfig,
    SweepSpec,
    TokeniseConfig,
    TrainConfig,
)
from genomenlp.components.names import Artifacts, Pipelines
from genomenlp.components.registry import promotion_figures
from genomenlp.pipelines.training_pipeline import training_pipeline
from genomenlp.platform import cli

TINY_DATASET = DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1)
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
# Tiny data: one or two epochs at these rates still predict one class; collapse detection (tested in
# tests/unit/test_collapse.py) would stop the run, so it is off here.
TINY_TRAINING = TrainConfig(num_train_epochs=1, per_device_train_batch_size=16, device="cpu", collapse_epochs=0)
LEARNING_RATES = [5e-4, 1e-3]
TINY_SWEEP = SweepSpec(method="grid", parameters={"learning_rate": {"values": LEARNING_RATES}})
EXPECTED_OUTPUTS = {
    "fingerprint_inputs": {Artifacts.INPUT_DIGESTS, Artifacts.MODEL_DIGESTS, Artifacts.EXPLAIN_DIGESTS},
    "create_dataset": {Artifacts.DATASET_DIR, Artifacts.DATASET_MANIFEST},
    "sweep_hyperparameters": {Artifacts.BEST_HYPERPARAMETERS, Artifacts.SWEEP_TRIALS, Artifacts.SWEEP_DIR,
                              Artifacts.SWEEP_REPORT},
    "train_classifier": {Artifacts.MODEL_DIR, Artifacts.TRAINING_METRICS, Artifacts.TRAINING_DIR,
                         Artifacts.TRAINING_REPORT},
    "cross_validate_model": {Artifacts.CV_METRICS, Artifacts.CV_DIR, Artifacts.CV_REPORT},
    "ensemble_models": {Artifacts.SERVED_MODEL_DIR, Artifacts.SERVED_METRICS, Artifacts.ENSEMBLE_DIR,
                        Artifacts.ENSEMBLE_REPORT},
    "promote_model": {Artifacts.PRODUCTION_VERSION},
    "export_outputs": {Artifacts.EXPORTED_FOLDERS},
}
MODEL_NAME = "tiny_promoter_classifier"


def _output(run, name: str):
    (version,) = [step.outputs[name][0] for step in run.steps.values() if name in step.outputs]
    return version


def test_pipeline_run_trains_reports_and_logs_metrics(clean_zenml_client, tiny_fasta_pair, tmp_path, capsys):
    out = tmp_path / "run"
    run = training_pipeline(
        class_files=[str(path) for path in tiny_fasta_pair],
        output_dir=str(out),
        sweep=TINY_SWEEP,
        tokenise=TokeniseConfig(vocab_size=40),
        dataset=TINY_DATASET,
        model=TINY_MODEL,
        training=TINY_TRAINING,
        trials=2,
        folds=2,
        explain=[str(tiny_fasta_pair[0])],
        interpret=InterpretConfig(n_steps=4),
    )

    run = clean_zenml_client.get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED
    assert run.pipeline.name == Pipelines.TRAINING
    assert run.model_version is None
    outputs = {name: set(step.outputs) for name, step in run.steps.items()}
    assert outputs == {**EXPECTED_OUTPUTS, "train_tokeniser": {Artifacts.TOKENIZER_JSON},
                       "interpret_sequences": {Artifacts.INTERPRETATION, Artifacts.INTERPRETATION_DIR,
                                               Artifacts.INTERPRETATION_REPORT}}
    assert (out / "interpret" / "index.html").exists()

    best = _output(run, Artifacts.BEST_HYPERPARAMETERS).load()
    assert best["learning_rate"] in LEARNING_RATES
    assert len(_output(run, Artifacts.SWEEP_TRIALS).load()) == 2
    # The stored copy of the model folder loads as a Hugging Face classifier.
    model_dir = Path(_output(run, Artifacts.MODEL_DIR).load())
    classifier = AutoModelForSequenceClassification.from_pretrained(model_dir)
    assert classifier.config.num_hidden_layers == 1 and classifier.config.num_labels == 2
    recorded = json.loads((model_dir / "genomenlp.json").read_text())
    assert recorded["training"]["learning_rate"] == best["learning_rate"]

    # `cross_validate --config_from_run RUN` takes this run by name: the settings its model was trained with.
    from genomenlp.components.search.runs import RUN_RESOLVERS, resolve_run
    from genomenlp.steps.support.registry import install_run_resolver

    install_run_resolver()
    try:
        settings = resolve_run(run.name, str(tmp_path / "no_sweep_here"))
    finally:
        RUN_RESOLVERS.clear()
    assert settings.source == f"ZenML run {run.name}" and settings.values["learning_rate"] == best["learning_rate"]

    metrics = _output(run, Artifacts.TRAINING_METRICS).load()
    assert run.steps["train_classifier"].run_metadata["test_mcc"] == metrics["test_mcc"]
    served = _served_ensemble(run, metrics, out)
    cv = _output(run, Artifacts.CV_METRICS).load()
    cv_metadata = run.steps["cross_validate_model"].run_metadata
    assert cv_metadata["cv_test_roc_auc_mean"] == cv["summary"]["test_roc_auc"]["mean"]
    for folder in (
        "dataset/manifest.json",
        "sweep/trials.csv",
        "train/report.html",
        "cv/folds.csv",
        "ensemble/report.html",
        "ensemble/model_files/model.safetensors",
    ):
        assert (out / folder).is_file(), folder

    # The reports are artifacts too (HTML visualizations in the dashboard), equal to the exported files.
    assert _output(run, Artifacts.TRAINING_REPORT).load() == (out / "train" / "report.html").read_text()
    assert _output(run, Artifacts.CV_REPORT).load() == (out / "cv" / "report.html").read_text()
    assert _output(run, Artifacts.ENSEMBLE_REPORT).load() == (out / "ensemble" / "report.html").read_text()
    assert _output(run, Artifacts.SWEEP_REPORT).load() == (out / "sweep" / "report.html").read_text()
    assert _output(run, Artifacts.INTERPRETATION_REPORT).load() == (out / "interpret" / "index.html").read_text()
    # The run's own metadata carries the headline: the served model against its k-mer baseline.
    baseline = metrics["baselines"]["kmer_1_4"]["test_mcc"]
    assert run.run_metadata["test_mcc_margin_over_kmer"] == pytest.approx(served["test_mcc"] - baseline)
    assert run.run_metadata["cv_test_mcc_mean"] == cv["summary"]["test_mcc"]["mean"]

    cli.COMMANDS["training"].report(run)
    printed = capsys.readouterr().out
    assert f"{out / 'train' / 'report.html'} (final model)" in printed
    assert (f"Model: {out / 'ensemble' / 'model_files'} (ensemble of the final model and 2 fold models (logits "
            "averaged))") in printed
    alone = f"final model alone {metrics['test_mcc']:.3f}"
    assert f"MCC      {served['test_mcc']:.3f}   ({baseline:.3f})   {alone}" in printed
    assert "MCC" in printed and "1–4-mer baseline" in printed
    # The folds chose the epoch on their held-out rows, and the final classifier stopped there.
    choice = cv["epoch_choice"]
    assert metrics["epoch_choice"]["stop_at_epoch"] == choice["chosen_epoch"] == metrics["model_epoch"]
    assert metrics["stop_at_epoch"] == choice["chosen_epoch"]
    assert (f"checkpoint: epoch {choice['chosen_epoch']} of 1, chosen on the mean held-out f1 of 2 cross-validation "
            "folds") in printed
    assert json.loads((out / "train" / "metrics.json").read_text())["epoch_choice"] == metrics["epoch_choice"]
    assert "chosen on the mean held-out f1 of 2 cross-validation folds" in (out / "train" / "report.html").read_text()
    cv_lead = cv["summary"]["test_mcc"]["mean"] - cv["summary"]["kmer_1_4_test_mcc"]["mean"]
    assert f"Lead over the 1–4-mer baseline: test MCC {served['test_mcc'] - baseline:+.3f}" in printed
    assert f"cross-validated MCC {cv_lead:+.3f}" in printed
    assert f"ZenML run: {run.name}" in printed
    assert "Interpretation:" in printed and "index.html" in printed


def _served_ensemble(run, metrics: dict, out: Path) -> dict:
    """The served model is the final model and both folds' models at the chosen epoch, averaged, scored on test."""
    from genomenlp.components.model_io import load_model
    from genomenlp.components.training.ensemble import split_probabilities
    from genomenlp.components.training.epoch_choice import held_out_figures
    from genomenlp.components.training.run import TrainingData, load_training_data

    served = _output(run, Artifacts.SERVED_METRICS).load()
    ensemble = load_model(str(_output(run, Artifacts.SERVED_MODEL_DIR).load()))
    assert len(ensemble.model.members) == 3
    assert [row["name"] for row in served["ensemble_members"]] == ["final model", "fold 0 at epoch 1",
                                                                  "fold 1 at epoch 1"]
    assert served["final_model"]["test_mcc"] == served["ensemble_members"][0]["test_mcc"] == metrics["test_mcc"]
    test = load_training_data(TrainingData.from_dataset_dir(out / "dataset")).splits["test"]
    probabilities = split_probabilities(ensemble.model, ensemble.tokenizer, test.input_ids)
    assert served["test_mcc"] == pytest.approx(held_out_figures(test.labels, probabilities, 0)["test_mcc"])
    assert served["baselines"] == metrics["baselines"]
    assert run.steps["ensemble_models"].run_metadata["final_model_test_mcc"] == metrics["test_mcc"]
    assert json.loads((out / "ensemble" / "metrics.json").read_text())["test_mcc"] == served["test_mcc"]
    return served


def test_zenml_cli_runs_the_pipeline_from_yaml_with_a_model(clean_zenml_client, zenml_env, tiny_fasta_pair, tmp_path):
    out = tmp_path / "run"
    parameters = {
        "class_files": [str(path) for path in tiny_fasta_pair],
        "output_dir": str(out),
        "kmer": {"k": 3},
        "dataset": TINY_DATASET.model_dump(mode="json"),
        "model": TINY_MODEL.model_dump(mode="json"),
        "training": {**TINY_TRAINING.model_dump(mode="json"), "num_train_epochs": 2},
        "sweep": TINY_SWEEP.model_dump(mode="json", exclude_none=True),
        "trials": 2,
        "folds": 2,
    }
    # Sweep trials and folds train one epoch, the final classifier two.
    steps = {name: {"parameters": {"epochs": 1}} for name in ("sweep_hyperparameters", "cross_validate_model")}
    config = tmp_path / "training_pipeline.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "enable_cache": True,
                "model": {"name": MODEL_NAME},
                "parameters": parameters,
                "steps": steps,
            }
        )
    )
    zenml = Path(sys.executable).with_name("zenml")

    # The working directory is the throw-away ZenML home (no .zen): the repo's .zen stays untouched.
    result = subprocess.run(
        [
            str(zenml),
            "pipeline",
            "run",
            "genomenlp.pipelines.training_pipeline.training_pipeline",
            "-c",
            str(config),
        ],
        env={**os.environ, **zenml_env},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (last,) = clean_zenml_client.list_pipeline_runs(sort_by="desc:created", size=1)
    assert last.status == ExecutionStatus.COMPLETED
    assert "build_kmer_tokeniser" in last.steps
    assert json.loads((out / "sweep" / "metrics.json").read_text())["epochs_run"] == 1
    trained = json.loads((out / "train" / "metrics.json").read_text())
    assert trained["epochs_run"] == 2
    # Folds of one epoch cannot choose where a two-epoch model stops: it chose on valid, and says why.
    assert trained["epoch_choice"] == {"stop_at_epoch": None, "note": "the cross-validation folds trained 1 epoch "
                                       "and this model 2 epochs, so their choice does not apply"}
    assert json.loads((out / "cv" / "cv_metrics.json").read_text())["training"]["num_train_epochs"] == 1
    version = clean_zenml_client.get_model_version(MODEL_NAME, ModelStages.LATEST)
    assert {"test_mcc", "kmer_1_4_test_mcc", "cv_test_mcc_mean"} <= set(version.run_metadata)
    assert version.get_model_artifact(Artifacts.MODEL_DIR) is not None
    # The version serves the ensemble: its registry reference loads the final model and the two folds' averaged.
    from genomenlp.components.model_io import load_model
    from genomenlp.steps.support.registry import resolve_registry_reference

    served = load_model(resolve_registry_reference(f"{MODEL_NAME}@{version.number}"))
    assert len(served.model.members) == 3
    assert version.run_metadata["test_mcc"] == json.loads((out / "ensemble" / "metrics.json").read_text())["test_mcc"]
    # The promotion step ran on the registered version: production goes to it only if it beats its baseline.
    promoted = last.steps["promote_model"].outputs[Artifacts.PRODUCTION_VERSION][0].load()
    score, baseline = promotion_figures(version.run_metadata)
    assert baseline == version.run_metadata["cv_kmer_1_4_test_mcc_mean"]
    beats = score > baseline
    assert promoted == (version.number if beats else None)
