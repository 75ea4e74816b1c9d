"""``genomenlp-pipeline compile``: each pipeline's KFP v2 YAML, with every step placed as its YAML says.

No cluster or Docker: the stack's Kubeflow endpoint is a closed port, so a compile that tried to
upload would fail. The ZenML server is real (on 127.0.0.1): compiled pods load their snapshot from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import components

from genomenlp.components.errors import InputError
from genomenlp.platform import cli
from genomenlp.platform.cluster import kubeflow_config
from genomenlp.platform.config_overlay import load_run_config
from genomenlp.platform.kubeflow_flavor import SETTINGS_KEY, GenomeKubeflowOrchestratorSettings, kfp_cron
from genomenlp.platform.run_config import check_run_config
from genomenlp.platform.stacks import KubeflowStackConfig, register_kubeflow_stack

CONFIGS = Path(__file__).resolve().parents[2] / "genomenlp" / "pipelines" / "configs"
IMAGE = "registry.example.com/genomenlp/genomenlp:cuda-test"
GPU_STEPS = {
    # The sweep step only submits a Katib Experiment and waits: its trials hold the GPUs.
    "training": {"train_classifier", "cross_validate_model", "interpret_sequences"},
    "pretraining": {"pretrain_encoder"},
}
ENTRYPOINT = ["python", "-m", "zenml.entrypoints.entrypoint"]
# The pipelines that have a cluster configuration, and the file `compile` writes for each.
SECRET_ENV = {"s3-credentials": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
              "zenml-api-key": ["ZENML_STORE_API_KEY"]}
COMPILED = {"dataset": "dataset_pipeline", "training": "training_pipeline", "pretraining": "pretraining_pipeline",
            "compare": "comparison_pipeline"}


@pytest.fixture(scope="module")
def project_root(tmp_path_factory):
    """Stand-in for the repository root, so the command's `zenml init` leaves the real .zen alone."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("project")
        patch.setattr(cli, "PROJECT_ROOT", root)
        yield root


@pytest.fixture(scope="module")
def kubeflow_stack(server_client):
    """The kubeflow stack on a real ZenML server: the pods load their snapshot from it."""
    config = KubeflowStackConfig(
        kubeflow_hostname="http://127.0.0.1:9/pipeline",
        image=IMAGE,
        registry="registry.example.com/genomenlp",
        artifact_path="s3://genomenlp/zenml",
        s3_endpoint_url="http://127.0.0.1:9",
        secret_env=SECRET_ENV,
    )
    return register_kubeflow_stack(config, server_client)


@pytest.fixture(scope="module")
def compiled(kubeflow_stack, project_root, tmp_path_factory) -> dict[str, dict]:
    """Every pipeline compiled by the command, loaded with kfp's own loader: name → spec dicts."""
    out = tmp_path_factory.mktemp("kfp")
    assert cli.main(["compile", "--stack", "kubeflow", "--output", str(out)]) == 0
    loaded = {}
    for name, pipeline in COMPILED.items():
        component = components.load_component_from_file(str(out / f"{pipeline}.yaml"))
        loaded[name] = {
            "pipeline": json_format.MessageToDict(component.pipeline_spec),
            "platform": json_format.MessageToDict(component.platform_spec),
        }
    return loaded


