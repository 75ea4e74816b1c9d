"""Each step's body on tiny data, called directly through ``step.entrypoint`` (no ZenML store)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from zenml.types import HTMLString

import genomenlp.steps.cross_validate_model as cross_validate_module
import genomenlp.steps.pretrain_encoder as pretrain_encoder_module
import genomenlp.steps.sweep_hyperparameters as sweep_module
import genomenlp.steps.train_classifier as train_classifier_module
from genomenlp.components.configs import (
    DatasetConfig,
    KmerConfig,
    ModelConfig,
    PretrainConfig,
    SweepSpec,
    TokeniseConfig,
    TrainConfig,
)
from genomenlp.components.errors import InputError
from genomenlp.components.export import STAGING_PREFIX
from genomenlp.components.names import Artifacts
from genomenlp.components.tokenisers.common import TokenizerKind, sequence_tokenizer_from_json
from genomenlp.steps.build_kmer_tokeniser import build_kmer_tokeniser
from genomenlp.steps.create_dataset import create_dataset
from genomenlp.steps.cross_validate_model import cross_validate_model
from genomenlp.steps.export_outputs import export_outputs
from genomenlp.steps.fingerprint_inputs import fingerprint_inputs
from genomenlp.steps.pretrain_encoder import pretrain_encoder
from genomenlp.steps.sweep_hyperparameters import sweep_hyperparameters
from genomenlp.steps.train_classifier import train_classifier
from genomenlp.steps.train_tokeniser import train_tokeniser

TINY_DATASET = DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1)


def _files(pair) -> list[str]:
    return [str(path) for path in pair]


def test_train_tokeniser_returns_unigram_json(tiny_fasta_pair):
    text = train_tokeniser.entrypoint(_files(tiny_fasta_pair), TokeniseConfig(vocab_size=32))

    tokenizer = sequence_tokenizer_from_json(text)
    assert tokenizer.kind is TokenizerKind.UNIGRAM
    assert tokenizer.tokenizer.get_vocab_size() <= 32


def test_build_kmer_tokeniser_returns_kmer_json(tiny_fasta_pair):
    text = build_kmer_tokeniser.entrypoint(_files(tiny_fasta_pair), KmerConfig(k=2, stride=2))

    tokenizer = sequence_tokenizer_from_json(text)
    assert (tokenizer.kind, tokenizer.k) == (TokenizerKind.KMER, 2)
    assert tokenizer.tokenizer.get_vocab_size() == 5 + 4**2  # special tokens + every 2-mer


@pytest.mark.parametrize("step", [train_tokeniser, build_kmer_tokeniser], ids=lambda s: s.name)
def test_tokeniser_steps_reject_missing_files(step, tiny_fasta_pair, tmp_path):
    config = TokeniseConfig() if step is train_tokeniser else KmerConfig()
    with pytest.raises(InputError, match="no such file"):
        step.entrypoint([str(tiny_fasta_pair[0]), str(tmp_path / "missing.fasta")], config)


@pytest.mark.parametrize("kmer_stride", [1, 3])
def test_create_dataset_builds_a_private_folder_and_returns_manifest(tiny_fasta_pair, kmer_stride):
    tokenizer_json = build_kmer_tokeniser.entrypoint(
        _files(tiny_fasta_pair), KmerConfig(k=3, stride=kmer_stride)
    )

    folder, manifest = create_dataset.entrypoint(
        _files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, kmer_stride=kmer_stride
    )

    # A staging folder of the step's own, named as the user will find it after the export.
    assert folder.name == "dataset" and folder.parent.name.startswith(STAGING_PREFIX)
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert manifest["tokenizer"]["stride"] == kmer_stride
    assert sum(info["records"] for info in manifest["splits"].values()) == 80
    # A 60-bp record with <s> and </s>: one token per k-mer start.
    first = manifest["sample"]["input_ids"]
    assert len(first) == 2 + len(range(0, 60 - 3 + 1, kmer_stride))


def test_create_dataset_rejects_text_that_is_not_a_tokeniser(tiny_fasta_pair):
    with pytest.raises(InputError, match="not a tokenizers JSON"):
        create_dataset.entrypoint(_files(tiny_fasta_pair), "{}", TINY_DATASET)


def test_export_copies_each_folder_and_refuses_existing_ones(tiny_fasta_pair, tmp_path):
    tokenizer_json = build_kmer_tokeniser.entrypoint(_files(tiny_fasta_pair), KmerConfig(k=2))
    folder, _ = create_dataset.entrypoint(_files(tiny_fasta_pair), tokenizer_json, TINY_DATASET)
    out = tmp_path / "run"

    exported = export_outputs.entrypoint(str(out), dataset=folder)

    assert exported == {"dataset": str((out / "dataset").resolve())}
    assert sorted(p.name for p in (out / "dataset").iterdir()) == sorted(p.name for p in folder.iterdir())
    with pytest.raises(InputError, match="already exists"):
        export_outputs.entrypoint(str(out), dataset=folder)
    flat = export_outputs.entrypoint(str(out / "dataset"), True, flat=True, dataset=folder)
    assert flat == {"dataset": str((out / "dataset").resolve())}


def test_fingerprint_follows_file_contents(tiny_fasta_pair):
    first, no_models, no_sequences = fingerprint_inputs.entrypoint(_files(tiny_fasta_pair))
    tiny_fasta_pair[1].write_text(">edited\nACGT\n")
    second, _, sequences = fingerprint_inputs.entrypoint(_files(tiny_fasta_pair), explain=["ACGTACGT"])

    assert list(first) == _files(tiny_fasta_pair) and no_models == no_sequences == {}
    # An inline sequence is its own content.
    assert list(sequences) == ["ACGTACGT"]
    assert first[str(tiny_fasta_pair[0])] == second[str(tiny_fasta_pair[0])]
    assert first[str(tiny_fasta_pair[1])] != second[str(tiny_fasta_pair[1])]


# A model small enough to train in well under a second on the tiny dataset.
TINY_MODEL = ModelConfig(
    num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64
)
# Tiny data: one or two epochs at these rates still predict one class; collapse detection (tested in
# tests/unit/test_collapse.py) would stop the run, so it is off here.
TINY_TRAINING = TrainConfig(num_train_epochs=2, per_device_train_batch_size=16, device="cpu", collapse_epochs=0)
TINY_SWEEP = SweepSpec(method="grid", parameters={"learning_rate": {"values": [5e-4, 1e-3]}})


@pytest.fixture
def record_metadata(monkeypatch):
    """Record the metadata the training and cross-validation steps log, outside any run.

    Returns:
        ``install(has_model)``: patches the steps' step context (with a model version when
        ``has_model``, as when the pipeline has a ``model:``) and returns the list of calls.
    """

    def install(has_model: bool) -> list:
        calls = []
        context = SimpleNamespace(model_version=object() if has_model else None,
                                  pipeline_run=SimpleNamespace(id="run-id"))
        for module in (train_classifier_module, cross_validate_module):
            monkeypatch.setattr(module, "get_step_context", lambda: context)
            monkeypatch.setattr(
                module, "log_metadata", lambda metadata, **where: calls.append((metadata, where))
            )
        return calls

    return install


def test_sweep_hyperparameters_returns_the_best_trial(tiny_kmer_dataset, monkeypatch):
    logged = []
    monkeypatch.setattr(sweep_module, "log_metadata", lambda metadata, **where: logged.append((metadata, where)))
    monkeypatch.setattr(sweep_module, "get_step_context", lambda: SimpleNamespace(pipeline_run=SimpleNamespace(id=1)))

    best, trials, out, report = sweep_hyperparameters.entrypoint(
        tiny_kmer_dataset, TINY_SWEEP, TINY_MODEL, TINY_TRAINING, 2, epochs=1
    )

    assert best["learning_rate"] in (5e-4, 1e-3)
    assert best["metric_for_best_model"] == "eval_f1"
    assert [row["state"] for row in trials] == ["COMPLETE", "COMPLETE"]
    # Trials train for `epochs`, not for the training settings' num_train_epochs.
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1
    assert out.name == "sweep" and (out / "hyperparams.json").is_file()
    assert isinstance(report, HTMLString) and report == (out / "report.html").read_text()
    headlines = {"trials": 2, "complete_trials": 2, "pruned_trials": 0, "failed_trials": 0,
                 "collapsed_trials": 0, "best_eval_f1": max(row["eval_f1"] for row in trials)}
    # On the step, and prefixed on the run.
    assert logged == [(headlines, {}), ({f"sweep_{key}": value for key, value in headlines.items()},
                                        {"run_id_name_or_prefix": 1})]


@pytest.mark.parametrize("has_model", [False, True], ids=["no-model", "model"])
def test_train_classifier_applies_hyperparameters_and_logs_metrics(
    tiny_kmer_dataset, tmp_path, record_metadata, has_model
):
    logged = record_metadata(has_model)
    hyperparameters = {"learning_rate": 1e-3, "num_heads": 4, "metric_for_best_model": "eval_mcc"}

    model_dir, metrics, out, report = train_classifier.entrypoint(
        tiny_kmer_dataset, hyperparameters, TINY_MODEL, TINY_TRAINING
    )

    assert out.name == "train" and model_dir == out / "model_files"
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert isinstance(report, HTMLString) and report == (out / "report.html").read_text()
    recorded = json.loads((model_dir / "genomenlp.json").read_text())
    assert recorded["model"]["num_heads"] == 4 and recorded["model"]["hidden_size"] == 16
    assert recorded["training"]["learning_rate"] == 1e-3
    assert recorded["training"]["num_train_epochs"] == 2
    assert recorded["training"]["metric_for_best_model"] == "eval_mcc"
    assert metrics["epochs_run"] == 2
    # Step and run metadata always; the model version's as well when the run has a model.
    run = {"run_id_name_or_prefix": "run-id"}
    expected = [{}, run, {"infer_model": True}] if has_model else [{}, run]
    assert [where for _, where in logged] == expected
    metadata = logged[0][0]
    assert metadata["test_mcc"] == metrics["test_mcc"]
    assert metadata["kmer_1_4_test_mcc"] == metrics["baselines"]["kmer_1_4"]["test_mcc"]
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in metadata.values())
    # The run's headline: the model against its k-mer baseline.
    margin = metrics["test_mcc"] - metrics["baselines"]["kmer_1_4"]["test_mcc"]
    assert logged[1][0]["test_mcc_margin_over_kmer"] == pytest.approx(margin)


def test_cross_validate_model_logs_mean_and_sd(tiny_kmer_dataset, tmp_path, record_metadata):
    logged = record_metadata(has_model=True)
    result, out, report = cross_validate_model.entrypoint(
        tiny_kmer_dataset,
        {"learning_rate": 1e-3},
        TINY_MODEL,
        TINY_TRAINING,
        2,
        epochs=1,
    )

    assert [row["fold"] for row in result["folds"]] == [0, 1]
    assert result["training"]["learning_rate"] == 1e-3
    assert result["training"]["num_train_epochs"] == 1
    assert out.name == "cv" and (out / "cv_metrics.json").is_file()
    assert isinstance(report, HTMLString) and report == (out / "report.html").read_text()
    (metadata, _), (on_run, run), (again, where) = logged
    assert on_run == again == metadata
    assert run == {"run_id_name_or_prefix": "run-id"} and where == {"infer_model": True}
    mcc = result["summary"]["test_mcc"]
    assert (metadata["cv_test_mcc_mean"], metadata["cv_test_mcc_sd"]) == (mcc["mean"], mcc["sd"])


@pytest.mark.parametrize("step", [train_classifier, cross_validate_model], ids=lambda s: s.name)
def test_hyperparameters_that_break_the_model_are_named(step, tiny_kmer_dataset, tmp_path):
    # 16 wide with 3 heads: the sweep's value clashes with the configured shape.
    arguments = [tiny_kmer_dataset, {"num_heads": 3}, TINY_MODEL, TINY_TRAINING]
    arguments += [2] if step is cross_validate_model else []
    with pytest.raises(InputError, match=f"{Artifacts.BEST_HYPERPARAMETERS}: .*divisible"):
        step.entrypoint(*arguments)


@pytest.fixture
def one_thread():
    """Tiny models train fastest, and disturb parallel work least, on one thread."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("has_model", [False, True], ids=["no-model", "model"])
