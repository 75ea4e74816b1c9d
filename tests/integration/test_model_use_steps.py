"""Comparison, interpretation and prediction from the registry on a throw-away local ZenML stack."""

from pathlib import Path

import pytest

from genomenlp.components.compare.powerlaw import PowerlawConfig
from genomenlp.components.inference.config import InterpretConfig, PredictConfig
from genomenlp.components.model_io import MODEL_RESOLVERS
from genomenlp.components.names import Artifacts
from genomenlp.components.registry import version_metadata
from genomenlp.components.tokenisers import build_kmer_tokenizer
from genomenlp.components.training.config import ModelConfig
from genomenlp.components.training.model import build_classifier
from genomenlp.components.training.run import save_model_folder

NAME = "genomic_bert"
SEQUENCES = ["ACGTTATAATGGCATTTACGGACTTTATAATACGGCATC", "GGGCCCGCGCATATATCGCGGGCATCAGCATTAGCAGT"]


def model_folder(path: Path, seed: int) -> Path:
    import torch

    tokenizer = build_kmer_tokenizer(3)
    vocab = tokenizer.tokenizer.get_vocab()
    torch.manual_seed(seed)
    # 64 wide: weightwatcher fits matrices with at least 50 eigenvalues.
    config = ModelConfig(num_layers=1, hidden_size=64, num_heads=2, intermediate_size=128, max_positions=64)
    model = build_classifier(config, len(vocab), ["promoter", "other"], {t: vocab[t] for t in ("<s>", "</s>", "<pad>")})
    return save_model_folder(model, tokenizer, ["promoter", "other"], path, {"tokenizer": tokenizer.describe()})


@pytest.fixture(scope="module")
def registered(clean_zenml_client, tmp_path_factory):
    from genomenlp.steps.support.registry import promote_best, register_model_folder

    folder = tmp_path_factory.mktemp("models")
    versions = []
    for seed, mcc in ((1, 0.62), (2, 0.71)):
        summary = {"test_mcc": mcc, "test_roc_auc": 0.9, "test_f1": 0.8, "baselines": {"kmer_1_4": {"test_mcc": 0.6}}}
        versions.append(register_model_folder(model_folder(folder / f"m{seed}", seed), version_metadata(summary), NAME))
    assert promote_best(NAME) == versions[1]
    yield versions
    MODEL_RESOLVERS.pop("registry", None)


def test_comparison_pipeline_reads_versions_from_the_registry(registered, tmp_path, capsys):
    from zenml.enums import ExecutionStatus

    from genomenlp.pipelines.comparison_pipeline import comparison_pipeline

    out = tmp_path / "compare"
    references = [f"registry:{NAME}@{version}" for version in registered]
    run = comparison_pipeline(references, str(out), PowerlawConfig())
    assert run.status == ExecutionStatus.COMPLETED
    summary = run.steps["compare_models"].outputs[Artifacts.POWERLAW_SUMMARY][0].load()
    assert len(summary) == 2
    assert sorted(summary["test_mcc"].round(2)) == [0.62, 0.71]  # registered metrics beside weight quality
    assert (out / "summary.tsv").exists() and (out / "alpha_hist.png").exists()
    # The summary page is the comparison's dashboard visualization: the table and the overlays.
    page = run.steps["compare_models"].outputs[Artifacts.COMPARISON_REPORT][0].load()
    assert "<table" in page and "data:image/png;base64," in page
    from genomenlp.platform import cli

    cli.COMMANDS["compare"].report(run)
    printed = capsys.readouterr().out
    assert "test_mcc" in printed and f"Figures and tables: {out.resolve()}" in printed


def test_interpretation_step_uses_the_production_model_by_default(registered):
    from genomenlp.steps.interpret_sequences import interpret_sequences

    result, out, index = interpret_sequences.entrypoint(SEQUENCES, InterpretConfig(n_steps=8))
    assert result["records"] == 2
    assert index == (out / "index.html").read_text()
    assert (out / "index.html").exists() and len(list((out / "sequences").glob("*.html"))) == 2


def test_prediction_step_takes_a_model_folder_or_a_reference(registered, tmp_path):
    from genomenlp.steps.predict_sequences import predict_sequences

    by_reference = predict_sequences.entrypoint(SEQUENCES, PredictConfig(), str(tmp_path / "a.tsv"),
                                                model=f"registry:{NAME}@{registered[0]}")
    assert by_reference["records"] == 2
    rows = (tmp_path / "a.tsv").read_text().splitlines()
    assert len(rows) == 3 and "p_promoter" in rows[0]
