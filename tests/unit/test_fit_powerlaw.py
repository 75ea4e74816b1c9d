"""fit_powerlaw on two tiny models: every file written, sane alphas, metrics joined, names kept inside OUT."""

import json
import math
import shutil

import pandas as pd
import pytest
from pydantic import ValidationError

from genomenlp.components.cli import fit_powerlaw
from genomenlp.components.compare.powerlaw import (
    PowerlawConfig,
    model_label,
    output_names,
    read_metrics_file,
    safe_name,
)
from genomenlp.components.errors import InputError
from genomenlp.components.tokenisers.common import BOS, EOS, PAD
from genomenlp.components.tokenisers.kmer import build_kmer_tokenizer
from genomenlp.components.training.config import Architecture, ModelConfig
from genomenlp.components.training.model import build_classifier
from genomenlp.components.training.run import save_model_folder

# 64 wide: every matrix has 64 eigenvalues, above the default min_evals of 50, and analysis stays well under a second.
TINY = {"num_layers": 1, "hidden_size": 64, "num_heads": 2, "intermediate_size": 128, "max_positions": 64}
METRICS = {"test_mcc": 0.41, "test_roc_auc": 0.77, "test_f1": 0.69, "best_epoch": 1}
PER_MODEL = ("alpha.tsv", "alpha_hist.pdf", "alpha_hist.png", "alpha_plot.pdf", "alpha_plot.png")
OVERLAYS = ("summary.tsv", "alpha_hist.pdf", "alpha_hist.png", "alpha_plot.pdf", "alpha_plot.png")