def _tasks(spec: dict) -> dict[str, tuple[dict, dict]]:
    """Step name → (its container, its Kubernetes platform config), from the compiled spec."""
    executors = spec["pipeline"]["deploymentSpec"]["executors"]
    platform = spec["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tasks = {}
    for label, executor in executors.items():
        args = executor["container"]["args"]
        tasks[args[args.index("--step_name") + 1]] = (executor["container"], platform.get(label, {}))
    return tasks


def _cpu(count: float) -> str:
    return str(int(count)) if count == int(count) else f"{int(count * 1000)}m"


def _mebibytes(memory: str) -> str:
    assert memory.endswith("GiB"), "the cluster configs give memory in GiB"
    return f"{int(float(memory[:-3]) * 1024)}Mi"


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_every_task_carries_the_placement_its_yaml_gives(compiled, name):
    config = load_run_config(kubeflow_config(cli.COMMANDS[name].default_config))
    tasks = _tasks(compiled[name])

    assert set(tasks) == set(config["steps"]), "every step of the pipeline has settings in its YAML"
    for step, (container, kubernetes) in tasks.items():
        settings = config["steps"][step]["settings"]
        resources = settings["resources"]
        pod = settings.get(SETTINGS_KEY, {}).get("pod_settings", {})
        assert container["image"] == IMAGE, step
        # ZenML's entrypoint, directly or after the wrapper that writes the step's dashboard outputs.
        entrypoint = [*container["command"], *container["args"]]
        entrypoint = entrypoint[entrypoint.index("--") + 1:] if "--" in entrypoint else entrypoint
        assert entrypoint[:3] == ENTRYPOINT, step
        assert "--snapshot_id" in container["args"], step
        assert container["resources"]["resourceCpuRequest"] == _cpu(resources["cpu_count"]), step
        assert container["resources"]["resourceMemoryRequest"] == _mebibytes(resources["memory"]), step
        if resources.get("gpu_count"):
            accelerator = container["resources"]["accelerator"]
            assert accelerator["resourceType"] == "nvidia.com/gpu", step
            assert accelerator["resourceCount"] == str(resources["gpu_count"]), step
        else:
            assert "accelerator" not in container["resources"], step
        assert kubernetes.get("nodeSelector", {}).get("labels", {}) == pod.get("node_selectors", {}), step
        assert kubernetes.get("tolerations", []) == pod.get("tolerations", []), step
        # S3 keys come from the cluster's Secret; no credential is written into the YAML.
        assert {"secretName": "s3-credentials"}.items() <= kubernetes["secretAsEnv"][0].items(), step
        names = {variable["name"] for variable in container["env"]}
        assert not {n for n in names if "API_KEY" in n or "API_TOKEN" in n or "PASSWORD" in n}, step


@pytest.mark.parametrize("name", sorted(GPU_STEPS))
def test_gpu_steps_are_the_ones_on_the_gpu_pool(compiled, name):
    tasks = _tasks(compiled[name])
    on_gpus = {step for step, (container, _) in tasks.items() if "accelerator" in container["resources"]}
    tolerating = {step for step, (_, kubernetes) in tasks.items() if kubernetes.get("tolerations")}

    assert on_gpus == tolerating == GPU_STEPS[name]
    for step in GPU_STEPS[name]:
        assert tasks[step][1]["nodeSelector"]["labels"] == {"genomenlp.io/node-pool": "gpu"}
        assert tasks[step][1]["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]


def test_tasks_keep_the_pipeline_order(compiled):
    dag = compiled["training"]["pipeline"]["root"]["dag"]["tasks"]

    # The input digests come first: every step reading inputs takes its group (cache key only).
    assert sorted(dag["sweep-hyperparameters"]["dependentTasks"]) == ["create-dataset", "fingerprint-inputs"]
    # The folds choose the final classifier's epoch: it waits for them.
    assert "cross-validate-model" in dag["train-classifier"]["dependentTasks"]
    # The served model averages the final classifier with the folds' models; it is what is promoted and explained.
    assert sorted(dag["ensemble-models"]["dependentTasks"]) == ["create-dataset", "cross-validate-model",
                                                                "train-classifier"]
    assert sorted(dag["promote-model"]["dependentTasks"]) == ["cross-validate-model", "ensemble-models"]
    assert "ensemble-models" in dag["interpret-sequences"]["dependentTasks"]
    # The export, last, copies every folder the run made.
    assert set(dag["export-outputs"]["dependentTasks"]) == {
        "create-dataset", "sweep-hyperparameters", "train-classifier", "cross-validate-model", "ensemble-models",
        "interpret-sequences"}


def _compile_with(project_root, tmp_path, base: str, change) -> tuple[int, str]:
    config = load_run_config(CONFIGS / base)
    change(config)
    path = tmp_path / base
    path.write_text(yaml.safe_dump(config))
    return cli.main(["compile", "dataset", "--config", str(path), "--stack", "kubeflow", "--output", str(tmp_path)])


def test_a_pod_setting_kfp_cannot_express_is_refused_naming_the_step(
    kubeflow_stack, project_root, tmp_path, capsys
):
    def add_volume(config):
        pod = {"volumes": [{"name": "scratch", "emptyDir": {}}]}
        config["steps"]["create_dataset"]["settings"][SETTINGS_KEY] = {"pod_settings": pod}

    assert _compile_with(project_root, tmp_path, "dataset_pipeline_kubeflow.yaml", add_volume) == 2
    assert "step create_dataset: pod_settings.volumes is not supported" in capsys.readouterr().err
    assert not (tmp_path / "dataset_pipeline.yaml").exists()


def test_fail_fast_is_refused_rather_than_promised(kubeflow_stack, project_root, tmp_path, capsys):
    # The local configs' mode: KFP cannot stop running steps when one fails.
    status = _compile_with(project_root, tmp_path, "dataset_pipeline_kubeflow.yaml", lambda c: c.pop("execution_mode"))
    assert status == 2
    assert "fail_fast is not supported" in capsys.readouterr().err


def test_compile_needs_a_kubeflow_stack(kubeflow_stack, project_root, tmp_path, capsys):
    assert cli.main(["compile", "dataset", "--stack", "default", "--output", str(tmp_path)]) == 2
    assert "stack default: its orchestrator is local, not genomenlp_kubeflow" in capsys.readouterr().err


def _without(config: dict, *keys: str) -> dict:
    return {key: value for key, value in config.items() if key not in keys}


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_cluster_configs_are_overlays_of_the_local_ones(name):
    local_path = cli.COMMANDS[name].default_config
    overlay = yaml.safe_load(kubeflow_config(local_path).read_text())
    local, cluster = load_run_config(local_path), load_run_config(kubeflow_config(local_path))

    # One source per setting: the overlay names its base and repeats none of its parameters.
    assert overlay["extends"] == local_path.name
    assert set(overlay.get("parameters", {})) <= ({"models"} if name == "compare" else set())
    assert "model" not in overlay
    if name == "compare":
        # A pod has no model folders of the user's: on the cluster the models come from the registry.
        assert all(model.startswith("registry:") for model in cluster["parameters"]["models"])
        local["parameters"].pop("models"), cluster["parameters"].pop("models")
    assert cluster["parameters"] == local["parameters"]
    assert cluster.get("model") == local.get("model")
    for step, step_config in local.get("steps", {}).items():
        # Only where the search runs may differ: Katib on the cluster, Optuna locally.
        cluster_parameters = _without(cluster["steps"][step]["parameters"], "backend", "katib", "katib_host")
        assert cluster_parameters == step_config["parameters"], step


def test_a_parameter_changed_in_the_local_config_reaches_the_cluster_config(tmp_path):
    for name in ("training_pipeline.yaml", "training_pipeline_kubeflow.yaml",
                 "training_pipeline_kubeflow_nightly.yaml"):
        (tmp_path / name).write_text((CONFIGS / name).read_text())
    local = yaml.safe_load((tmp_path / "training_pipeline.yaml").read_text())
    local["parameters"]["folds"] = 7
    (tmp_path / "training_pipeline.yaml").write_text(yaml.safe_dump(local))

    assert load_run_config(tmp_path / "training_pipeline_kubeflow_nightly.yaml")["parameters"]["folds"] == 7


def test_the_nightly_config_is_the_cluster_config_with_a_schedule():
    cluster = load_run_config(CONFIGS / "training_pipeline_kubeflow.yaml")
    nightly = load_run_config(CONFIGS / "training_pipeline_kubeflow_nightly.yaml")

    assert _without(nightly, "schedule") == cluster
    assert nightly["schedule"]["cron_expression"] == "0 2 * * *"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"resources": {"gpu_cout": 1}}, "unknown key steps.create_dataset.settings.resources.gpu_cout"),
        (
            {SETTINGS_KEY: {"pod_settings": {"node_selector": {"pool": "gpu"}}}},
            f"unknown key steps.create_dataset.settings.{SETTINGS_KEY}.pod_settings.node_selector",
        ),
        ({"orchestrator.genomenlp_kubeflw": {}}, "unknown key steps.create_dataset.settings.orchestrator.genomenlp"),
        ({"resources": {"memory": "lots"}}, "steps.create_dataset.settings.resources.memory: String should match"),
    ],
    ids=["resources", "pod-settings", "flavor-key", "memory-value"],
)
def test_placement_mistakes_are_reported_with_their_key(tmp_path, settings, message):
    from genomenlp.pipelines.dataset_pipeline import dataset_pipeline

    config = load_run_config(CONFIGS / "dataset_pipeline_kubeflow.yaml")
    config["steps"]["create_dataset"]["settings"] = settings
    path = tmp_path / "dataset_pipeline_kubeflow.yaml"
    path.write_text(yaml.safe_dump(config))

    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        check_run_config(dataset_pipeline, path)


