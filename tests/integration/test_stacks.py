"""``genomenlp-pipeline stack``: the kubeflow and local stacks registered on a throw-away ZenML store."""

from __future__ import annotations

import json

import pytest
import yaml
from zenml.enums import StackComponentType as Component

from genomenlp.components.object_store import S3_RETRIES
from genomenlp.platform import cli
from genomenlp.platform.cluster import DEFAULT_STACK_CONFIG
from genomenlp.platform.kubeflow_flavor import FLAVOR_NAME
from genomenlp.platform.stacks import load_stack_config

KEY, SECRET = "AKIA-test-key-id", "test-secret-access-key"


@pytest.fixture(scope="module")
def project_root(tmp_path_factory):
    """Stand-in for the repository root, so the command's `zenml init` leaves the real .zen alone."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("project")
        patch.setattr(cli, "PROJECT_ROOT", root)
        yield root


def _stack_yaml(tmp_path, **changes) -> str:
    values = {**yaml.safe_load(DEFAULT_STACK_CONFIG.read_text()), **changes}
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump({key: value for key, value in values.items() if value is not None}))
    return str(path)


def _components(client, stack_name: str) -> dict:
    stack = client.get_stack(stack_name)
    return {kind: client.get_stack_component(kind, models[0].id) for kind, models in stack.components.items()}


def test_bundled_stack_yaml_is_valid():
    config = load_stack_config(DEFAULT_STACK_CONFIG)

    assert config.name == "kubeflow"
    assert config.secret_env["s3-credentials"] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]


def test_register_kubeflow_from_yaml_keeps_credentials_in_a_zenml_secret(
    clean_zenml_client, project_root, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)

    assert cli.main(["stack", "register-kubeflow", "--config", _stack_yaml(tmp_path)]) == 0

    assert "Stack kubeflow registered" in capsys.readouterr().out
    components = _components(clean_zenml_client, "kubeflow")
    orchestrator = components[Component.ORCHESTRATOR]
    assert orchestrator.flavor_name == FLAVOR_NAME
    assert orchestrator.configuration["kubeflow_hostname"] == "https://kubeflow.example.com/pipeline"
    assert orchestrator.configuration["image"] == "registry.example.com/genomenlp/genomenlp:cuda-0.1.0"
    assert orchestrator.configuration["service_account"] == "genomenlp-runner"
    store = components[Component.ARTIFACT_STORE]
    assert (store.flavor_name, store.configuration["path"]) == ("s3", "s3://genomenlp/zenml")
    assert store.configuration["client_kwargs"]["endpoint_url"] == "https://object-store.example.com"
    assert store.configuration["config_kwargs"] == {"retries": S3_RETRIES}
    assert store.configuration["authentication_secret"] == "genomenlp-s3"
    assert components[Component.CONTAINER_REGISTRY].configuration["uri"] == "registry.example.com/genomenlp"
    assert components[Component.IMAGE_BUILDER].flavor_name == "local"
    # The keys went into the ZenML secret, and nowhere into a component's configuration.
    secret = clean_zenml_client.get_secret("genomenlp-s3")
    assert secret.secret_values == {"aws_access_key_id": KEY, "aws_secret_access_key": SECRET}
    configurations = json.dumps([component.configuration for component in components.values()])
    assert KEY not in configurations and SECRET not in configurations


def test_registering_again_updates_the_same_components(clean_zenml_client, project_root, tmp_path):
    before = {kind: component.id for kind, component in _components(clean_zenml_client, "kubeflow").items()}

    changed = _stack_yaml(tmp_path, image="registry.example.com/genomenlp/genomenlp:cuda-0.2.0", s3_endpoint_url=None)
    assert cli.main(["stack", "register-kubeflow", "--config", changed]) == 0

    after = _components(clean_zenml_client, "kubeflow")
    assert {kind: component.id for kind, component in after.items()} == before
    assert after[Component.ORCHESTRATOR].configuration["image"].endswith(":cuda-0.2.0")
    assert "endpoint_url" not in after[Component.ARTIFACT_STORE].configuration["client_kwargs"]


def test_a_missing_secret_without_keys_in_the_environment_is_one_line(
    clean_zenml_client, project_root, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)

    path = _stack_yaml(tmp_path, name="other", s3_secret="not-there")
    assert cli.main(["stack", "register-kubeflow", "--config", path]) == 2

    assert "s3_secret not-there: no such ZenML secret, and AWS_ACCESS_KEY_ID" in capsys.readouterr().err
    with pytest.raises(KeyError):
        clean_zenml_client.get_stack("other", allow_name_prefix_match=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kubeflow_host": "https://x"}, "kubeflow_host: Extra inputs are not permitted"),
        ({"kubernetes_context": "kind-kubeflow"}, "exactly one of kubeflow_hostname and kubernetes_context"),
        ({"artifact_path": "/data/zenml"}, "artifact_path: '/data/zenml' is not an s3://bucket[/prefix] path"),
    ],
    ids=["unknown-key", "two-endpoints", "local-path"],
)
def test_stack_yaml_mistakes_are_one_line(project_root, tmp_path, capsys, changes, message):
    assert cli.main(["stack", "register-kubeflow", "--config", _stack_yaml(tmp_path, **changes)]) == 2
    assert message in capsys.readouterr().err


def test_register_local_names_the_embedded_default(clean_zenml_client, project_root, capsys):
    assert cli.main(["stack", "register-local", "--activate"]) == 0

    assert "Stack local registered" in capsys.readouterr().out
    default = _components(clean_zenml_client, "default")
    local = _components(clean_zenml_client, "local")
    assert {kind: c.id for kind, c in local.items()} == {kind: c.id for kind, c in default.items()}
    assert clean_zenml_client.active_stack_model.name == "local"
