"""An ensemble is one model: the mean of its members' logits, for predict, interpret and the commands."""

import csv
import json
import random

import numpy as np
import pytest
import torch

from genomenlp.components.cli import ensemble as ensemble_command
from genomenlp.components.cli import fit_powerlaw, interpret, predict
from genomenlp.components.errors import InputError
from genomenlp.components.inference.attribution import attribute_windows
from genomenlp.components.inference.classifier_path import classifier_logits
from genomenlp.components.inference.windows import special_ids
from genomenlp.components.model_io import load_model
from genomenlp.components.tokenisers import build_kmer_tokenizer
from genomenlp.components.training.ensemble import build_ensemble_folder, ensemble_description, served_model_folder
from genomenlp.components.training.ensemble_model import is_ensemble

LABELS = ["promoter", "other"]
MAX_POSITIONS = 24

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def members(tmp_path_factory, random_classifier_folder):
    """Three different members on one tokeniser: two plain BERTs and one with a stem and a position readout."""
    root = tmp_path_factory.mktemp("ensemble_members")
    tokenizer = build_kmer_tokenizer(3)
    return [("bert a", random_classifier_folder(root / "a", tokenizer, LABELS, MAX_POSITIONS, seed=1)),
            ("bert b", random_classifier_folder(root / "b", tokenizer, LABELS, MAX_POSITIONS, seed=2, num_layers=2)),
            ("conv", random_classifier_folder(root / "c", tokenizer, LABELS, MAX_POSITIONS, seed=3, conv_kernel=5,
                                              position_readout=4))]


