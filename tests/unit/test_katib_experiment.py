"""The sweep JSON as a Katib Experiment: algorithms, types, trial template, placement, committed YAML."""

import json
import shlex
from pathlib import Path

import pytest
import yaml

from genomenlp.components.errors import InputError
from genomenlp.components.katib.cli_support import katib_sweep, write_experiment_yaml
from genomenlp.components.katib.config import KatibConfig, Toleration, load_katib_config
from genomenlp.components.katib.experiment import (
    IMAGE_UID,
    METRICS_FORMAT,
    build_experiment,
    experiment_to_dict,
    experiment_yaml,
)
from genomenlp.components.search.spec import Method, SweepSpec, load_sweep
from genomenlp.components.training.config import ModelConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL_SWEEP = ROOT / "data" / "tutorial" / "sweep.json"
COMMITTED = ROOT / "k8s" / "katib" / "experiment.yaml"
CONFIG_FIELDS = set(TrainConfig.model_fields) | set(ModelConfig.model_fields)


def as_dict(spec, config=None):
    return experiment_to_dict(build_experiment(spec, config or KatibConfig()))


def sweep(method="random", early_terminate=None, **parameters):
    parameters = parameters or {"learning_rate": {"values": [0.001, 0.01]}, "batch_size": {"values": [16, 32]}}
    return SweepSpec(method=method, name="test sweep", metric={"name": "eval/f1", "goal": "maximize"},
                     parameters=parameters, early_terminate=early_terminate)


