"""``genomenlp-pipeline`` in-process on a throw-away ZenML store: a run, bad data and a bad YAML."""

from __future__ import annotations

import pytest
import yaml

from genomenlp.platform import cli


@pytest.fixture
def project_root(tmp_path, monkeypatch):
    """Stand-in for the repository root: the command's `zenml init` leaves the real .zen alone."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(cli, "PROJECT_ROOT", root)
    return root


def _config(tmp_path, fasta_pair, **parameters) -> str:
    path = tmp_path / "run.yaml"
    parameters = {
        "class_files": [str(p) for p in fasta_pair],
        "output_dir": str(tmp_path / "dataset"),
        "tokenise": {"vocab_size": 32},
        "dataset": {"split_train": 0.8, "split_test": 0.1, "split_val": 0.1},
        **parameters,
    }
    path.write_text(yaml.safe_dump({"enable_cache": True, "parameters": parameters}))
    return str(path)


def test_dataset_command_runs_and_reports(
    clean_zenml_client, project_root, tiny_fasta_pair, tmp_path, capsys
):
    assert cli.main(["dataset", "--config", _config(tmp_path, tiny_fasta_pair)]) == 0

    out = capsys.readouterr().out
    assert (project_root / ".zen").is_dir()
    assert (tmp_path / "dataset" / "manifest.json").is_file()
    assert f"Dataset written to {tmp_path / 'dataset'}" in out
    assert "ZenML run: dataset_pipeline-" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"class_files": ["missing.fasta", "also_missing.fasta"]}, "missing.fasta: no such file"),
        (
            {"tokenise": {"vocab_sise": 32}},
            "parameters.tokenise.vocab_sise: Extra inputs are not permitted",
        ),
        ({"overwrit": True}, "unknown key parameters.overwrit"),
    ],
    ids=["missing-fasta", "config-model-typo", "parameter-typo"],
)
def test_bad_input_is_one_line(
    clean_zenml_client, project_root, tiny_fasta_pair, tmp_path, capsys, change, message
):
    assert cli.main(["dataset", "--config", _config(tmp_path, tiny_fasta_pair, **change)]) == 2

    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "dataset").exists()
