"""The dataset pipeline end to end on a throw-away local ZenML stack, from Python and from YAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from zenml import pipeline
from zenml.enums import ExecutionStatus

from genomenlp.components.configs import DatasetConfig, KmerConfig, TokeniseConfig
from genomenlp.components.errors import InputError
from genomenlp.components.names import Artifacts, Pipelines
from genomenlp.components.tokenisers.common import sequence_tokenizer_from_json
from genomenlp.pipelines.dataset_pipeline import dataset_pipeline
from genomenlp.steps.train_tokeniser import train_tokeniser

# Small splits keep at least one record per class in test and valid with 40 records per class.
TINY_DATASET = DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1)
# Each tokeniser the pipeline can build: Unigram (no k-mer settings) and k-mer. The stride is
# above 1 on purpose: it has to travel from the k-mer settings to the dataset step.
TOKENISERS = {
    "unigram": {"tokenise": TokeniseConfig(vocab_size=40)},
    "kmer": {"kmer": KmerConfig(k=3, stride=2)},
}
EXPECTED_OUTPUTS = {
    "unigram": {"train_tokeniser": {Artifacts.TOKENIZER_JSON}},
    "kmer": {"build_kmer_tokeniser": {Artifacts.TOKENIZER_JSON}},
}
DATASET_OUTPUTS = {Artifacts.DATASET_DIR, Artifacts.DATASET_MANIFEST}
# The two uncached steps around the cached ones: digests of the inputs, and the export to output_dir.
RUN_OUTPUTS = {"fingerprint_inputs": {Artifacts.INPUT_DIGESTS, Artifacts.MODEL_DIGESTS, Artifacts.EXPLAIN_DIGESTS},
               "export_outputs": {Artifacts.EXPORTED_FOLDERS}}


def _output(run, name: str):
    (version,) = [step.outputs[name][0] for step in run.steps.values() if name in step.outputs]
    return version


@pytest.mark.parametrize("kind", sorted(TOKENISERS))
def test_pipeline_run_records_dataset_and_artifacts(
    clean_zenml_client, tiny_fasta_pair, tmp_path, kind
):
    out = tmp_path / "dataset"
    run = dataset_pipeline(
        class_files=[str(path) for path in tiny_fasta_pair],
        output_dir=str(out),
        dataset=TINY_DATASET,
        **TOKENISERS[kind],
    )

    run = clean_zenml_client.get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED
    assert run.pipeline.name == Pipelines.DATASET
    expected = {**EXPECTED_OUTPUTS[kind], "create_dataset": DATASET_OUTPUTS, **RUN_OUTPUTS}
    assert {name: set(step.outputs) for name, step in run.steps.items()} == expected

    written = json.loads((out / "manifest.json").read_text())
    assert _output(run, Artifacts.DATASET_MANIFEST).load() == written
    assert written["tokenizer"]["kind"] == kind
    if kind == "kmer":
        assert (written["tokenizer"]["k"], written["tokenizer"]["stride"]) == (3, 2)
    assert written["label_names"] == ["class_a", "class_b"]
    assert all(written["splits"][split]["rows"] > 0 for split in ("train", "test", "valid"))
    # Compared after one load: the tokenizers parser may move a Unigram score by one ulp.
    tokenizer = sequence_tokenizer_from_json(_output(run, Artifacts.TOKENIZER_JSON).load())
    assert tokenizer.to_json() == (out / "tokenizer.json").read_text()

    # The artifact store keeps its own copy of the folder, independent of output_dir.
    stored = Path(_output(run, Artifacts.DATASET_DIR).load())
    assert stored.resolve() != out.resolve()
    assert json.loads((stored / "manifest.json").read_text()) == written
    assert sorted(p.name for p in stored.iterdir()) == sorted(p.name for p in out.iterdir())
    assert _output(run, Artifacts.EXPORTED_FOLDERS).load() == {"dataset": str(out.resolve())}


def _statuses(client, run) -> dict[str, ExecutionStatus]:
    return {name: step.status for name, step in client.get_pipeline_run(run.id).steps.items()}


def test_a_rerun_takes_the_cache_and_still_exports_and_an_edited_file_reruns(
    clean_zenml_client, tiny_fasta_pair, tmp_path
):
    arguments = {"class_files": [str(path) for path in tiny_fasta_pair], "kmer": KmerConfig(k=3),
                 "dataset": TINY_DATASET}
    first = dataset_pipeline(output_dir=str(tmp_path / "first"), **arguments)
    # Another output folder: output_dir is no parameter of the cached steps, only of the export.
    again = dataset_pipeline(output_dir=str(tmp_path / "again"), **arguments)

    assert _statuses(clean_zenml_client, again) == {
        "fingerprint_inputs": ExecutionStatus.COMPLETED, "build_kmer_tokeniser": ExecutionStatus.CACHED,
        "create_dataset": ExecutionStatus.CACHED, "export_outputs": ExecutionStatus.COMPLETED}
    assert (tmp_path / "again" / "train.parquet").read_bytes() == (tmp_path / "first" / "train.parquet").read_bytes()
    # The same export again is refused without overwrite, and replaces the folder with it.
    with pytest.raises(InputError, match="already exists"):
        dataset_pipeline(output_dir=str(tmp_path / "again"), **arguments)
    dataset_pipeline(output_dir=str(tmp_path / "again"), overwrite=True, **arguments)

    # Same path, new content: the digest changes, so the steps reading the file run again.
    with open(tiny_fasta_pair[1], "a", encoding="utf-8") as handle:
        handle.write(">b_extra synthetic\n" + "ACGT" * 15 + "\n")
    edited = dataset_pipeline(output_dir=str(tmp_path / "edited"), **arguments)
    statuses = _statuses(clean_zenml_client, edited)
    assert statuses["build_kmer_tokeniser"] == statuses["create_dataset"] == ExecutionStatus.COMPLETED
    manifest = json.loads((tmp_path / "edited" / "manifest.json").read_text())
    assert sum(info["records"] for info in manifest["splits"].values()) == 81
    assert first.id != edited.id


def test_bad_input_fails_the_run_with_the_components_error(
    clean_zenml_client, tiny_fasta_pair, tmp_path
):
    # Fail-fast execution hands the step's own exception back, which the CLI turns into one line.
    with pytest.raises(InputError, match="no such file"):
        dataset_pipeline(
            class_files=[str(tiny_fasta_pair[0]), str(tmp_path / "missing.fasta")],
            output_dir=str(tmp_path / "dataset"),
            kmer=KmerConfig(k=2),
        )
    assert not (tmp_path / "dataset").exists()


@pipeline(enable_cache=False)
def _tokeniser_only(class_files: list[str]) -> None:
    """A one-step pipeline whose step's config model comes from YAML alone."""
    train_tokeniser(class_files=class_files)


