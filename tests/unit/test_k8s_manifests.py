"""k8s/: every manifest parses, has a known kind and API version, is listed, and holds no secrets.

The kustomize builds of the two install modes, and the schema validation of every object, are in
test_k8s_validate.py.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from genomenlp.components.katib.config import GPU_RESOURCE, KatibConfig

K8S = Path(__file__).resolve().parents[2] / "k8s"
KNOWN = {
    "Namespace": "v1", "ServiceAccount": "v1", "ConfigMap": "v1", "Service": "v1", "PersistentVolumeClaim": "v1",
    "Secret": "v1", "Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1",
    "Deployment": "apps/v1", "Job": "batch/v1", "Experiment": "kubeflow.org/v1beta1", "Profile": "kubeflow.org/v1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}
# Where each kustomization puts its objects: the project namespace, KFP's own namespace on a single-user
# install, or none (a namespace-less part, or an overlay whose parts carry their namespaces).
NAMESPACES = {"base": "genomenlp", "katib": "genomenlp", "overlays/single-user/kubeflow": "kubeflow"}
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
            path = (folder / entry).resolve()
            listed.add(path)
            if entry.endswith(".env"):
                # Not committed: an example stands beside it and git ignores the real one.
                assert (folder / f"{entry}.example").exists()
                assert entry in (folder / ".gitignore").read_text().split()
            else:
                assert path.exists(), f"{kustomization} lists missing {entry}"
                # kubectl apply -k refuses files outside the kustomization's folder; folders may be anywhere.
                assert path.is_dir() or folder.resolve() in path.parents, f"{kustomization}: {entry} is outside"
        assert spec.get("namespace") == NAMESPACES.get(str(folder.relative_to(K8S))), kustomization
    unlisted = [str(p.relative_to(K8S)) for p in manifests() if p.resolve() not in listed]
    assert not unlisted, f"not in any kustomization: {unlisted}"


def test_no_secret_values_anywhere():
    # No Secret objects with data: credentials come from the git-ignored env file only.
    for secret in by_kind("Secret"):
        assert not secret.get("data") and not secret.get("stringData")
    example = (K8S / "credentials" / "s3-credentials.env.example").read_text()
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
    ignored = subprocess.run(["git", "check-ignore", "-q", "k8s/credentials/s3-credentials.env"], cwd=K8S.parent)
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


def _role(name: str) -> dict:
    (role,) = [r for r in by_kind("Role") if r["metadata"]["name"] == name]
    return role


def test_rbac_is_least_privilege():
    for role in by_kind("Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert not {"update", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
            # Core objects (Secrets, ConfigMaps) only by name: never list or watch a namespace's Secrets.
            if rule["apiGroups"] == [""]:
                assert rule.get("resourceNames") and set(rule["verbs"]) == {"get"}, rule
    assert not by_kind("ClusterRole") and not by_kind("ClusterRoleBinding")
    # The KFP v2 driver and launcher of every task read their settings and the pipeline root's credentials,
    # only those two objects, and Argo's executor reports outputs.
    assert _role("genomenlp-kfp-task")["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [KFP_LAUNCHER_CONFIG], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [KFP_ARTIFACT_SECRET], "verbs": ["get"]},
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]
    runner = _role("genomenlp-runner")
    assert all(rule["apiGroups"] == ["kubeflow.org"] for rule in runner["rules"])
    experiments = next(r for r in runner["rules"] if "experiments" in r["resources"])
    # Exactly what the launcher calls: create, poll, delete.
    assert set(experiments["verbs"]) == {"create", "get", "delete"}
    # And for a `distributed:` step's PyTorchJob (genomenlp/components/training_operator/launcher.py).
    jobs = next(r for r in runner["rules"] if "pytorchjobs" in r["resources"])
    assert set(jobs["verbs"]) == {"create", "get", "delete"}
    bindings = {b["metadata"]["name"]: b for b in by_kind("RoleBinding")}
    assert set(bindings) == {"genomenlp-kfp-task", "genomenlp-runner"}
    for name, binding in bindings.items():
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
        assert [s["name"] for s in binding["subjects"]] == ["genomenlp-runner"]
    # Trials run as an account with no rights and no token.
    accounts = {sa["metadata"]["name"]: sa for sa in by_kind("ServiceAccount")}
    assert set(accounts) == {"genomenlp-runner", "genomenlp-trial"}
    assert accounts[KatibConfig().service_account]["automountServiceAccountToken"] is False


def test_namespace_allows_katib_metrics_collection_and_kfp():
    (namespace,) = by_kind("Namespace")
    assert namespace["metadata"]["name"] == KatibConfig().namespace
    assert namespace["metadata"]["labels"]["katib.kubeflow.org/metrics-collector-injection"] == "enabled"
    # What makes KFP's profile controller install kfp-launcher and the artifact Secret (multi-user installs).
    assert namespace["metadata"]["labels"]["pipelines.kubeflow.org/enabled"] == "true"


def test_multi_user_profile_owns_the_project_namespace_with_a_placeholder_owner():
    (profile,) = by_kind("Profile")
    (namespace,) = by_kind("Namespace")
    # A profile owns the namespace of its own name; the owner is for the user to fill in.
    assert profile["metadata"]["name"] == namespace["metadata"]["name"]
    assert "namespace" not in profile["metadata"]  # cluster-scoped
    assert profile["spec"]["owner"]["kind"] == "User"
    assert profile["spec"]["owner"]["name"].endswith("@example.com")


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


def test_pods_that_must_finish_get_no_istio_sidecar():
    # A profile namespace injects Istio sidecars, which never exit: a Job (or a Katib trial's Job) would never end.
    (experiment,) = by_kind("Experiment")
    jobs = by_kind("Job") + [experiment["spec"]["trialTemplate"]["trialSpec"]]
    for job in jobs:
        assert job["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
