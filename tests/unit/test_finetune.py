"""Fine-tuning from a pre-trained encoder: `train --init_from` takes its weights and its shape."""

import gzip
import json
import random

import pytest

from genomenlp.components.cli import kmerise, train
from genomenlp.components.pretraining.config import PretrainConfig
from genomenlp.components.pretraining.mlm import pretrain_encoder
from genomenlp.components.tokenisers import build_kmer_tokenizer
from genomenlp.components.training.config import ModelConfig

TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
TINY = PretrainConfig(max_steps=4, per_device_train_batch_size=8, logging_steps=2, checkpoint_every=2,
                      learning_rate=3e-3, shuffle_buffer=32, seed=3, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A few steps of masked-LM pre-training on a random 3 kb genome with a 3-mer tokeniser."""
    folder = tmp_path_factory.mktemp("encoder")
    rng = random.Random(11)
    genome = folder / "genome.fa.gz"
    with gzip.open(genome, "wt") as handle:
        handle.write(">chr\n" + "".join(rng.choice("ACGT") for _ in range(3000)) + "\n")
    tokens = folder / "k3.json"
    tokens.write_text(build_kmer_tokenizer(3).to_json())
    pretrain_encoder([str(genome)], str(tokens), str(folder / "out"), TINY_MODEL, TINY, show_progress=False)
    return folder / "out", TINY_MODEL


def test_train_init_from_encoder_takes_its_weights_and_shape(encoder, tmp_path, capsys):
    out, model = encoder
    rng = random.Random(5)
    for name, motif in (("with", "TATAAT"), ("without", "")):
        with open(tmp_path / f"{name}.fa", "w") as handle:
            for index in range(30):
                body = "".join(rng.choice("ACGT") for _ in range(40))
                handle.write(f">{name}{index}\n{body[:15]}{motif}{body[15:]}\n")
    data = tmp_path / "data"
    assert kmerise.main(["-i", str(tmp_path / "with.fa"), str(tmp_path / "without.fa"), "-k", "3",
                         "-o", str(data), "--no_progress"]) == 0
    common = [str(data / "train.parquet"), "parquet", str(data / "tokenizer.json"), "--num_train_epochs", "1",
              "--no_progress", "--no_register"]
    assert train.main([*common, "-o", str(tmp_path / "fine"), "--init_from", str(out / "encoder")]) == 0
    shape = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
             "--max_positions", "64"]
    assert train.main([*common, "-o", str(tmp_path / "scratch"), *shape]) == 0
    capsys.readouterr()
    fine = json.loads((tmp_path / "fine" / "metrics.json").read_text())
    scratch = json.loads((tmp_path / "scratch" / "metrics.json").read_text())
    assert fine["initial_weights_sha256"] != scratch["initial_weights_sha256"]
    saved = json.loads((tmp_path / "fine" / "model_files" / "genomenlp.json").read_text())
    assert saved["model"]["hidden_size"] == model.hidden_size  # the encoder's shape, without model flags
    assert saved["training"]["init_from"] == str(out / "encoder")


def test_a_stem_and_a_position_readout_start_fresh_on_a_pre_trained_encoder(encoder):
    out, _ = encoder
    from genomenlp.components.pretraining.transfer import init_classifier_from_encoder
    from genomenlp.components.tokenisers.common import BOS, EOS, PAD
    from genomenlp.components.training.model import build_classifier

    vocab = build_kmer_tokenizer(3).tokenizer.get_vocab()
    classifier = build_classifier(TINY_MODEL.model_copy(update={"conv_kernel": 3, "position_readout": 4}), len(vocab),
                                  ["a", "b"], {token: vocab[token] for token in (BOS, EOS, PAD)})
    report = init_classifier_from_encoder(classifier, str(out / "encoder"))
    assert report["loaded_tensors"] > 0
    assert {name.split(".")[0] for name in report["fresh"]} == {"stem", "readout", "classifier"}


def test_pretraining_refuses_a_stem_with_a_one_line_reason(tmp_path):
    from genomenlp.components.errors import InputError

    tokens = tmp_path / "k3.json"
    tokens.write_text(build_kmer_tokenizer(3).to_json())
    with pytest.raises(InputError, match="--conv_kernel.*give them to train --init_from"):
        pretrain_encoder([str(tokens)], str(tokens), str(tmp_path / "out"),
                         TINY_MODEL.model_copy(update={"conv_kernel": 3}), TINY, show_progress=False)
