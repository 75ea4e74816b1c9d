"""The pre-training pipeline on a throw-away local ZenML stack, and a training run that starts from its encoder.

The generated genome holds every class sequence (half on the reverse strand), as the bundled E. coli
genome holds the bundled promoters: pre-training must mask exactly the valid and test ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from zenml.enums import ExecutionStatus, ModelStages

from genomenlp.components.configs import DatasetConfig, KmerConfig, ModelConfig, PretrainConfig, SweepSpec, TrainConfig
from genomenlp.components.names import Artifacts, Pipelines
from genomenlp.components.sequences import reverse_complement
from genomenlp.components.tokenisers import build_kmer_tokenizer
from genomenlp.components.tokenisers.common import BOS, EOS, MASK, PAD
from genomenlp.pipelines.training_pipeline import training_pipeline
from genomenlp.platform import cli

ENCODER_MODEL = "tiny_genomic_bert_encoder"
RECORD = 60
TINY_DATASET = DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1)
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
TINY_PRETRAIN = PretrainConfig(max_steps=3, per_device_train_batch_size=8, logging_steps=1, checkpoint_every=3,
                               shuffle_buffer=16, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_dna(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("ACGT") for _ in range(length))


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> SimpleNamespace:
    """Two classes × 40 records of 60 bases (the first with a motif) and a genome they were cut from."""
    folder = tmp_path_factory.mktemp("pretraining_task")
    rng = random.Random(3)
    classes = {"class_a": [], "class_b": []}
    for name, records in classes.items():
        for _ in range(40):
            sequence = _random_dna(rng, RECORD)
            records.append(sequence[:20] + "TATAAT" + sequence[26:] if name == "class_a" else sequence)
        (folder / f"{name}.fasta").write_text("".join(f">{name}_{i}\n{s}\n" for i, s in enumerate(records)))
    pieces = []
    for number, sequence in enumerate([*classes["class_a"], *classes["class_b"]]):
        pieces += [_random_dna(rng, 30), reverse_complement(sequence) if number % 2 else sequence]
    (folder / "genome.fa").write_text(f">chromosome\n{''.join(pieces)}\n")
    return SimpleNamespace(class_files=[str(folder / f"{name}.fasta") for name in classes],
                           genome=str(folder / "genome.fa"), folder=folder)


@pytest.fixture(scope="module")
def pretraining(clean_zenml_client, task) -> SimpleNamespace:
    """``genomenlp-pipeline pretraining`` on a tiny YAML with a registry model: the run and what it printed."""
    out = task.folder / "run"
    config = task.folder / "pretraining_pipeline.yaml"
    config.write_text(yaml.safe_dump({
        "enable_cache": True,
        "model": {"name": ENCODER_MODEL},
        "parameters": {
            "corpus_files": [task.genome],
            "class_files": task.class_files,
            "output_dir": str(out),
            "kmer": {"k": 3},
            "dataset": TINY_DATASET.model_dump(mode="json"),
            "model": TINY_MODEL.model_dump(mode="json"),
            "pretrain": TINY_PRETRAIN.model_dump(mode="json"),
        },
    }))
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        # Stand-in for the repository root: the command's `zenml init` leaves the real .zen alone.
        patch.setattr(cli, "PROJECT_ROOT", task.folder / "project")
        (task.folder / "project").mkdir()
        assert cli.main(["pretraining", "--config", str(config)]) == 0
    (run,) = clean_zenml_client.list_pipeline_runs(sort_by="desc:created", size=1)
    return SimpleNamespace(run=run, printed=printed.getvalue(), out=out)


def test_pretraining_registers_an_encoder_trained_without_the_held_out_split(clean_zenml_client, pretraining):
    run = pretraining.run
    assert run.status == ExecutionStatus.COMPLETED
    assert run.pipeline.name == Pipelines.PRETRAINING
    assert {name: set(step.outputs) for name, step in run.steps.items()} == {
        "fingerprint_inputs": {Artifacts.INPUT_DIGESTS, Artifacts.MODEL_DIGESTS, Artifacts.EXPLAIN_DIGESTS},
        "build_kmer_tokeniser": {Artifacts.TOKENIZER_JSON},
        "create_dataset": {Artifacts.DATASET_DIR, Artifacts.DATASET_MANIFEST},
        "pretrain_encoder": {Artifacts.ENCODER_DIR, Artifacts.PRETRAINING_METRICS, Artifacts.PRETRAINING_DIR},
        "export_outputs": {Artifacts.EXPORTED_FOLDERS},
    }
    assert (pretraining.out / "pretrain" / "encoder" / "model.safetensors").is_file()
    assert (pretraining.out / "dataset" / "manifest.json").is_file()
    version = clean_zenml_client.get_model_version(ENCODER_MODEL, ModelStages.LATEST)
    assert run.model_version.id == version.id
    assert Path(version.get_model_artifact(Artifacts.ENCODER_DIR).load(), "model.safetensors").is_file()

    metrics = run.steps["pretrain_encoder"].outputs[Artifacts.PRETRAINING_METRICS][0].load()
    exclusion = metrics["exclusion"]
    # 8 test + 8 valid records, each found once in the genome, on whichever strand it was put.
    assert exclusion["held_out_sequences"] == exclusion["held_out_found"] == 16
    # The step reads ZenML's copy of the run's dataset folder, so one folder, wherever that copy was.
    assert len(exclusion["datasets"]) == 1
    assert metrics["bases_removed"] == 16 * RECORD
    assert version.run_metadata["bases_removed"] == metrics["bases_removed"]
    assert version.run_metadata["steps"] == TINY_PRETRAIN.max_steps
    assert {"mlm_loss", "mlm_accuracy", "tokens_per_second"} <= set(run.steps["pretrain_encoder"].run_metadata)

    printed = pretraining.printed
    assert f"{16 * RECORD:,} bases removed" in printed and f"sequences of {pretraining.out / 'dataset'}," in printed
    assert f"Encoder: {pretraining.out / 'pretrain' / 'encoder'}" in printed
    assert f"Registry: registry:{ENCODER_MODEL}@{version.number}" in printed


@pytest.fixture
def registry_resolver():
    """``registry:`` references resolve through this store while the test runs (the CLI installs the same)."""
    from genomenlp.components.model_io import MODEL_RESOLVERS
    from genomenlp.steps.support.registry import install_registry_resolver

    install_registry_resolver()
    yield
    MODEL_RESOLVERS.pop("registry", None)


def test_training_from_the_registered_encoder_starts_from_its_weights(
    clean_zenml_client, pretraining, task, registry_resolver
):
    import torch
    from safetensors.torch import load_file

    from genomenlp.components.training.model import build_classifier

    reference = f"registry:{ENCODER_MODEL}@latest"
    out = task.folder / "training"
    # No weight decay: rows that fine-tuning never updates then keep the encoder's values exactly.
    # Collapse detection off: one epoch on tiny data may still predict one class (tests/unit/test_collapse.py).
    training = TrainConfig(num_train_epochs=1, per_device_train_batch_size=16, weight_decay=0.0, device="cpu",
                           init_from=reference, collapse_epochs=0)
    run = training_pipeline(
        class_files=task.class_files,
        output_dir=str(out),
        sweep=SweepSpec(method="grid", parameters={"learning_rate": {"values": [1e-3]}}),
        kmer=KmerConfig(k=3),
        dataset=TINY_DATASET,
        model=TINY_MODEL,
        training=training,
        trials=1,
        folds=2,
    )

    assert clean_zenml_client.get_pipeline_run(run.id).status == ExecutionStatus.COMPLETED
    model_dir = out / "train" / "model_files"
    assert json.loads((model_dir / "genomenlp.json").read_text())["training"]["init_from"] == reference
    encoder_dir = clean_zenml_client.get_model_version(ENCODER_MODEL, ModelStages.LATEST).get_model_artifact(
        Artifacts.ENCODER_DIR).load()
    encoder = load_file(str(Path(encoder_dir, "model.safetensors")))
    classifier = load_file(str(model_dir / "model.safetensors"))
    # Classification rows never hold <mask> nor reach past their <s> + 58 3-mers + </s>, so these
    # embedding rows are untouched by fine-tuning: equal to the encoder's only if it was loaded.
    mask_id = build_kmer_tokenizer(3).tokenizer.token_to_id(MASK)
    used = RECORD - 3 + 1 + 2
    words, positions = "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight"
    assert classifier[words][mask_id].equal(encoder[words][mask_id])
    # ... and pre-training moved them away from the random start the classifier would otherwise have.
    torch.manual_seed(training.seed)
    vocab = build_kmer_tokenizer(3).tokenizer.get_vocab()
    fresh = build_classifier(TINY_MODEL, len(vocab), ["class_a", "class_b"], {t: vocab[t] for t in (BOS, EOS, PAD)})
    assert not fresh.state_dict()[words][mask_id].equal(encoder[words][mask_id])
    assert classifier[positions][used:].equal(encoder[positions][used:])
    assert not classifier[positions][:used].equal(encoder[positions][:used])
