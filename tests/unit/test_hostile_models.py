"""Damaged model folders: one line naming the file and what to do, never a traceback."""

import shutil

import pytest

from genomenlp.components.cli import predict
from genomenlp.components.tokenisers import build_kmer_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, random_classifier_folder):
    return random_classifier_folder(tmp_path_factory.mktemp("damaged") / "m", build_kmer_tokenizer(3), ["a", "b"], 24)


def _damage(model_folder, tmp_path, how):
    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    if how == "truncated_weights":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "corrupt_config":
        (folder / "config.json").write_text('{"model_type": "bert", "hidden_size": ')
    elif how == "config_not_object":
        (folder / "config.json").write_text("[1, 2]")
    elif how == "corrupt_metadata":
        (folder / "genomenlp.json").write_text("{nope")
    elif how == "mismatched_tokeniser":
        (folder / "tokenizer.json").write_text(build_kmer_tokenizer(5).to_json())
    return folder


@pytest.mark.parametrize(("how", "fragment"), [
    ("truncated_weights", "model.safetensors: cannot be loaded"),
    ("corrupt_config", "config.json: is damaged"),
    ("config_not_object", "config.json: is damaged"),
    ("corrupt_metadata", "genomenlp.json: is damaged"),
    ("mismatched_tokeniser", "does not match the model"),
])
def test_damaged_model_folder_is_one_line(model_folder, tmp_path, capsys, how, fragment):
    folder = _damage(model_folder, tmp_path, how)
    out = tmp_path / "p.tsv"
    assert predict.main([str(folder), "ACGTACGTAA", "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert fragment in error, error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_intact_folder_still_loads(model_folder, tmp_path):
    out = tmp_path / "p.tsv"
    assert predict.main([model_folder, "ACGTACGTAA", "-o", str(out)]) == 0
    assert out.read_text().count("\n") == 2
