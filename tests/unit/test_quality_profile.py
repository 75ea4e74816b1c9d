"""The quick profile's closing line: by how much the model leads the 1–4-mer baseline."""

from genomenlp.components.training.epoch_choice import checkpoint_choice
from genomenlp.platform.cli import lead_over_baseline

METRICS = {"test_mcc": 0.70, "baselines": {"kmer_1_4": {"test_mcc": 0.65}}}
CV = {"test_mcc": {"mean": 0.60, "sd": 0.01}, "kmer_1_4_test_mcc": {"mean": 0.62, "sd": 0.02}}


def test_lead_names_the_margin_on_test_and_in_cross_validation():
    line = lead_over_baseline(METRICS, CV)
    assert "test MCC +0.050 (beats it)" in line
    assert "cross-validated MCC -0.020 (does NOT beat it)" in line


def test_lead_without_baselines_says_so():
    assert lead_over_baseline({"test_mcc": 0.7}, {"test_mcc": {"mean": 0.6, "sd": 0}}).endswith("no baseline recorded")


def test_the_closing_lines_say_which_epoch_the_model_holds():
    assert checkpoint_choice({"best_epoch": 2, "model_epoch": 2, "epochs_run": 3}).startswith(
        "checkpoint: epoch 2 of 3, chosen on the validation split")
    assert checkpoint_choice({"best_epoch": 2, "model_epoch": 3, "epochs_run": 3}).startswith(
        "checkpoint: epoch 3 of 3, the last (not chosen)")
    assert checkpoint_choice({}) == "checkpoint: not recorded"


def test_the_closing_lines_name_a_cross_validated_choice_and_why_there_was_none():
    chosen = {"stop_at_epoch": 5, "note": "epoch 5 of 8, chosen on the mean held-out f1 of 3 cross-validation folds"}
    assert checkpoint_choice({"best_epoch": 7, "model_epoch": 5, "epochs_run": 5, "epoch_choice": chosen}) == (
        "checkpoint: epoch 5 of 8, chosen on the mean held-out f1 of 3 cross-validation folds")
    none = {"stop_at_epoch": None, "note": "the cross-validation folds trained 3 epochs and this model 8"}
    assert checkpoint_choice({"best_epoch": 6, "model_epoch": 6, "epochs_run": 8, "epoch_choice": none}) == (
        "checkpoint: epoch 6 of 8, chosen on the validation split; the cross-validation folds trained 3 epochs "
        "and this model 8")