def test_config_model_as_step_parameter_from_yaml(clean_zenml_client, tiny_fasta_pair, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {"steps": {"train_tokeniser": {"parameters": {"config": {"vocab_size": 24}}}}}
        )
    )

    run = _tokeniser_only.with_options(config_path=str(config))(
        class_files=[str(p) for p in tiny_fasta_pair]
    )

    run = clean_zenml_client.get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED
    recorded = run.steps["train_tokeniser"].config.parameters["config"]
    assert TokeniseConfig.model_validate(recorded) == TokeniseConfig(vocab_size=24)
    vocab = json.loads(_output(run, Artifacts.TOKENIZER_JSON).load())["model"]["vocab"]
    assert len(vocab) <= 24


def test_zenml_cli_runs_the_pipeline_from_yaml(
    clean_zenml_client, zenml_env, tiny_fasta_pair, tmp_path
):
    out = tmp_path / "dataset"
    config = tmp_path / "dataset_pipeline.yaml"
    parameters = {
        "class_files": [str(path) for path in tiny_fasta_pair],
        "output_dir": str(out),
        "overwrite": False,
        "kmer": {"k": 3},
        "dataset": {"split_train": 0.8, "split_test": 0.1, "split_val": 0.1},
    }
    config.write_text(yaml.safe_dump({"enable_cache": True, "parameters": parameters}))
    zenml = Path(sys.executable).with_name("zenml")

    # The working directory is the throw-away ZenML home (no .zen): the repo's .zen stays untouched.
    result = subprocess.run(
        [
            str(zenml),
            "pipeline",
            "run",
            "genomenlp.pipelines.dataset_pipeline.dataset_pipeline",
            "-c",
            str(config),
        ],
        env={**os.environ, **zenml_env},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out / "manifest.json").is_file()
    (last,) = clean_zenml_client.list_pipeline_runs(sort_by="desc:created", size=1)
    assert last.status == ExecutionStatus.COMPLETED
    assert last.config.parameters["output_dir"] == str(out)
