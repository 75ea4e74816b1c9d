"""Run configurations that extend another (the cluster YAMLs over the local ones)."""

from __future__ import annotations

import pytest
import yaml

from genomenlp.components.errors import InputError
from genomenlp.platform.config_overlay import load_run_config, overlay, zenml_config_file


def test_mappings_merge_and_everything_else_replaces():
    base = {"parameters": {"folds": 5, "model": {"layers": 2, "heads": 4}, "files": ["a", "b"]}, "enable_cache": True}
    changes = {"parameters": {"model": {"layers": 6}, "files": ["c"]}, "execution_mode": "stop_on_failure"}

    assert overlay(base, changes) == {
        "parameters": {"folds": 5, "model": {"layers": 6, "heads": 4}, "files": ["c"]},
        "enable_cache": True, "execution_mode": "stop_on_failure"}
    assert base["parameters"]["model"] == {"layers": 2, "heads": 4}, "the base is left as it was"


def test_a_chain_of_extends_resolves_relative_to_each_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "local.yaml").write_text("parameters: {folds: 5, output_dir: out}\n")
    (tmp_path / "sub" / "cluster.yaml").write_text("extends: ../local.yaml\nsteps: {train: {settings: {gpu: 1}}}\n")
    (tmp_path / "nightly.yaml").write_text("extends: sub/cluster.yaml\nschedule: {cron_expression: '0 2 * * *'}\n")

    assert load_run_config(tmp_path / "nightly.yaml") == {
        "parameters": {"folds": 5, "output_dir": "out"}, "steps": {"train": {"settings": {"gpu": 1}}},
        "schedule": {"cron_expression": "0 2 * * *"}}


@pytest.mark.parametrize(("files", "message"), [
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, "`extends:` loops: a.yaml → b.yaml → a.yaml"),
    ({"a.yaml": "extends: missing.yaml\n"}, "missing.yaml: no such configuration file"),
    ({"a.yaml": "extends: [b.yaml]\n"}, "extends: give the file name"),
    ({"a.yaml": "- just\n- a list\n"}, "the file must be a mapping"),
    ({"a.yaml": "parameters: [unclosed\n"}, "not valid YAML"),
])
def test_broken_chains_are_one_line_errors(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        load_run_config(tmp_path / "a.yaml")


def test_zenml_reads_a_merged_copy_that_is_gone_afterwards(tmp_path):
    (tmp_path / "local.yaml").write_text("parameters: {folds: 5}\n")
    (tmp_path / "cluster.yaml").write_text("extends: local.yaml\nexecution_mode: stop_on_failure\n")

    with zenml_config_file(tmp_path / "local.yaml") as plain:
        assert plain == tmp_path / "local.yaml"
    with zenml_config_file(tmp_path / "cluster.yaml") as merged:
        assert yaml.safe_load(merged.read_text()) == {"parameters": {"folds": 5}, "execution_mode": "stop_on_failure"}
    assert not merged.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.yaml", "local.yaml"]
