"""The model registry on a throw-away local ZenML stack: register, promote, resolve by stage."""

import json

import pytest

from genomenlp.components.errors import InputError
from genomenlp.components.model_io import MODEL_RESOLVERS, load_model
from genomenlp.components.registry import version_metadata
from genomenlp.components.tokenisers import build_kmer_tokenizer
from genomenlp.components.training.config import ModelConfig
from genomenlp.components.training.model import build_classifier
from genomenlp.components.training.run import save_model_folder

NAME = "registry_test_model"


def tiny_model_folder(path, seed):
    import torch

    tokenizer = build_kmer_tokenizer(2)
    vocab = tokenizer.tokenizer.get_vocab()
    torch.manual_seed(seed)
    config = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=32)
    model = build_classifier(config, len(vocab), ["a", "b"], {t: vocab[t] for t in ("<s>", "</s>", "<pad>")})
    return save_model_folder(model, tokenizer, ["a", "b"], path, {"tokenizer": tokenizer.describe()})


@pytest.fixture(scope="module")
def registry(clean_zenml_client):
    from genomenlp.steps.support import registry as module

    module.install_registry_resolver()
    yield module
    MODEL_RESOLVERS.pop("registry", None)


def test_register_promote_and_resolve(registry, tmp_path):
    weak = tiny_model_folder(tmp_path / "weak", seed=1)
    strong = tiny_model_folder(tmp_path / "strong", seed=2)
    below_baseline = {"test_mcc": 0.50, "label_names": ["a", "b"], "baselines": {"kmer_1_4": {"test_mcc": 0.6}}}
    above_baseline = {"test_mcc": 0.72, "label_names": ["a", "b"], "baselines": {"kmer_1_4": {"test_mcc": 0.6}}}
    first = registry.register_model_folder(weak, version_metadata(below_baseline), name=NAME)
    assert registry.promote_best(NAME) is None  # nothing beats the k-mer baseline yet
    cv = {"summary": {"test_mcc": {"mean": 0.70, "sd": 0.02}}}
    second = registry.register_model_folder(strong, version_metadata(above_baseline, cv), name=NAME)
    assert second == first + 1
    assert registry.promote_best(NAME) == second

    from zenml.client import Client

    version = Client().get_model_version(NAME, second)
    assert version.stage == "production"
    assert version.run_metadata["cv_test_mcc_mean"] == pytest.approx(0.70)
    assert version.run_metadata["kmer_1_4_test_mcc"] == pytest.approx(0.6)

    by_stage = load_model(f"registry:{NAME}@production")
    by_number = load_model(f"registry:{NAME}@{second}")
    assert by_stage.label_names == ["a", "b"]
    import torch

    original = load_model(str(strong)).model.state_dict()
    for key, tensor in by_stage.model.state_dict().items():
        assert torch.equal(tensor, original[key])
        assert torch.equal(tensor, by_number.model.state_dict()[key])
    assert json.loads((tmp_path / "strong" / "genomenlp.json").read_text())["label_names"] == ["a", "b"]


def test_unknown_reference_is_a_one_line_error(registry):
    with pytest.raises(InputError, match="no such model version"):
        load_model(f"registry:{NAME}@999")
    with pytest.raises(InputError, match="no such model version"):
        load_model("registry:never_registered@production")
