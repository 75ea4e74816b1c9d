"""Every run-configuration YAML fits its pipeline: no unknown keys, every value valid.

ZenML ignores unknown keys in run configurations, so without this a misspelt key would silently
leave a default in force.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from zenml.pipelines.pipeline_definition import Pipeline

from genomenlp.components.errors import InputError
from genomenlp.components.names import Models
from genomenlp.platform import cli
from genomenlp.platform.config_overlay import load_run_config
from genomenlp.platform.run_config import check_run_config

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "genomenlp" / "pipelines" / "configs"
YAMLS = sorted(CONFIG_DIR.glob("*.yaml"))


def _pipelines() -> dict[str, Pipeline]:
    """Pipelines by name: ``pipelines/<name>.py`` holding a pipeline called ``<name>``."""
    found = {}
    for path in (REPO_ROOT / "genomenlp" / "pipelines").glob("*.py"):
        candidate = getattr(importlib.import_module(f"genomenlp.pipelines.{path.stem}"), path.stem, None)
        if isinstance(candidate, Pipeline):
            found[path.stem] = candidate
    return found


def _pipeline_for(path: Path) -> Pipeline:
    """The pipeline a YAML configures, from its name: ``<pipeline>[_<variant>].yaml``."""
    names = [name for name in _pipelines() if path.stem == name or path.stem.startswith(f"{name}_")]
    assert names, f"{path.name} names no pipeline in pipelines/"
    return _pipelines()[max(names, key=len)]


def test_there_are_configs_for_every_pipeline():
    assert YAMLS
    assert {_pipeline_for(path).name for path in YAMLS} == {p.name for p in _pipelines().values()}


@pytest.mark.parametrize("path", YAMLS, ids=lambda path: path.name)
def test_config_fits_its_pipeline(path):
    config = check_run_config(_pipeline_for(path), path)

    # Bundled configs are run from the repository root, so their relative inputs must exist there.
    for input_file in [*config["parameters"].get("class_files", []), *config["parameters"].get("corpus_files", [])]:
        assert (REPO_ROOT / input_file).is_file(), input_file
    # Caching is on: steps exchange stored folders and an uncached export step writes output_dir.
    assert config.get("enable_cache") is True


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_command_defaults_to_a_config_of_its_pipeline(name):
    command = cli.COMMANDS[name]
    assert command.default_config.is_file()
    module, _, attribute = command.pipeline.rpartition(".")
    assert _pipeline_for(command.default_config) is getattr(
        importlib.import_module(module), attribute
    )


GOOD = {
    "enable_cache": False,
    "parameters": {"class_files": ["a.fa", "b.fa"], "output_dir": "out", "kmer": {"k": 3}},
    "steps": {"create_dataset": {"enable_step_logs": False}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"enable_cach": False}, "unknown key enable_cach"),
        (
            {"parameters": {**GOOD["parameters"], "overwrit": True}},
            "unknown key parameters.overwrit",
        ),
        (
            {"parameters": {**GOOD["parameters"], "kmer": {"kk": 3}}},
            "parameters.kmer.kk: Extra inputs",
        ),
        (
            {"parameters": {**GOOD["parameters"], "kmer": {"k": 3, "stride": 4}}},
            "parameters.kmer: Value error",
        ),
        (
            {"parameters": {**GOOD["parameters"], "dataset": {"split_train": "most"}}},
            "dataset.split_train",
        ),
        (
            {"parameters": {"class_files": ["a.fa", "b.fa"]}},
            "missing required parameter output_dir",
        ),
        ({"steps": {"train_tokenizer": {}}}, "steps.train_tokenizer: no such step"),
        (
            {"steps": {"create_dataset": {"enable_cach": False}}},
            "unknown key steps.create_dataset.enable_cach",
        ),
        (
            {"steps": {"train_tokeniser": {"parameters": {"config": {"vocab_size": 2}}}}},
            "steps.train_tokeniser.parameters.config.vocab_size: Input should be greater than",
        ),
        (
            {"steps": {"create_dataset": {"parameters": {"kmer_strid": 2}}}},
            "unknown key steps.create_dataset.parameters.kmer_strid",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_mistakes_are_reported_with_their_key(tmp_path, change, message):
    path = tmp_path / "dataset_pipeline.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))
    pipeline = _pipelines()["dataset_pipeline"]

    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        check_run_config(pipeline, path)


def test_the_reference_mistake_free_config_passes(tmp_path):
    path = tmp_path / "dataset_pipeline.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    assert check_run_config(_pipelines()["dataset_pipeline"], path) == GOOD


GOOD_TRAINING = {
    "enable_cache": False,
    "parameters": {
        "class_files": ["a.fa", "b.fa"],
        "output_dir": "out",
        "sweep": {"method": "grid", "parameters": {"learning_rate": {"values": [1.0e-3]}}},
        "model": {"hidden_size": 16, "num_heads": 2},
    },
    "steps": {"sweep_hyperparameters": {"parameters": {"epochs": 1}}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"parameters": {**GOOD_TRAINING["parameters"], "sweep": None}},
            "parameters.sweep: Input should be a valid dictionary",
        ),
        (
            {"parameters": {"class_files": ["a.fa", "b.fa"], "output_dir": "out"}},
            "missing required parameter sweep",
        ),
        (
            {
                "parameters": {
                    **GOOD_TRAINING["parameters"],
                    "sweep": {"parameters": {"learnig_rate": {"values": [1.0e-3]}}},
                }
            },
            "parameters.sweep: Value error, unknown parameters ['learnig_rate']",
        ),
        (
            {"parameters": {**GOOD_TRAINING["parameters"], "model": {"num_heads": 3}}},
            "parameters.model: Value error, hidden_size (128) must be divisible",
        ),
        (
            {"parameters": {**GOOD_TRAINING["parameters"], "training": {"epochs": 3}}},
            "parameters.training.epochs: Extra inputs are not permitted",
        ),
        (
            {"steps": {"sweep_hyperparameters": {"parameters": {"epochs": 0}}}},
            "steps.sweep_hyperparameters.parameters.epochs: Input should be greater than 0",
        ),
        (
            {"steps": {"cross_validate_model": {"parameters": {"folds": 1}}}},
            "steps.cross_validate_model.parameters.folds: Input should be greater than or equal",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_training_mistakes_are_reported_with_their_key(tmp_path, change, message):
    path = tmp_path / "training_pipeline.yaml"
    path.write_text(yaml.safe_dump({**GOOD_TRAINING, **change}))

    with pytest.raises(InputError) as raised:
        check_run_config(_pipelines()["training_pipeline"], path)
    assert message in str(raised.value)


def test_the_reference_training_config_passes(tmp_path):
    path = tmp_path / "training_pipeline.yaml"
    path.write_text(yaml.safe_dump(GOOD_TRAINING))
    assert check_run_config(_pipelines()["training_pipeline"], path) == GOOD_TRAINING


def _load(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / name).read_text(encoding="utf-8"))


def test_pretrained_training_config_fine_tunes_the_bundled_encoder_on_the_split_it_held_out():
    pretraining, training = _load("pretraining_pipeline.yaml"), _load("training_pipeline_pretrained.yaml")

    assert pretraining["model"]["name"] == Models.GENOMIC_BERT_ENCODER
    assert training["parameters"]["training"]["init_from"] == f"registry:{Models.GENOMIC_BERT_ENCODER}@latest"
    # The held-out split follows from the class files and dataset settings; fine-tuning needs the
    # encoder's tokeniser and shape. Drift in any of them would leak test sequences or fail to load.
    for key in ("class_files", "kmer", "dataset", "model"):
        assert pretraining["parameters"][key] == training["parameters"][key], key
    # The encoder is pre-trained for the task the default training configuration trains on.
    assert training["parameters"]["dataset"] == _load("training_pipeline.yaml")["parameters"]["dataset"]


GOOD_PRETRAINING = {
    "enable_cache": False,
    "parameters": {
        "corpus_files": ["genome.fa"],
        "class_files": ["a.fa", "b.fa"],
        "output_dir": "out",
        "kmer": {"k": 3},
        "pretrain": {"max_steps": 10},
    },
    "steps": {"pretrain_encoder": {"parameters": {"exclude": ["other_dataset"]}}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"parameters": {"class_files": ["a.fa", "b.fa"], "output_dir": "out"}},
            "missing required parameter corpus_files",
        ),
        (
            {"parameters": {**GOOD_PRETRAINING["parameters"], "pretrain": {"max_step": 10}}},
            "parameters.pretrain.max_step: Extra inputs are not permitted",
        ),
        (
            {"parameters": {**GOOD_PRETRAINING["parameters"], "pretrain": {"window": 64, "stride": 128}}},
            "parameters.pretrain: Value error, stride (128) must not exceed window (64)",
        ),
        (
            {"parameters": {**GOOD_PRETRAINING["parameters"], "pretrain": {"mask_probability": 1.5}}},
            "parameters.pretrain.mask_probability: Input should be less than 1",
        ),
        (
            {"steps": {"pretrain_encoder": {"parameters": {"exclude": "other_dataset"}}}},
            "steps.pretrain_encoder.parameters.exclude: Input should be a valid list",
        ),
        (
            {"steps": {"pretrain_encoder": {"parameters": {"exlude": ["other_dataset"]}}}},
            "unknown key steps.pretrain_encoder.parameters.exlude",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_pretraining_mistakes_are_reported_with_their_key(tmp_path, change, message):
    path = tmp_path / "pretraining_pipeline.yaml"
    path.write_text(yaml.safe_dump({**GOOD_PRETRAINING, **change}))

    with pytest.raises(InputError) as raised:
        check_run_config(_pipelines()["pretraining_pipeline"], path)
    assert message in str(raised.value)


def test_the_reference_pretraining_config_passes(tmp_path):
    path = tmp_path / "pretraining_pipeline.yaml"
    path.write_text(yaml.safe_dump(GOOD_PRETRAINING))
    assert check_run_config(_pipelines()["pretraining_pipeline"], path) == GOOD_PRETRAINING


def _positive_label(path: Path) -> str | None:
    return (load_run_config(path)["parameters"].get("training") or {}).get("positive_label")


NAMING_POSITIVE = [path for path in YAMLS if _positive_label(path) is not None]


def test_the_bundled_training_configs_name_their_positive_class():
    assert {"training_pipeline.yaml", "training_pipeline_quick.yaml"} <= {path.name for path in NAMING_POSITIVE}


@pytest.mark.parametrize("path", NAMING_POSITIVE, ids=lambda path: path.name)
def test_positive_class_named_in_a_config_is_its_first_class(path):
    """Reports name the positive class of ROC/PR curves; a config that sets it must mean the class of interest."""
    labels = (load_run_config(path)["parameters"].get("dataset") or {}).get("labels")
    assert labels and _positive_label(path) == labels[0], f"{path.name}: {_positive_label(path)!r}, classes {labels}"