@pytest.fixture(scope="module")
def ensemble_dir(members, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble") / "out"
    assert build_ensemble_folder(members, out) == {"members": [{"name": name, "model": path}
                                                               for name, path in members]}
    return out / "model_files"


def windows(loaded, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = random.Random(seed)
    sequences = ["".join(rng.choice("ACGT") for _ in range(rng.randint(6, 40))) for _ in range(count)]
    rows = [encoding.ids for encoding in loaded.tokenizer.encode_batch(sequences, MAX_POSITIONS)]
    width, pad = max(map(len, rows)), special_ids(loaded.tokenizer)["<pad>"]
    ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    return ids, mask


def test_logits_are_the_mean_of_the_members_logits(members, ensemble_dir):
    loaded = load_model(str(ensemble_dir))
    assert is_ensemble(loaded.model) and len(loaded.model.members) == 3
    assert loaded.label_names == LABELS and loaded.max_tokens == MAX_POSITIONS
    assert loaded.metadata["ensemble_members"] == ["bert a", "bert b", "conv"]
    ids, mask = windows(loaded, 9, seed=1)
    with torch.no_grad():
        each = [load_model(path).model(input_ids=ids, attention_mask=mask).logits for _, path in members]
        expected = torch.stack(each).mean(dim=0)
        torch.testing.assert_close(loaded.model(input_ids=ids, attention_mask=mask).logits, expected)
        # The pruned path of every member gives the same logits.
        torch.testing.assert_close(classifier_logits(loaded.model, ids, mask), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(each[0], each[1]), "members must differ for the mean to be tested"


def test_predict_command_takes_the_ensemble_as_one_model(members, ensemble_dir, tmp_path):
    out = tmp_path / "p.tsv"
    sequences = ["ACGTTGCAAGGCTTAC", "TTTTAAAACCCGGGTATAAT"]
    assert predict.main([str(ensemble_dir), *sequences, "-o", str(out)]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    loaded = load_model(str(ensemble_dir))
    for sequence, row in zip(sequences, rows, strict=True):
        ids = torch.tensor([loaded.tokenizer.encode_batch([sequence], MAX_POSITIONS)[0].ids])
        with torch.no_grad():
            logits = torch.stack([load_model(path).model(input_ids=ids).logits for _, path in members]).mean(dim=0)
        expected = torch.softmax(logits, dim=-1)[0]
        assert float(row["p_promoter"]) == pytest.approx(float(expected[0]), abs=1e-5)


def test_attributions_are_the_members_mean_and_complete(members, ensemble_dir):
    loaded = load_model(str(ensemble_dir))
    special = special_ids(loaded.tokenizer)
    ids, mask = windows(loaded, 5, seed=2)
    rows = [row[: int(length)].tolist() for row, length in zip(ids, mask.sum(dim=1), strict=True)]
    targets = [index % 2 for index in range(len(rows))]
    ours = attribute_windows(loaded.model, rows, targets, special, n_steps=64, batch_size=2)
    each = [attribute_windows(load_model(path).model, rows, targets, special, n_steps=64, batch_size=2)
            for _, path in members]
    baseline = torch.tensor([[special["<s>"]] + [special["<pad>"]] * (len(row) - 2) + [special["</s>"]]
                             for row in rows[:1]])
    for index, result in enumerate(ours):
        np.testing.assert_allclose(result.scores, np.mean([member[index].scores for member in each], axis=0),
                                   rtol=1e-6, atol=1e-9)
        assert abs(result.delta) < 1e-2 * max(1.0, abs(float(result.scores.sum())))
    with torch.no_grad():
        first = torch.tensor([rows[0]])
        difference = (loaded.model(input_ids=first).logits - loaded.model(input_ids=baseline).logits)[0, targets[0]]
    assert float(ours[0].scores.sum()) == pytest.approx(float(difference), abs=2e-2)


def test_interpret_command_explains_the_ensemble(ensemble_dir, tmp_path):
    out = tmp_path / "explained"
    assert interpret.main([str(ensemble_dir), "ACGTTGCAAGGCTTACGGATATAATCC", "-o", str(out), "--no_progress"]) == 0
    with (out / "summary.tsv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle, delimiter="\t"))
    assert row["predicted_label"] in LABELS and float(row["max_abs_delta"]) < 0.05
    assert f"<td>{row['predicted_label']}</td>" in (out / "index.html").read_text(encoding="utf-8")


def _wide_model(folder, seed: int) -> str:
    """A 64-wide random classifier: wide enough for WeightWatcher to fit its matrices."""
    from genomenlp.components.tokenisers.common import BOS, EOS, PAD
    from genomenlp.components.training.config import ModelConfig
    from genomenlp.components.training.model import build_classifier
    from genomenlp.components.training.run import save_model_folder

    tokenizer = build_kmer_tokenizer(3)
    vocab = tokenizer.tokenizer.get_vocab()
    torch.manual_seed(seed)
    model = build_classifier(ModelConfig(num_layers=1, hidden_size=64, num_heads=2, intermediate_size=128,
                                         max_positions=64), len(vocab), LABELS,
                             {token: vocab[token] for token in (BOS, EOS, PAD)})
    save_model_folder(model, tokenizer, LABELS, folder, {})
    return str(folder)


def test_fit_powerlaw_analyses_every_member_of_an_ensemble(tmp_path, capsys):
    members = [(f"m{seed}", _wide_model(tmp_path / f"m{seed}", seed)) for seed in (1, 2)]
    build_ensemble_folder(members, tmp_path / "ensemble")
    out = tmp_path / "powerlaw"
    assert fit_powerlaw.main([members[0][1], str(tmp_path / "ensemble" / "model_files"), "-o", str(out)]) == 0
    with (out / "summary.tsv").open(newline="") as handle:
        single, ensemble = list(csv.DictReader(handle, delimiter="\t"))
    assert ensemble["architecture"] == "genomic_ensemble"
    # Every member's matrices, numbered by member; the summary figures are over all of them.
    assert int(ensemble["layers"]) == 2 * int(single["layers"]) > 0
    with (out / "ensemble" / "alpha.tsv").open(newline="") as handle:
        assert {row["member"] for row in csv.DictReader(handle, delimiter="\t")} == {"0", "1"}


def test_members_that_do_not_fit_together_are_refused_and_nothing_is_written(members, ensemble_dir, tmp_path,
                                                                             random_classifier_folder):
    other = random_classifier_folder(tmp_path / "k2", build_kmer_tokenizer(2), LABELS, MAX_POSITIONS)
    relabelled = random_classifier_folder(tmp_path / "labels", build_kmer_tokenizer(3), ["x", "y"], MAX_POSITIONS)
    out = tmp_path / "out"
    cases = [([members[0]], "at least two models"), ([members[0], ("k2", other)], "another tokeniser"),
             ([members[0], ("labels", relabelled)], "has classes"),
             ([members[0], ("nested", str(ensemble_dir))], "is an ensemble already")]
    for chosen, message in cases:
        with pytest.raises(InputError, match=message):
            build_ensemble_folder(chosen, out)
        assert not out.exists()


def test_command_writes_the_folder_and_refuses_to_replace_it(members, tmp_path, capsys):
    out = tmp_path / "cli"
    args = [members[0][1], members[1][1], "-o", str(out)]
    assert ensemble_command.main(args) == 0
    assert "ensemble of 2 models" in capsys.readouterr().out
    assert is_ensemble(load_model(str(out / "model_files")).model)
    assert ensemble_command.main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert ensemble_command.main([*args, "--overwrite"]) == 0
    assert ensemble_command.main([members[0][1], "--cross_validation", str(tmp_path), "-o", str(tmp_path / "x")]) == 2
    assert "cv_metrics.json" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert json.loads((out / "model_files" / "config.json").read_text())["model_type"] == "genomic_ensemble"


@pytest.mark.parametrize(("final_metrics", "cv_result", "reason"), [
    ({"collapsed": "collapsed: one class"}, {"chosen_models": ["fold_0/model_at_chosen_epoch"]},
     "the final model collapsed"),
    ({"collapsed": None}, {"chosen_models": []}, "the cross-validation kept no fold model"),
])
def test_without_an_ensemble_the_final_model_is_served_alone_and_says_why(members, tmp_path, final_metrics,
                                                                        cv_result, reason):
    out = tmp_path / "served"
    served = served_model_folder({"test_mcc": 0.1, **final_metrics}, members[0][1], tmp_path / "cv", cv_result,
                                 None, out)
    assert reason in served["ensemble_note"] and served["ensemble_members"][0]["name"] == "final model"
    assert served["test_mcc"] == 0.1 and "final_model" not in served
    assert json.loads((out / "metrics.json").read_text()) == served
    assert not is_ensemble(load_model(str(out / "model_files")).model)
    assert ensemble_description(served).startswith("no ensemble: ")