def test_pretrain_encoder_masks_the_held_out_split_and_logs_metrics(
    tiny_kmer_dataset, tmp_path, monkeypatch, one_thread, has_model
):
    import random

    import pandas as pd

    from genomenlp.components.sequences import reverse_complement

    held_out = pd.read_parquet(tiny_kmer_dataset / "test.parquet")["feature"].iloc[0]
    rng = random.Random(5)
    flank = ["".join(rng.choice("ACGT") for _ in range(400)) for _ in range(2)]
    # One held-out sequence on the reverse strand of the genome: the exclusion looks at both.
    genome = tmp_path / "genome.fa"
    genome.write_text(f">chr\n{flank[0]}{reverse_complement(held_out)}{flank[1]}\n")
    calls = []
    context = SimpleNamespace(model_version=object() if has_model else None, pipeline_run=SimpleNamespace(id="run-id"))
    monkeypatch.setattr(pretrain_encoder_module, "get_step_context", lambda: context)
    monkeypatch.setattr(
        pretrain_encoder_module, "log_metadata", lambda metadata, **where: calls.append((metadata, where))
    )
    config = PretrainConfig(max_steps=2, per_device_train_batch_size=4, logging_steps=1, checkpoint_every=2,
                            shuffle_buffer=8, device="cpu")
    encoder_dir, metrics, out = pretrain_encoder.entrypoint([str(genome)], tiny_kmer_dataset, config, TINY_MODEL)

    assert out.name == "pretrain" and encoder_dir == out / "encoder"
    assert (out / "metrics.json").is_file() and (out / "history.csv").is_file()
    assert (encoder_dir / "model.safetensors").is_file() and (encoder_dir / "tokenizer.json").is_file()
    # The dataset's tokeniser, so a classifier fine-tuned on the dataset can load the encoder.
    recorded = json.loads((encoder_dir / "genomenlp.json").read_text())
    manifest = json.loads((tiny_kmer_dataset / "manifest.json").read_text())
    assert recorded["tokenizer"]["sha256"] == manifest["tokenizer"]["sha256"]
    assert metrics["bases_removed"] == len(held_out)
    assert metrics["exclusion"]["datasets"] == [str(tiny_kmer_dataset)]
    assert metrics["steps"] == 2
    run = {"run_id_name_or_prefix": "run-id"}
    expected = [{}, run, {"infer_model": True}] if has_model else [{}, run]
    assert [where for _, where in calls] == expected
    metadata = calls[0][0]
    assert metadata["bases_removed"] == len(held_out) and metadata["held_out_found"] == 1
    assert {"mlm_loss", "mlm_accuracy", "tokens_per_second"} <= set(metadata)
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in metadata.values())
