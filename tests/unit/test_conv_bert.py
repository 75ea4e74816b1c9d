"""The convolutional-stem BERT: a real HF model that trains, saves, reloads, predicts and is explained."""

import json

import pytest
import torch

from genomenlp.components.cli import predict, train
from genomenlp.components.inference.classifier_path import classifier_logits
from genomenlp.components.model_io import load_model
from genomenlp.components.training.config import ModelConfig
from genomenlp.components.training.model import build_classifier

SPECIAL = {"<s>": 0, "</s>": 1, "<pad>": 2}
STEM = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=32, conv_kernel=5,
                   position_readout=4)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def batch(seed: int = 0):
    """Four rows of token ids, the third padded after 10 tokens."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 20, (4, 16), generator=generator)
    ids[:, 0] = SPECIAL["<s>"]
    mask = torch.ones_like(ids)
    mask[2, 10:], ids[2, 10:] = 0, SPECIAL["<pad>"]
    return ids, mask


@pytest.mark.parametrize(("fields", "message"), [
    ({"conv_kernel": 4}, "must be odd"),
    ({"conv_kernel": 3, "architecture": "distilbert"}, "need architecture bert"),
    ({"position_readout": 8, "architecture": "distilbert"}, "need architecture bert"),
])
def test_bad_stem_settings_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**fields)


def test_logits_do_not_depend_on_padding_and_the_attribution_path_is_the_forward():
    torch.manual_seed(0)
    model = build_classifier(STEM, 20, ["a", "b"], SPECIAL).eval()
    assert model.config.model_type == "genomic_conv_bert" and model.stem.conv.kernel_size == (5,)
    assert not model.readout.weight.any(), "the readout starts at zero: training starts from the pooled head"
    with torch.no_grad():
        model.readout.weight.normal_(0, 0.5)
    ids, mask = batch()
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask).logits
        alone = model(input_ids=ids[2:3, :10], attention_mask=mask[2:3, :10]).logits
        pruned = classifier_logits(model, ids, mask)
    torch.testing.assert_close(padded[2], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded, pruned)
    assert not torch.allclose(padded[0], padded[1]), "rows should get their own logits"


def test_the_stem_changes_what_the_model_computes():
    """Same seed, same encoder initialisation order: the stem alone makes the difference."""
    ids, mask = batch(1)
    outputs = {}
    for kernel in (0, 5):
        torch.manual_seed(0)
        model = build_classifier(STEM.model_copy(update={"conv_kernel": kernel}), 20, ["a", "b"], SPECIAL).eval()
        with torch.no_grad():
            outputs[kernel] = model(input_ids=ids, attention_mask=mask).logits
    assert outputs[0].shape == outputs[5].shape and not torch.allclose(outputs[0], outputs[5])


def test_train_with_a_stem_then_reload_and_predict(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    args = [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, "-o", str(out), "--num_train_epochs", "2",
            "--learning_rate", "0.003", "--num_layers", "1", "--hidden_size", "16", "--num_heads", "2",
            "--intermediate_size", "32", "--max_positions", "64", "--conv_kernel", "5", "--position_readout", "4",
            "--no_progress", "-d", "cpu"]
    assert train.main(args) == 0, capsys.readouterr().err
    folder = out / "model_files"
    saved = json.loads((folder / "config.json").read_text())
    assert saved["conv_kernel"] == 5 and saved["position_readout"] == 4
    loaded = load_model(str(folder))
    assert type(loaded.model).__name__ == "StemBertForSequenceClassification" and not loaded.model.training
    assert predict.main([str(folder), "TATAATTATAATACGTACGTACGT", "ACGTACGTACGTACGTACGTACGT",
                         "-o", str(tmp_path / "p.tsv")]) == 0
    rows = (tmp_path / "p.tsv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].split("\t")[:2] == ["id", "predicted_label"]
