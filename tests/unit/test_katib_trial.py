"""A trial as Katib runs it: the template's command, parameters substituted, run here; its metric lines parse."""

import json
import re
import shlex
from importlib.metadata import entry_points

import pytest

from genomenlp.components.katib.config import KatibConfig
from genomenlp.components.katib.experiment import (
    KATIB_DEFAULT_METRICS_FORMAT,
    METRICS_FORMAT,
    REPORTED_METRICS,
    build_experiment,
    experiment_to_dict,
)
from genomenlp.components.search.spec import SweepSpec

# What a suggestion service might assign (Katib passes every value as a string).
ASSIGNMENTS = {"learning_rate": "0.003", "per_device_train_batch_size": "16"}


def katib_substitute(trial_spec: dict, assignments: dict) -> dict:
    """Katib's trial controller replaces ``${trialParameters.NAME}`` in the serialised trial spec."""
    text = json.dumps(trial_spec)
    for name, value in assignments.items():
        text = text.replace(f"${{trialParameters.{name}}}", value)
    assert "${trialParameters." not in text, "a trial parameter was left unsubstituted"
    return json.loads(text)


def collect(lines: list[str], pattern: str) -> dict[str, list[float]]:
    """Katib's StdOut collector: every regex match per line, group 1 the name, group 2 the value."""
    metrics: dict[str, list[float]] = {}
    regex = re.compile(pattern)
    for line in lines:
        for match in regex.finditer(line):
            if match.group(2):
                metrics.setdefault(match.group(1), []).append(float(match.group(2)))
    return metrics


@pytest.fixture(scope="module")
def trial_output(tiny_dataset, tmp_path_factory):
    spec = SweepSpec(method="random", metric={"name": "eval/f1", "goal": "maximize"}, parameters={
        "learning_rate": {"min": 0.001, "max": 0.01, "distribution": "log_uniform_values"},
        "batch_size": {"values": [16, 32]},
        "epochs": {"value": 1},
    })
    config = KatibConfig(
        gpus=0, node_selector={}, tolerations=[], s3_secret=None, s3_endpoint_url=None,
        train_path=tiny_dataset.train_path, tokeniser_path=tiny_dataset.tokenizer_path,
        output_dir=str(tmp_path_factory.mktemp("trial")),
        # One epoch on tiny data can read as collapsed, which a trial now reports by failing.
        fixed={"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32, "max_positions": 64,
               "collapse_epochs": 0},
    )
    trial_spec = experiment_to_dict(build_experiment(spec, config))["spec"]["trialTemplate"]["trialSpec"]
    job = katib_substitute(trial_spec, ASSIGNMENTS)
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return command, spec, config


def test_substituted_command_trains_and_prints_parsable_metrics(trial_output, capsys):
    command, _, _ = trial_output
    assert "--learning_rate=0.003" in command and "--per_device_train_batch_size=16" in command
    # Katib runs `sh -c "<command joined by spaces>"`: the shell must hand train the same words.
    argv = shlex.split(" ".join(command))
    assert argv == command
    # The image runs the installed console script of that name.
    (script,) = entry_points(group="console_scripts", name=argv[0])
    assert script.load()(argv[1:]) == 0
    lines = capsys.readouterr().out.splitlines()

    default = collect(lines, KATIB_DEFAULT_METRICS_FORMAT)
    assert len(default["eval_f1"]) == 1  # one epoch, one line
    assert 0.0 <= default["eval_f1"][0] <= 1.0
    ours = collect(lines, METRICS_FORMAT)
    assert ours["eval_f1"] == default["eval_f1"]
    # Every metric the builder lets an Experiment name is one train really prints.
    assert set(REPORTED_METRICS) <= set(ours)


def test_our_filter_takes_only_whole_metric_lines():
    lines = ["eval_f1=0.83", "2024-05-01T10:00:00.123Z eval_loss=1.5e-02", "WARNING: lr=0.1 too high",
             "eval_loss=nan", "test: MCC 0.500"]
    assert collect(lines, METRICS_FORMAT) == {"eval_f1": [0.83], "eval_loss": [0.015]}
