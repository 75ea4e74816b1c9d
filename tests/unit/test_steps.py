"""Each step's body on tiny data, called directly through ``step.entrypoint`` (no ZenML store)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import steps.cross_validate_model as cross_validate_module
import steps.pretrain_encoder as pretrain_encoder_module
import steps.train_classifier as train_classifier_module
from components.configs import (
    DatasetConfig,
    KmerConfig,
    ModelConfig,
    PretrainConfig,
    SweepSpec,
    TokeniseConfig,
    TrainConfig,
)
from components.errors import InputError
from components.names import Artifacts
from components.tokenisers.common import TokenizerKind, sequence_tokenizer_from_json
from steps.build_kmer_tokeniser import build_kmer_tokeniser
from steps.create_dataset import create_dataset
from steps.cross_validate_model import cross_validate_model
from steps.pretrain_encoder import pretrain_encoder
from steps.sweep_hyperparameters import sweep_hyperparameters
from steps.train_classifier import train_classifier
from steps.train_tokeniser import train_tokeniser

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
def test_create_dataset_writes_folder_and_returns_manifest(tiny_fasta_pair, tmp_path, kmer_stride):
    tokenizer_json = build_kmer_tokeniser.entrypoint(
        _files(tiny_fasta_pair), KmerConfig(k=3, stride=kmer_stride)
    )
    out = tmp_path / "dataset"

    folder, manifest = create_dataset.entrypoint(
        _files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, str(out), kmer_stride=kmer_stride
    )

    assert folder == out
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["tokenizer"]["stride"] == kmer_stride
    assert sum(info["records"] for info in manifest["splits"].values()) == 80
    # A 60-bp record with <s> and </s>: one token per k-mer start.
    first = manifest["sample"]["input_ids"]
    assert len(first) == 2 + len(range(0, 60 - 3 + 1, kmer_stride))


def test_create_dataset_refuses_existing_folder_unless_overwrite(tiny_fasta_pair, tmp_path):
    tokenizer_json = build_kmer_tokeniser.entrypoint(_files(tiny_fasta_pair), KmerConfig(k=2))
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")  # an empty folder is taken as absent

    with pytest.raises(InputError, match="already exists"):
        create_dataset.entrypoint(_files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, str(out))
    folder, _ = create_dataset.entrypoint(
        _files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, str(out), True
    )
    assert (folder / "manifest.json").is_file()


def test_create_dataset_rejects_text_that_is_not_a_tokeniser(tiny_fasta_pair, tmp_path):
    with pytest.raises(InputError, match="not a tokenizers JSON"):
        create_dataset.entrypoint(
            _files(tiny_fasta_pair), "{}", TINY_DATASET, str(tmp_path / "dataset")
        )


def test_create_dataset_wants_a_local_folder(tiny_fasta_pair):
    tokenizer_json = build_kmer_tokeniser.entrypoint(_files(tiny_fasta_pair), KmerConfig(k=2))
    with pytest.raises(InputError, match="must be a local folder"):
        create_dataset.entrypoint(_files(tiny_fasta_pair), tokenizer_json, TINY_DATASET, "s3://b/d")


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
        context = SimpleNamespace(model_version=object() if has_model else None)
        for module in (train_classifier_module, cross_validate_module):
            monkeypatch.setattr(module, "get_step_context", lambda: context)
            monkeypatch.setattr(
                module, "log_metadata", lambda metadata, **where: calls.append((metadata, where))
            )
        return calls

    return install


def test_sweep_hyperparameters_returns_the_best_trial(tiny_kmer_dataset, tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")

    best, trials = sweep_hyperparameters.entrypoint(
        tiny_kmer_dataset, TINY_SWEEP, TINY_MODEL, TINY_TRAINING, 2, str(out), True, epochs=1
    )

    assert best["learning_rate"] in (5e-4, 1e-3)
    assert best["metric_for_best_model"] == "eval_f1"
    assert [row["state"] for row in trials] == ["COMPLETE", "COMPLETE"]
    assert not (out / "stale.txt").exists()
    # Trials train for `epochs`, not for the training settings' num_train_epochs.
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1


@pytest.mark.parametrize("has_model", [False, True], ids=["no-model", "model"])
def test_train_classifier_applies_hyperparameters_and_logs_metrics(
    tiny_kmer_dataset, tmp_path, record_metadata, has_model
):
    logged = record_metadata(has_model)
    out = tmp_path / "train"
    hyperparameters = {"learning_rate": 1e-3, "num_heads": 4, "metric_for_best_model": "eval_mcc"}

    model_dir, metrics = train_classifier.entrypoint(
        tiny_kmer_dataset, hyperparameters, TINY_MODEL, TINY_TRAINING, str(out)
    )

    assert model_dir == out / "model_files"
    recorded = json.loads((model_dir / "genomenlp.json").read_text())
    assert recorded["model"]["num_heads"] == 4 and recorded["model"]["hidden_size"] == 16
    assert recorded["training"]["learning_rate"] == 1e-3
    assert recorded["training"]["num_train_epochs"] == 2
    assert recorded["training"]["metric_for_best_model"] == "eval_mcc"
    assert metrics["epochs_run"] == 2
    # Step metadata always; the model version's as well when the run has a model.
    expected = [{}, {"infer_model": True}] if has_model else [{}]
    assert [where for _, where in logged] == expected
    metadata = logged[0][0]
    assert metadata["test_mcc"] == metrics["test_mcc"]
    assert metadata["kmer_1_4_test_mcc"] == metrics["baselines"]["kmer_1_4"]["test_mcc"]
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in metadata.values())


def test_cross_validate_model_logs_mean_and_sd(tiny_kmer_dataset, tmp_path, record_metadata):
    logged = record_metadata(has_model=True)
    result = cross_validate_model.entrypoint(
        tiny_kmer_dataset,
        {"learning_rate": 1e-3},
        TINY_MODEL,
        TINY_TRAINING,
        2,
        str(tmp_path / "cv"),
        epochs=1,
    )

    assert [row["fold"] for row in result["folds"]] == [0, 1]
    assert result["training"]["learning_rate"] == 1e-3
    assert result["training"]["num_train_epochs"] == 1
    assert (tmp_path / "cv" / "cv_metrics.json").is_file()
    (metadata, _), (again, where) = logged
    assert again == metadata and where == {"infer_model": True}
    mcc = result["summary"]["test_mcc"]
    assert (metadata["cv_test_mcc_mean"], metadata["cv_test_mcc_sd"]) == (mcc["mean"], mcc["sd"])


@pytest.mark.parametrize("step", [train_classifier, cross_validate_model], ids=lambda s: s.name)
def test_hyperparameters_that_break_the_model_are_named(step, tiny_kmer_dataset, tmp_path):
    # 16 wide with 3 heads: the sweep's value clashes with the configured shape.
    arguments = [tiny_kmer_dataset, {"num_heads": 3}, TINY_MODEL, TINY_TRAINING]
    arguments += [2] if step is cross_validate_model else []
    with pytest.raises(InputError, match=f"{Artifacts.BEST_HYPERPARAMETERS}: .*divisible"):
        step.entrypoint(*arguments, str(tmp_path / "out"))


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

    from components.sequences import reverse_complement

    held_out = pd.read_parquet(tiny_kmer_dataset / "test.parquet")["feature"].iloc[0]
    rng = random.Random(5)
    flank = ["".join(rng.choice("ACGT") for _ in range(400)) for _ in range(2)]
    # One held-out sequence on the reverse strand of the genome: the exclusion looks at both.
    genome = tmp_path / "genome.fa"
    genome.write_text(f">chr\n{flank[0]}{reverse_complement(held_out)}{flank[1]}\n")
    calls = []
    context = SimpleNamespace(model_version=object() if has_model else None)
    monkeypatch.setattr(pretrain_encoder_module, "get_step_context", lambda: context)
    monkeypatch.setattr(
        pretrain_encoder_module, "log_metadata", lambda metadata, **where: calls.append((metadata, where))
    )
    config = PretrainConfig(max_steps=2, per_device_train_batch_size=4, logging_steps=1, checkpoint_every=2,
                            shuffle_buffer=8, device="cpu")
    out = tmp_path / "pretrain"

    encoder_dir, metrics = pretrain_encoder.entrypoint([str(genome)], tiny_kmer_dataset, config, TINY_MODEL, str(out))

    assert encoder_dir == out / "encoder"
    assert (encoder_dir / "model.safetensors").is_file() and (encoder_dir / "tokenizer.json").is_file()
    # The dataset's tokeniser, so a classifier fine-tuned on the dataset can load the encoder.
    recorded = json.loads((encoder_dir / "genomenlp.json").read_text())
    manifest = json.loads((tiny_kmer_dataset / "manifest.json").read_text())
    assert recorded["tokenizer"]["sha256"] == manifest["tokenizer"]["sha256"]
    assert metrics["bases_removed"] == len(held_out)
    assert metrics["exclusion"]["datasets"] == [str(tiny_kmer_dataset)]
    assert metrics["steps"] == 2
    expected = [{}, {"infer_model": True}] if has_model else [{}]
    assert [where for _, where in calls] == expected
    metadata = calls[0][0]
    assert metadata["bases_removed"] == len(held_out) and metadata["held_out_found"] == 1
    assert {"mlm_loss", "mlm_accuracy", "tokens_per_second"} <= set(metadata)
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in metadata.values())