def test_a_misspelt_schedule_is_reported(tmp_path):
    from genomenlp.pipelines.training_pipeline import training_pipeline

    config = load_run_config(CONFIGS / "training_pipeline_kubeflow_nightly.yaml")
    config["schedule"] = {"cron": "0 2 * * *"}
    path = tmp_path / "training_pipeline_kubeflow.yaml"
    path.write_text(yaml.safe_dump(config))

    with pytest.raises(InputError, match="unknown key schedule.cron"):
        check_run_config(training_pipeline, path)


def test_settings_keep_the_pod_settings_they_are_given():
    pod = {"node_selectors": {"genomenlp.io/node-pool": "gpu"}, "tolerations": [{"key": "nvidia.com/gpu"}]}

    # ZenML 0.98's own validator replaces these with empty pod settings.
    kept = GenomeKubeflowOrchestratorSettings(pod_settings=pod).pod_settings
    migrated = GenomeKubeflowOrchestratorSettings(node_selectors={"pool": "gpu"}).pod_settings

    assert kept.node_selectors == pod["node_selectors"] and kept.tolerations == pod["tolerations"]
    assert migrated.node_selectors == {"pool": "gpu"}
    with pytest.raises(ValueError, match="node_selectors inside pod_settings"):
        GenomeKubeflowOrchestratorSettings(pod_settings=pod, node_selectors={"pool": "gpu"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [("0 2 * * *", "0 0 2 * * *"), ("30 0 2 * * 1-5", "30 0 2 * * 1-5"), ("*/15 * * * *", "0 */15 * * * *")],
)
def test_cron_expressions_get_kubeflows_seconds_field(given, expected):
    assert kfp_cron(given) == expected


def test_a_cron_expression_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="5 fields"):
        kfp_cron("0 2 * *")


