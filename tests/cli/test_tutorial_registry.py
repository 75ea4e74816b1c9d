"""The installed commands record the original's tracker flags on the model version they register."""

from __future__ import annotations

from pathlib import Path

import pytest

from genomenlp.components.model_io import MODEL_RESOLVERS

NAME = "tutorial_registry_model"
TINY = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
        "--max_positions", "64", "--no_progress"]


def data_args(dataset) -> list[str]:
    return [str(dataset / "train.parquet"), "parquet", str(dataset / "tokenizer.json"), "-t", "test", "-v", "valid"]


@pytest.fixture(scope="module")
def gc_at_dataset(tmp_path_factory):
    """A 3-mer dataset of AT-rich against GC-rich sequences: a tiny model learns it within two epochs."""
    import random

    from genomenlp.components.cli import kmerise

    folder = tmp_path_factory.mktemp("gc_at")
    for name, rich, other, seed in (("at_rich", "AT", "GC", 1), ("gc_rich", "GC", "AT", 2)):
        rng = random.Random(seed)
        with open(folder / f"{name}.fa", "w") as handle:
            for index in range(60):
                sequence = "".join(rng.choice(rich if rng.random() < 0.7 else other) for _ in range(60))
                handle.write(f">{name}_{index}\n{sequence}\n")
    assert kmerise.main(["-i", str(folder / "at_rich.fa"), str(folder / "gc_rich.fa"), "-k", "3", "-o",
                         str(folder / "data"), "--no_progress"]) == 0
    return folder / "data"


@pytest.fixture(scope="module")
def client(clean_zenml_client):
    from genomenlp.components.search.runs import RUN_RESOLVERS

    yield clean_zenml_client
    MODEL_RESOLVERS.pop("registry", None)
    RUN_RESOLVERS.clear()


def test_tracker_flags_become_version_tags_and_metadata_and_collapsed_runs_are_not_registered(
        client, gc_at_dataset, tmp_path, capsys, one_torch_thread):
    from genomenlp.platform import commands

    common = [*data_args(gc_at_dataset), "-e", "tyagilab", "-p", "testm3", "--register", NAME,
              "--num_train_epochs", "2", "--per_device_train_batch_size", "8", *TINY]
    assert commands.train([*common, "-o", str(tmp_path / "good"), "--learning_rate", "0.01"]) == 0
    assert f"registered as registry:{NAME}@1" in capsys.readouterr().out
    version = client.get_model_version(NAME, 1)
    assert {tag.name for tag in version.tags} >= {"entity:tyagilab", "project:testm3", "group:train"}
    assert version.run_metadata["entity_name"] == "tyagilab" and version.run_metadata["collapsed"] == 0
    # A collapsed run (lr 1e-5: one class for two epochs) is reported and never becomes a version.
    assert commands.train([*common, "-o", str(tmp_path / "flat"), "--learning_rate", "1e-5"]) == 0
    printed = capsys.readouterr().out
    assert "COLLAPSED:" in printed and "model not registered: it collapsed" in printed
    assert [v.number for v in client.list_model_versions(model=NAME, size=10)] == [1]


def test_production_with_nothing_promoted_explains_and_the_promote_command_fixes_it(client, capsys):
    from genomenlp.components.errors import InputError
    from genomenlp.components.model_io import load_model
    from genomenlp.platform import cli

    # Version 1 (registered by the test above) was never promoted: `train` registers without promoting.
    with pytest.raises(InputError) as raised:
        load_model(f"registry:{NAME}@production")
    message = str(raised.value)
    assert f"no version of {NAME} holds the production stage" in message
    assert "Versions: 1 (MCC " in message and "k-mer baseline" in message
    assert f"promote one by hand with: genomenlp-pipeline models promote {NAME} 1" in message
    capsys.readouterr()
    assert cli.main(["models", "list", NAME]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("1\t-\tMCC ")
    assert cli.main(["models", "promote", NAME, "1"]) == 0
    assert f"registry:{NAME}@1 is now production" in capsys.readouterr().out
    assert load_model(f"registry:{NAME}@production").label_names == ["at_rich", "gc_rich"]
    assert cli.main(["models", "promote", NAME, "7"]) == 2
    assert "no such model version (versions of" in capsys.readouterr().err


def test_config_from_run_takes_a_registry_version_and_says_what_an_unknown_run_could_be(client, gc_at_dataset,
                                                                                         tmp_path, capsys):
    from genomenlp.components.search.runs import resolve_run
    from genomenlp.platform import commands

    settings = resolve_run(f"registry:{NAME}@1")
    assert settings.values["learning_rate"] == 0.01 and settings.values["hidden_size"] == 16
    argv = [str(gc_at_dataset / "train.parquet"), "parquet", "--config_from_run", "p9do3gzl", "-m",
            str(tmp_path / "none"), "-o", str(tmp_path / "cv")]
    assert commands.cross_validate(argv) == 2
    error = capsys.readouterr().err
    assert "a ZenML training-pipeline run, or registry:NAME@VERSION" in error and len(error.splitlines()) == 1


def test_registry_models_are_fetched_once_into_one_cache_and_pages_name_the_reference(client, tmp_path):
    import tempfile

    from genomenlp.components.model_io import load_model
    from genomenlp.platform import commands
    from genomenlp.steps.support.registry import model_cache_dir

    reference = f"registry:{NAME}@1"
    first = load_model(reference)
    temporary = set(Path(tempfile.gettempdir()).glob("zenml-*"))
    again = load_model(reference)
    assert first.path == again.path and Path(first.path).parent == model_cache_dir()
    assert set(Path(tempfile.gettempdir()).glob("zenml-*")) == temporary  # nothing new left behind
    out = tmp_path / "why"
    assert commands.interpret([reference, "ATATATATGCGCATATAT", "-o", str(out), "-n", "4", "--no_progress"]) == 0
    index = (out / "index.html").read_text()
    assert reference in index and str(model_cache_dir()) not in index
