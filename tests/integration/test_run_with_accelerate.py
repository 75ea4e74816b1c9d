"""``processes_per_pod: 2``: the pre-training and training steps run their work through ZenML's ``run_with_accelerate``.

On this machine's CPU (gloo), in a real two-step pipeline on the local ZenML store: each step's work
runs in 2 launched processes, the first writes the run folder, and the step logs its metadata and
returns its artifacts once.
"""

import json

import pytest

from genomenlp.components.names import Artifacts
from genomenlp.components.pretraining.config import PretrainConfig
from genomenlp.components.training.config import ModelConfig, TrainConfig

TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64,
                         dropout=0.0)
TINY_TRAINING = TrainConfig(num_train_epochs=2, per_device_train_batch_size=8, device="cpu", collapse_epochs=0,
                            learning_rate=0.01)
TINY_PRETRAINING = PretrainConfig(max_steps=2, per_device_train_batch_size=4, logging_steps=1, checkpoint_every=2,
                                  shuffle_buffer=8, device="cpu")


@pytest.fixture
def one_omp_thread(monkeypatch):
    # Two processes on a shared 2-core machine: one thread each, as torchrun would set.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_two_processes_per_pod_run_through_run_with_accelerate(clean_zenml_client, tiny_kmer_dataset, tmp_path,
                                                               one_omp_thread, monkeypatch, capfd):
    import zenml.integrations.huggingface.steps as accelerate_steps
    from zenml import pipeline

    from genomenlp.steps.pretrain_encoder import pretrain_encoder
    from genomenlp.steps.train_classifier import train_classifier

    # ZenML's own launcher, watched: the steps must go through it, with 2 processes each.
    launched, original = [], accelerate_steps.run_with_accelerate

    def recording(step, **kwargs):
        launched.append(kwargs)
        return original(step, **kwargs)

    monkeypatch.setattr(accelerate_steps, "run_with_accelerate", recording)
    corpus = sorted(str(path) for path in tiny_kmer_dataset.parent.glob("*.fasta"))

    @pipeline(enable_cache=False)
    def two_processes_each() -> None:
        pretrain_encoder(corpus, tiny_kmer_dataset, TINY_PRETRAINING, TINY_MODEL, kmer_stride=1, processes_per_pod=2)
        train_classifier(tiny_kmer_dataset, {}, TINY_MODEL, TINY_TRAINING, processes_per_pod=2)

    monkeypatch.chdir(tmp_path)
    run = two_processes_each()
    assert [kwargs["num_processes"] for kwargs in launched] == [2, 2]
    steps = run.steps
    metrics = steps["train_classifier"].outputs[Artifacts.TRAINING_METRICS][0].load()
    assert metrics["processes"] == 2 and metrics["sharding"] == "ddp" and metrics["epochs_run"] == 2
    folder = steps["train_classifier"].outputs[Artifacts.TRAINING_DIR][0].load()
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert sorted(path.name for path in folder.iterdir()) == ["history.csv", "metrics.json", "model_files", "plots",
                                                              "report.html", "test_predictions.csv"]
    assert steps["train_classifier"].run_metadata["test_mcc"] == metrics["test_mcc"]
    pretrained = steps["pretrain_encoder"].outputs[Artifacts.PRETRAINING_METRICS][0].load()
    assert pretrained["steps"] == 2 and steps["pretrain_encoder"].run_metadata["steps"] == 2
    encoder = steps["pretrain_encoder"].outputs[Artifacts.ENCODER_DIR][0].load()
    assert (encoder / "model.safetensors").stat().st_size > 0
    printed = capfd.readouterr().out
    # Metric lines from the first process only: 2 validations, 2 MLM logging steps.
    assert printed.count("eval_f1=") == 2 and printed.count("mlm_loss=") == 2
    # run_with_accelerate's script and its output file are removed from the working folder.
    assert not list(tmp_path.glob("*.py")) and not list(tmp_path.glob("*.out"))