def test_pods_authenticate_with_the_api_key_secret_and_reach_the_server(compiled, zenml_server):
    for name, spec in compiled.items():
        for step, (container, platform) in _tasks(spec).items():
            env = {item["name"]: item["value"] for item in container["env"]}
            assert env["ZENML_STORE_TYPE"] == "rest" and env["ZENML_STORE_URL"] == zenml_server, (name, step)
            assert not [key for key in env if "TOKEN" in key or "API_KEY" in key or "PASSWORD" in key]
            secrets = {entry["secretName"]: entry["keyToEnv"] for entry in platform["secretAsEnv"]}
            assert secrets["zenml-api-key"] == [{"secretKey": "ZENML_STORE_API_KEY", "envVar": "ZENML_STORE_API_KEY"}]


def test_a_stack_without_the_api_key_secret_is_refused(server_client, project_root, tmp_path, capsys):
    register_kubeflow_stack(KubeflowStackConfig(
        name="keyless", kubeflow_hostname="http://127.0.0.1:9/pipeline", image=IMAGE,
        registry="registry.example.com/genomenlp", artifact_path="s3://genomenlp/zenml",
    ), server_client)
    assert cli.main(["compile", "dataset", "--stack", "keyless", "--output", str(tmp_path)]) == 2
    assert "no credentials for the ZenML server; add `zenml-api-key: [ZENML_STORE_API_KEY]`" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_pods_server_url_can_differ_from_the_clients(server_client, project_root, tmp_path):
    register_kubeflow_stack(KubeflowStackConfig(
        name="in-cluster", kubeflow_hostname="http://127.0.0.1:9/pipeline", image=IMAGE,
        registry="registry.example.com/genomenlp", artifact_path="s3://genomenlp/zenml", secret_env=SECRET_ENV,
        pod_zenml_url="http://zenml.zenml.svc.cluster.local:8080/",
    ), server_client)
    assert cli.main(["compile", "dataset", "--stack", "in-cluster", "--output", str(tmp_path)]) == 0
    component = components.load_component_from_file(str(tmp_path / "dataset_pipeline.yaml"))
    spec = {"pipeline": json_format.MessageToDict(component.pipeline_spec),
            "platform": json_format.MessageToDict(component.platform_spec)}
    for container, _ in _tasks(spec).values():
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["ZENML_STORE_URL"] == "http://zenml.zenml.svc.cluster.local:8080"


# What each step shows in the Kubeflow dashboard: output name → KFP schema title.
DASHBOARD_OUTPUTS = {
    "train_classifier": {"test_metrics": "system.Metrics", "test_classification": "system.ClassificationMetrics",
                         "test_summary": "system.HTML"},
    "cross_validate_model": {"cv_metrics": "system.Metrics", "cv_summary": "system.HTML"},
    "ensemble_models": {"served_metrics": "system.Metrics", "served_classification": "system.ClassificationMetrics",
                        "served_summary": "system.HTML"},
    "sweep_hyperparameters": {"sweep_summary": "system.Markdown"},
    "promote_model": {"promotion": "system.Markdown"},
    "interpret_sequences": {"interpretation_summary": "system.Markdown"},
    "compare_models": {"powerlaw_summary": "system.Markdown"},
    "pretrain_encoder": {"pretraining_metrics": "system.Metrics"},
}


@pytest.mark.parametrize("name", ["training", "compare", "pretraining"])
def test_steps_with_results_declare_kfp_output_artifacts(compiled, name):
    # Read from the protos KFP's own loader parsed, so the declaration is what the backend sees.
    pipeline = compiled[name]["pipeline"]
    executors = pipeline["deploymentSpec"]["executors"]
    seen = set()
    for component in pipeline["components"].values():
        container = executors[component["executorLabel"]]["container"]
        step = container["args"][container["args"].index("--step_name") + 1]
        declared = {output: spec["artifactType"]["schemaTitle"]
                    for output, spec in component.get("outputDefinitions", {}).get("artifacts", {}).items()}
        assert declared == DASHBOARD_OUTPUTS.get(step, {}), step
        if declared:
            seen.add(step)
            assert container["command"] == ["python", "-m", "genomenlp.platform.kubeflow_outputs"]
            assert container["args"][:2] == ["--executor_input", "{{$}}"]
            assert container["args"][container["args"].index("--") + 1:][:3] == ENTRYPOINT
    assert seen
