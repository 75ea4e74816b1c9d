"""Our Integrated Gradients against Captum's (the original's method) and the pruned classifier path."""

import random

import numpy as np
import pytest
import torch

from genomenlp.components.inference.attribution import attribute_windows, gauss_legendre
from genomenlp.components.inference.captum_reference import captum_attribute_windows
from genomenlp.components.inference.classifier_path import embedding_output, logits_from_embeddings
from genomenlp.components.inference.windows import special_ids
from genomenlp.components.model_io import load_model
from genomenlp.components.tokenisers import build_kmer_tokenizer

LABELS = ["promoter", "other", "enhancer"]
MAX_POSITIONS = 24


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory, random_classifier_folder):
    root = tmp_path_factory.mktemp("attribution_models")
    return {architecture: load_model(random_classifier_folder(root / architecture, build_kmer_tokenizer(3), LABELS,
                                                              MAX_POSITIONS, architecture, num_layers=2))
            for architecture in ("bert", "distilbert")}


def windows_of(loaded, count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    sequences = ["".join(rng.choice("ACGT") for _ in range(rng.randint(6, 40))) for _ in range(count)]
    return [encoding.ids for encoding in loaded.tokenizer.encode_batch(sequences, MAX_POSITIONS)]


@pytest.mark.parametrize("architecture", ["bert", "distilbert"])
def test_classifier_path_gives_the_library_logits(models, architecture):
    model = models[architecture].model
    windows = windows_of(models[architecture], 6, seed=1)
    width = max(len(window) for window in windows)
    pad = special_ids(models[architecture].tokenizer)["<pad>"]
    ids = torch.tensor([window + [pad] * (width - len(window)) for window in windows])
    mask = torch.tensor([[1] * len(window) + [0] * (width - len(window)) for window in windows])
    expected = model(input_ids=ids, attention_mask=mask).logits
    got = logits_from_embeddings(model, embedding_output(model, ids), mask)
    assert len({len(window) for window in windows}) > 1, "padding must be exercised"
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("architecture", ["bert", "distilbert"])
def test_matches_captum_layer_integrated_gradients(models, architecture):
    loaded = models[architecture]
    special = special_ids(loaded.tokenizer)
    windows = windows_of(loaded, 7, seed=2)
    targets = [index % len(LABELS) for index in range(len(windows))]
    ours = attribute_windows(loaded.model, windows, targets, special, n_steps=12, batch_size=4, tokens_per_pass=300)
    reference = captum_attribute_windows(loaded.model, windows, targets, special, n_steps=12, batch_size=1)
    for mine, theirs in zip(ours, reference, strict=True):
        np.testing.assert_allclose(mine.scores, theirs.scores, rtol=1e-4, atol=1e-6)
        assert mine.delta == pytest.approx(theirs.delta, abs=1e-5)


def test_gauss_legendre_integrates_polynomials_exactly():
    nodes, weights = gauss_legendre(4)
    assert weights.sum() == pytest.approx(1.0)
    assert (nodes > 0).all() and (nodes < 1).all()
    assert (weights * nodes**7).sum() == pytest.approx(1 / 8)  # degree 2n − 1 is exact