def _save_model(folder, architecture, seed=0):
    import torch

    tokenizer = build_kmer_tokenizer(3)
    vocab = tokenizer.tokenizer.get_vocab()
    torch.manual_seed(seed)
    model = build_classifier(ModelConfig(architecture=architecture, **TINY), len(vocab), ["a", "b"],
                             {token: vocab[token] for token in (BOS, EOS, PAD)})
    folder.mkdir(parents=True)
    return save_model_folder(model, tokenizer, ["a", "b"], folder, {"model": {"architecture": architecture.value}})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A trained-run layout (BERT, with metrics.json above model_files) and a bare DistilBERT folder."""
    root = tmp_path_factory.mktemp("powerlaw_models")
    bert = _save_model(root / "run_a" / "model_files", Architecture.BERT)
    (root / "run_a" / "metrics.json").write_text(json.dumps(METRICS))
    distil = _save_model(root / "distil", Architecture.DISTILBERT, seed=1)
    return bert, distil


def test_two_models_write_every_file_with_sane_alphas_and_metrics(models, tmp_path, capsys):
    bert, distil = models
    out = tmp_path / "out"
    assert fit_powerlaw.main([str(bert), str(distil), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "run_a" in printed and "distil" in printed and "summary.tsv" in printed
    for name in OVERLAYS:
        assert (out / name).stat().st_size > 0, name
    for model in ("run_a", "distil"):
        for name in PER_MODEL:
            assert (out / model / name).stat().st_size > 0, f"{model}/{name}"
        layers = pd.read_csv(out / model / "alpha.tsv", sep="\t")
        assert len(layers) >= 8 and {"layer_id", "longname", "alpha", "log_norm", "stable_rank"} <= set(layers.columns)
        assert not layers["longname"].str.contains("classifier|pre_classifier").any()
        assert ((layers["alpha"] > 0) & layers["alpha"].map(math.isfinite)).all()
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert list(summary["model"]) == ["run_a", "distil"]
    assert list(summary["architecture"]) == ["bert", "distilbert"]
    for column in ("alpha_mean", "alpha_median", "share_alpha_2_6", "log_norm", "alpha_weighted", "log_alpha_norm",
                   "log_spectral_norm", "stable_rank", "layers", "layers_fitted"):
        assert summary[column].map(math.isfinite).all(), column
    assert (summary["alpha_mean"] > 0).all() and summary["share_alpha_2_6"].between(0, 1).all()
    bert_row, distil_row = summary.to_dict("records")
    assert bert_row["test_mcc"] == pytest.approx(0.41) and bert_row["test_roc_auc"] == pytest.approx(0.77)
    assert bert_row["test_f1"] == pytest.approx(0.69)
    assert all(math.isnan(distil_row[key]) for key in ("test_mcc", "test_roc_auc", "test_f1"))
    assert not list(tmp_path.glob(".out.*")), "staging folder left behind"


def test_hostile_and_duplicate_names_stay_inside_out(models, tmp_path):
    bert, _ = models
    dots = shutil.copytree(bert, tmp_path / "..." / "model_files")  # named "...": sanitises to nothing
    markup = shutil.copytree(bert, tmp_path / "<b> x&y" / "model_files")
    top_level = shutil.copytree(bert, tmp_path / "summary.tsv")  # would collide with OUT/summary.tsv
    out = tmp_path / "out"
    args = [str(bert), str(bert), str(dots), str(markup), str(top_level), "-o", str(out)]
    assert fit_powerlaw.main(args) == 0
    names = list(pd.read_csv(out / "summary.tsv", sep="\t")["model"])
    assert names == ["run_a", "run_a_2", "model", "b_x_y", "summary.tsv_2"]
    for name in names:
        assert (out / name / "alpha.tsv").exists()
    assert all(out.resolve() in path.resolve().parents for path in out.rglob("*"))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["...", "<b> x&y", "summary.tsv", "out"])


@pytest.mark.parametrize("label", ["../../etc/passwd", "/etc/passwd", "..", "a/../../b", "<script>x</script>",
                                   "ü" * 300, "", "CON", ".hidden"])
def test_safe_names_never_leave_the_folder(label):
    name = safe_name(label)
    assert name and len(name) <= 60 and "/" not in name and "\\" not in name
    assert not name.startswith(".") and name not in (".", "..")


def test_output_names_are_unique_case_insensitively_and_avoid_top_level_files():
    names = output_names(["Run", "run", "RUN", "alpha_hist.pdf", "x" * 80, "x" * 80])
    assert len({name.casefold() for name in names}) == 6
    assert "alpha_hist.pdf" not in names
    assert all(len(name) <= 60 for name in names)


def test_model_label_uses_run_folder_or_reference_name(tmp_path):
    assert model_label(str(tmp_path / "run_b" / "model_files"), str(tmp_path / "run_b" / "model_files")) == "run_b"
    assert model_label(str(tmp_path / "mine"), str(tmp_path / "mine")) == "mine"
    assert model_label("registry:genomic_bert@production", str(tmp_path / "cache" / "x")) == "genomic_bert@production"


def test_metrics_file_beside_or_above_and_broken_file_is_one_line_error(tmp_path):
    (tmp_path / "model_files").mkdir()
    assert read_metrics_file(tmp_path / "model_files") == {}
    (tmp_path / "metrics.json").write_text(json.dumps({"test_mcc": 0.5, "test_f1": True}))
    assert read_metrics_file(tmp_path / "model_files") == {"test_mcc": 0.5}
    (tmp_path / "model_files" / "metrics.json").write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        read_metrics_file(tmp_path / "model_files")


def test_not_a_model_folder_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert fit_powerlaw.main([str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("fit_powerlaw: error:") and "not a model folder" in error and "\n" not in error
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_too_narrow_for_min_evals_exits_2(models, tmp_path, capsys):
    bert, _ = models
    assert fit_powerlaw.main([str(bert), "-o", str(tmp_path / "out"), "--min_evals", "65"]) == 2
    error = capsys.readouterr().err.strip()
    assert "min_evals" in error and "\n" not in error and not (tmp_path / "out").exists()


def test_existing_out_is_refused_without_overwrite_and_replaced_with_it(models, tmp_path, capsys):
    bert, _ = models
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert fit_powerlaw.main([str(bert), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    assert fit_powerlaw.main([str(bert), "-o", str(out), "--overwrite", "--alpha_max", "7"]) == 0
    assert not (out / "keep.txt").exists() and (out / "summary.tsv").exists()


def test_config_rejects_bad_values():
    with pytest.raises(ValidationError, match="alpha_max"):
        PowerlawConfig(alpha_max=5)
    with pytest.raises(ValidationError, match="min_evals"):
        PowerlawConfig(min_evals=0)
