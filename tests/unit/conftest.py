"""Shared test fixtures: a tiny learnable dataset, and random classifiers saved as `train` saves them."""

import random

import pytest

from genomenlp.components.cli import kmerise
from genomenlp.components.training.run import TrainingData


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """2-mer dataset of two classes; the first carries a motif, so there is something to learn."""
    folder = tmp_path_factory.mktemp("tiny_training")
    rng = random.Random(0)
    for name, motif in (("with_motif", "TATAATTATAAT"), ("without", None)):
        with open(folder / f"{name}.fa", "w") as handle:
            for index in range(60):
                sequence = "".join(rng.choice("ACGT") for _ in range(40))
                if motif:
                    sequence = sequence[:10] + motif + sequence[22:]
                handle.write(f">{name}{index}\n{sequence}\n")
    data = folder / "data"
    args = ["-i", str(folder / "with_motif.fa"), str(folder / "without.fa"), "-k", "2", "-t", str(folder / "k.json"),
            "-o", str(data), "--no_progress", "--split_train", "0.6", "--split_test", "0.2", "--split_val", "0.2"]
    assert kmerise.main(args) == 0
    return TrainingData(str(data / "train.parquet"), "parquet", str(folder / "k.json"))


@pytest.fixture(scope="session")
def random_classifier_folder():
    """Builder of a random classifier folder (1 layer unless asked); weights spread (std 0.4) so inputs get
    distinct outputs.

    A fresh initialisation (std 0.02) gives every input nearly the same probabilities and attributions.
    """
    import torch

    from genomenlp.components.tokenisers.common import BOS, EOS, PAD
    from genomenlp.components.training.config import ModelConfig
    from genomenlp.components.training.model import build_classifier
    from genomenlp.components.training.run import save_model_folder

    def build(folder, tokenizer, labels, max_positions, architecture="bert", seed=0, num_layers=1,
              conv_kernel=0, position_readout=0) -> str:
        vocab = tokenizer.tokenizer.get_vocab()
        torch.manual_seed(seed)
        config = ModelConfig(architecture=architecture, num_layers=num_layers, hidden_size=16, num_heads=2,
                             intermediate_size=32, max_positions=max_positions, dropout=0.0, conv_kernel=conv_kernel,
                             position_readout=position_readout)
        model = build_classifier(config, len(vocab), labels, {token: vocab[token] for token in (BOS, EOS, PAD)})
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.dim() > 1:
                    parameter.normal_(0.0, 0.4)
        folder.mkdir(parents=True)
        save_model_folder(model, tokenizer, labels, folder, {"tokenizer": tokenizer.describe()})
        return str(folder)

    return build


@pytest.fixture(scope="module")
def client(clean_zenml_client):
    """A throw-away ZenML store for commands that register models; the registry resolver is removed afterwards."""
    from genomenlp.components.model_io import MODEL_RESOLVERS

    yield clean_zenml_client
    MODEL_RESOLVERS.pop("registry", None)