def container(document):
    return document["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]


def pod(document):
    return document["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]


def test_committed_experiment_is_the_builders_output_for_the_tutorial_sweep():
    expected = experiment_yaml(build_experiment(load_sweep(str(TUTORIAL_SWEEP)), KatibConfig()))
    assert COMMITTED.read_text() == expected, (
        "k8s/katib/experiment.yaml drifted from the builder; regenerate it with\n"
        "  python -c \"from genomenlp.components.katib.cli_support import write_experiment_yaml as w; "
        "from genomenlp.components.katib.config import KatibConfig; "
        "from genomenlp.components.search.spec import load_sweep; "
        "w(load_sweep('data/tutorial/sweep.json'), KatibConfig(), 'k8s/katib/experiment.yaml')\"")


def test_tutorial_sweep_converts_as_is():
    document = as_dict(load_sweep(str(TUTORIAL_SWEEP)))
    assert document["apiVersion"] == "kubeflow.org/v1beta1" and document["kind"] == "Experiment"
    spec = document["spec"]
    assert spec["objective"] == {
        "additionalMetricNames": ["eval_loss", "eval_mcc", "eval_roc_auc"],
        "metricStrategies": [{"name": "eval_f1", "value": "max"}, {"name": "eval_loss", "value": "min"},
                             {"name": "eval_mcc", "value": "max"}, {"name": "eval_roc_auc", "value": "max"}],
        "objectiveMetricName": "eval_f1", "type": "maximize"}
    parameters = {p["name"]: p for p in spec["parameters"]}
    # The sweep's own names (batch_size, epochs) become the config fields train takes as flags.
    assert set(parameters) == {"per_device_train_batch_size", "num_train_epochs", "learning_rate"}
    assert parameters["per_device_train_batch_size"] == {
        "feasibleSpace": {"list": ["5", "10", "15"]}, "name": "per_device_train_batch_size",
        "parameterType": "discrete"}
    assert parameters["learning_rate"]["parameterType"] == "double"
    assert parameters["learning_rate"]["feasibleSpace"] == {"min": "0.0001", "max": "0.1"}
    assert (spec["maxTrialCount"], spec["parallelTrialCount"], spec["maxFailedTrialCount"]) == (8, 2, 3)
    # The YAML is the same document.
    assert yaml.safe_load(experiment_yaml(build_experiment(load_sweep(str(TUTORIAL_SWEEP)), KatibConfig()))) == document


@pytest.mark.parametrize("method, bayes_algorithm, expected", [
    ("random", "tpe", "random"),
    ("grid", "tpe", "grid"),
    ("bayes", "tpe", "tpe"),
    ("bayes", "bayesianoptimization", "bayesianoptimization"),
])
def test_each_method_maps_to_its_algorithm(method, bayes_algorithm, expected):
    document = as_dict(sweep(method), KatibConfig(bayes_algorithm=bayes_algorithm))
    algorithm = document["spec"]["algorithm"]
    assert algorithm["algorithmName"] == expected
    if method == "grid":
        # Katib's grid enumerates; the budget shrinks to the grid's size (2 × 2).
        assert "algorithmSettings" not in algorithm
        assert document["spec"]["maxTrialCount"] == 4
    else:
        assert algorithm["algorithmSettings"] == [{"name": "random_state", "value": "42"}]
        assert document["spec"]["maxTrialCount"] == 8


def test_every_method_option_is_covered():
    assert {m.value for m in Method} == {"random", "grid", "bayes"}


def test_parameter_types_follow_the_config_fields():
    spec = sweep("bayes",
                 learning_rate={"min": 1e-5, "max": 1e-2, "distribution": "log_uniform_values"},
                 batch_size={"min": 8, "max": 256, "distribution": "log_uniform_values"},
                 weight_decay={"min": 0.0, "max": 0.1, "distribution": "q_uniform", "q": 0.01},
                 num_layers={"min": 1, "max": 4},
                 dropout={"min": 0, "max": 0.3, "distribution": "uniform"},
                 architecture={"values": ["bert", "distilbert"]},
                 epochs={"value": 3})
    parameters = {p["name"]: p for p in as_dict(spec)["spec"]["parameters"]}
    assert parameters["learning_rate"] == {
        "feasibleSpace": {"distribution": "logUniform", "max": "0.01", "min": "1e-05"},
        "name": "learning_rate", "parameterType": "double"}
    # An integer field stays integral even on a log scale.
    assert parameters["per_device_train_batch_size"]["parameterType"] == "int"
    assert parameters["per_device_train_batch_size"]["feasibleSpace"] == {"distribution": "logUniform", "max": "256",
                                                                          "min": "8"}
    assert parameters["weight_decay"]["feasibleSpace"] == {"max": "0.1", "min": "0.0", "step": "0.01"}
    assert parameters["num_layers"] == {"feasibleSpace": {"max": "4", "min": "1"}, "name": "num_layers",
                                        "parameterType": "int"}
    assert parameters["dropout"]["parameterType"] == "double"
    assert parameters["architecture"] == {"feasibleSpace": {"list": ["bert", "distilbert"]}, "name": "architecture",
                                          "parameterType": "categorical"}
    # A fixed value is no search dimension: every trial gets it as a flag.
    assert "num_train_epochs" not in parameters
    assert "--num_train_epochs=3" in container(as_dict(spec))["command"]


def test_an_integer_setting_with_a_fractional_bound_is_refused():
    with pytest.raises(InputError, match="not a whole number"):
        build_experiment(sweep(num_layers={"min": 1.5, "max": 4.0, "distribution": "int_uniform"}), KatibConfig())


def test_trial_parameters_are_config_fields_and_fill_the_train_flags():
    spec = sweep("random", learning_rate={"min": 1e-4, "max": 1e-2}, batch_size={"values": [8, 16]},
                 num_layers={"values": [1, 2]})
    document = as_dict(spec, KatibConfig(fixed={"hidden_size": 64, "num_heads": 4}))
    template = document["spec"]["trialTemplate"]
    names = [p["name"] for p in template["trialParameters"]]
    assert names == ["learning_rate", "per_device_train_batch_size", "num_layers"]
    assert set(names) <= CONFIG_FIELDS
    assert all(p["reference"] == p["name"] and p["description"] for p in template["trialParameters"])
    assert names == [p["name"] for p in document["spec"]["parameters"]]
    command = container(document)["command"]
    assert command[:4] == ["train", "s3://genomenlp/data/train.parquet", "parquet", "s3://genomenlp/data/tokenizer.json"]
    for name in names:
        assert f"--{name}=${{trialParameters.{name}}}" in command
    assert {"--no_register", "--no_progress", "--metric_for_best_model=eval_f1", "--greater_is_better",
            "--hidden_size=64", "--num_heads=4"} <= set(command)
    # Katib joins the command with spaces inside `sh -c`; it must come back as the same words.
    assert shlex.split(" ".join(command)) == command
    assert template["primaryContainerName"] == container(document)["name"] == "train"
    assert document["spec"]["trialTemplate"]["trialSpec"]["spec"]["backoffLimit"] == 0


def test_the_sweep_wins_over_fixed_settings():
    command = container(as_dict(sweep(), KatibConfig(fixed={"learning_rate": 0.5, "seed": 7})))["command"]
    assert "--seed=7" in command and "--learning_rate=0.5" not in command


def test_gpu_placement_and_requests():
    config = KatibConfig(gpus=2, cpu="8", memory="32Gi", node_selector={"pool": "a100"},
                         tolerations=[Toleration(key="nvidia.com/gpu", operator="Equal", value="present")])
    document = as_dict(sweep(), config)
    spec = pod(document)
    assert spec["nodeSelector"] == {"pool": "a100"}
    assert spec["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Equal",
                                    "value": "present"}]
    assert container(document)["resources"] == {"limits": {"memory": "32Gi", "nvidia.com/gpu": "2"},
                                                "requests": {"cpu": "8", "memory": "32Gi"}}
    assert "--device=cuda" in container(document)["command"]
    assert spec["serviceAccountName"] == "genomenlp-trial" and spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    assert container(document)["securityContext"]["runAsNonRoot"] is True


def test_trial_pod_meets_the_restricted_pod_security_profile():
    document = as_dict(sweep())
    # Pod-wide, so Katib's injected metrics collector (an image without a user) runs as the image's user too.
    assert pod(document)["securityContext"] == {"runAsNonRoot": True, "runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID,
                                                "seccompProfile": {"type": "RuntimeDefault"}}
    assert container(document)["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsGroup": IMAGE_UID,
        "runAsNonRoot": True, "runAsUser": IMAGE_UID}
    assert "privileged" not in container(document)["securityContext"]
    assert not pod(document).get("hostNetwork") and not pod(document).get("hostPID")


def test_default_placement_is_the_gpu_pool():
    spec = pod(as_dict(sweep()))
    assert spec["nodeSelector"] == {"genomenlp.io/node-pool": "gpu"}
    assert spec["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]


def test_cpu_trials_have_no_gpu_limit():
    document = as_dict(sweep(), KatibConfig(gpus=0, node_selector={}, tolerations=[]))
    assert "nvidia.com/gpu" not in container(document)["resources"]["limits"]
    assert "--device=cpu" in container(document)["command"]
    assert "nodeSelector" not in pod(document) and "tolerations" not in pod(document)


def test_s3_credentials_come_from_a_secret_reference():
    document = as_dict(sweep())
    assert container(document)["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    assert container(document)["env"] == [{"name": "AWS_ENDPOINT_URL",
                                           "value": "http://object-store.genomenlp.svc.cluster.local:9000"}]
    bare = as_dict(sweep(), KatibConfig(s3_secret=None, s3_endpoint_url=None))
    assert "envFrom" not in container(bare) and "env" not in container(bare)


def test_metrics_collector_reads_stdout_with_our_filter():
    collector = as_dict(sweep())["spec"]["metricsCollectorSpec"]
    assert collector == {"collector": {"kind": "StdOut"}, "source": {"filter": {"metricsFormat": [METRICS_FORMAT]}}}


def test_hyperband_becomes_median_stopping():
    spec = sweep(early_terminate={"type": "hyperband", "min_iter": 2, "eta": 3})
    assert as_dict(spec)["spec"]["earlyStopping"] == {
        "algorithmName": "medianstop",
        "algorithmSettings": [{"name": "min_trials_required", "value": "3"}, {"name": "start_step", "value": "2"}]}
    assert "earlyStopping" not in as_dict(sweep())["spec"]


def test_minimised_loss_objective():
    spec = SweepSpec(metric={"name": "eval/loss", "goal": "minimize"}, parameters={"learning_rate": {"values": [0.1]}})
    objective = as_dict(spec)["spec"]["objective"]
    assert objective["type"] == "minimize" and objective["objectiveMetricName"] == "eval_loss"
    assert objective["additionalMetricNames"] == ["eval_mcc", "eval_roc_auc"]
    assert objective["metricStrategies"][0] == {"name": "eval_loss", "value": "min"}
    assert "--no-greater_is_better" in container(as_dict(spec))["command"]


@pytest.mark.parametrize("problem, spec, config", [
    ("not a metric train reports", SweepSpec(metric={"name": "accuracy"}, parameters={"seed": {"values": [1]}}), {}),
    ("not a metric train reports", sweep(), {"additional_metrics": ["val_auroc"]}),
    ("nothing to search", sweep(learning_rate={"value": 0.1}), {}),
    ("shell", sweep(), {"train_path": "s3://bucket/my data.parquet"}),
])
def test_inexpressible_sweeps_are_one_line_errors(problem, spec, config):
    with pytest.raises(InputError, match=problem):
        build_experiment(spec, KatibConfig(**config))


def test_names_are_dns_safe_and_short():
    document = as_dict(sweep(), KatibConfig(name="My_Genomic SWEEP for the promoter dataset 2024"))
    name = document["metadata"]["name"]
    assert name == "my-genomic-sweep-for-the-promoter-datase" and len(name) <= 40
    assert document["metadata"]["namespace"] == "genomenlp"


def test_config_file_and_flags(tmp_path):
    path = tmp_path / "katib.yaml"
    path.write_text("namespace: research\ngpus: 0\nfixed: {num_layers: 1}\n")
    config = load_katib_config(str(path), max_trial_count=3)
    assert (config.namespace, config.gpus, config.max_trial_count, config.fixed) == (
        "research", 0, 3, {"num_layers": 1})
    path.write_text("gpu: 1\n")
    with pytest.raises(InputError, match="gpu"):
        load_katib_config(str(path))
    with pytest.raises(InputError, match="device"):
        load_katib_config(None, fixed={"device": "cpu"})
    with pytest.raises(InputError, match="quantity"):
        load_katib_config(None, memory="16 gigabytes")


def test_dry_run_writes_the_yaml(tmp_path, capsys):
    spec_path = tmp_path / "sweep.json"
    spec_path.write_text(json.dumps({"method": "bayes", "parameters": {"learning_rate": {"min": 0.001, "max": 0.1}}}))
    code = katib_sweep(load_sweep(str(spec_path)), katib_config=None, train="s3://b/train.parquet",
                       file_format="parquet", tokeniser="s3://b/tokens.json", test="test", valid="valid", trials=5,
                       output_dir=str(tmp_path / "out"), fixed={"num_layers": 1}, dry_run=True)
    assert code == 0
    document = yaml.safe_load((tmp_path / "out" / "experiment.yaml").read_text())
    assert document["spec"]["maxTrialCount"] == 5
    assert "--num_layers=1" in container(document)["command"]
    assert "kubectl apply -f" in capsys.readouterr().out


def test_write_experiment_yaml_returns_the_experiment(tmp_path):
    experiment = write_experiment_yaml(sweep(), KatibConfig(), str(tmp_path / "e.yaml"))
    assert yaml.safe_load((tmp_path / "e.yaml").read_text()) == experiment_to_dict(experiment)
