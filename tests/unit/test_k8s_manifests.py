"""k8s/: every manifest parses, has a known kind and API version, is listed, and holds no secrets."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.katib.config import GPU_RESOURCE, KatibConfig

K8S = Path(__file__).resolve().parents[2] / "k8s"
KNOWN = {
    "Namespace": "v1", "ServiceAccount": "v1", "ConfigMap": "v1", "Service": "v1", "PersistentVolumeClaim": "v1",
    "Secret": "v1", "Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1",
    "Deployment": "apps/v1", "Job": "batch/v1", "Experiment": "kubeflow.org/v1beta1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}
# What KFP v2's driver and launcher read with the task pod's service account
# (kubeflow/pipelines backend/src/v2/config/env.go: configMapName, minioArtifactSecretName).
KFP_LAUNCHER_CONFIG = "kfp-launcher"
KFP_ARTIFACT_SECRET = "mlpipeline-minio-artifact"


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def manifests() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> list[dict]:
    return [doc for path in manifests() for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> list[dict]:
    return [doc for doc in documents() if doc["kind"] == kind]


@pytest.mark.parametrize("path", manifests() + kustomizations(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_parses_with_a_known_kind_and_api_version(path):
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert docs, f"{path} is empty"
    for doc in docs:
        assert doc["kind"] in KNOWN, f"unexpected kind {doc['kind']}"
        assert doc["apiVersion"] == KNOWN[doc["kind"]]
        if doc["kind"] != "Kustomization":
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def test_kustomizations_list_every_file_and_only_existing_ones():
    listed = set()
    for kustomization in kustomizations():
        spec = yaml.safe_load(kustomization.read_text())
        folder = kustomization.parent
        entries = list(spec.get("resources", []))
        entries += [env for generator in spec.get("secretGenerator", []) for env in generator.get("envs", [])]
        for entry in entries:
            path = folder / entry
            listed.add(path)
            if entry.endswith(".env"):
                # Not committed: an example stands beside it and git ignores the real one.
                assert (folder / f"{entry}.example").exists()
                assert entry in (folder / ".gitignore").read_text().split()
            else:
                assert path.exists(), f"{kustomization} lists missing {entry}"
        assert spec.get("namespace") == "genomenlp"
    unlisted = [str(p.relative_to(K8S)) for p in manifests() if p not in listed]
    assert not unlisted, f"not in any kustomization: {unlisted}"


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl (with its built-in kustomize) not installed")
def test_kustomize_builds_both_folders(tmp_path):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    shutil.copy(copy / "s3-credentials.env.example", copy / "s3-credentials.env")
    (copy / "katib" / "kustomization.yaml").write_text(
        (copy / "katib" / "kustomization.yaml").read_text()
        + "images:\n  - name: genomenlp\n    newName: registry.example.com/genomenlp\n    newTag: cuda-1\n")
    built = {}
    for folder in (copy, copy / "katib"):
        result = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        built[folder.name] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted(doc["kind"] for doc in built["k8s"]) == sorted(
        ["Namespace", "ServiceAccount", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret", "Service",
         "PersistentVolumeClaim", "Deployment", "Job"])
    assert all(doc["metadata"].get("namespace", "genomenlp") == "genomenlp" for doc in built["k8s"])
    (experiment,) = built["katib"]
    container = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/genomenlp:cuda-1"


def test_no_secret_values_anywhere():
    # No Secret objects with data: credentials come from the git-ignored env file only.
    for secret in by_kind("Secret"):
        assert not secret.get("data") and not secret.get("stringData")
    example = (K8S / "s3-credentials.env.example").read_text()
    values = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    assert set(values) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} and not any(values.values())
    for path in K8S.rglob("*"):
        if path.is_file() and path.name != "s3-credentials.env":
            text = path.read_text()
            assert not re.search(r"AKIA[0-9A-Z]{16}", text), path
            assert not re.search(r"(?i)(secret|password)[\w-]*\s*[:=]\s*['\"]?[A-Za-z0-9/+]{16,}", text), path


def test_real_credentials_file_is_ignored_by_git():
    if not shutil.which("git") or not (K8S.parent / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "k8s/s3-credentials.env"], cwd=K8S.parent)
    assert ignored.returncode == 0


def test_object_store_and_trials_use_the_secret_by_reference():
    references = set()
    for deployment in by_kind("Deployment") + by_kind("Job"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    references.add((ref["name"], ref["key"]))
    assert references == {("s3-credentials", "AWS_ACCESS_KEY_ID"), ("s3-credentials", "AWS_SECRET_ACCESS_KEY")}
    (experiment,) = by_kind("Experiment")
    pod = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]


def test_rbac_is_least_privilege():
    (role,) = by_kind("Role")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert not {"update", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
        # Core objects (Secrets, ConfigMaps) only by name: never list or watch a namespace's Secrets.
        if rule["apiGroups"] == [""]:
            assert rule.get("resourceNames") and set(rule["verbs"]) == {"get"}, rule
    # The KFP v2 launcher of every task reads the pipeline root's credentials, and only that Secret.
    secrets = [rule for rule in role["rules"] if "secrets" in rule["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [KFP_ARTIFACT_SECRET],
                        "verbs": ["get"]}]
    configmaps = [rule for rule in role["rules"] if "configmaps" in rule["resources"]]
    assert configmaps == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [KFP_LAUNCHER_CONFIG],
                           "verbs": ["get"]}]
    experiments = next(r for r in role["rules"] if "experiments" in r["resources"])
    # Exactly what the launcher calls: create, poll, delete.
    assert set(experiments["verbs"]) == {"create", "get", "delete"}
    assert not by_kind("ClusterRole") and not by_kind("ClusterRoleBinding")
    (binding,) = by_kind("RoleBinding")
    accounts = {sa["metadata"]["name"]: sa for sa in by_kind("ServiceAccount")}
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert [s["name"] for s in binding["subjects"]] == ["genomenlp-runner"]
    # Trials run as an account with no rights and no token.
    trial_account = KatibConfig().service_account
    assert accounts[trial_account]["automountServiceAccountToken"] is False
    assert trial_account not in [s["name"] for s in binding["subjects"]]


def test_namespace_allows_katib_metrics_collection():
    (namespace,) = by_kind("Namespace")
    assert namespace["metadata"]["name"] == KatibConfig().namespace
    assert namespace["metadata"]["labels"]["katib.kubeflow.org/metrics-collector-injection"] == "enabled"


def test_gpu_node_pool_matches_the_katib_defaults():
    (pool,) = [c for c in by_kind("ConfigMap") if c["metadata"]["name"] == "gpu-node-pool"]
    defaults = KatibConfig()
    assert yaml.safe_load(pool["data"]["nodeSelector"]) == defaults.node_selector
    assert yaml.safe_load(pool["data"]["tolerations"]) == [t.model_dump(exclude_none=True)
                                                           for t in defaults.tolerations]
    assert pool["data"]["gpuResource"] == GPU_RESOURCE
    (experiment,) = by_kind("Experiment")
    pod = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == defaults.node_selector
    assert GPU_RESOURCE in pod["containers"][0]["resources"]["limits"]


def test_object_store_service_matches_the_trials_endpoint():
    (service,) = [s for s in by_kind("Service") if s["metadata"]["name"] == "object-store"]
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "s3")
    assert KatibConfig().s3_endpoint_url == f"http://object-store.genomenlp.svc.cluster.local:{port}"
    (deployment,) = by_kind("Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
