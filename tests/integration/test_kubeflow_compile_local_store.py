"""``genomenlp-pipeline compile`` on ZenML's embedded SQLite store: refused, since no pod can reach it."""

from __future__ import annotations

import pytest

from genomenlp.platform import cli
from genomenlp.platform.stacks import KubeflowStackConfig, register_kubeflow_stack


@pytest.fixture(scope="module")
def local_kubeflow_stack(clean_zenml_client, tmp_path_factory):
    register_kubeflow_stack(KubeflowStackConfig(
        kubeflow_hostname="http://127.0.0.1:9/pipeline", image="registry.example.com/genomenlp/genomenlp:cuda-test",
        registry="registry.example.com/genomenlp", artifact_path="s3://genomenlp/zenml",
    ), clean_zenml_client)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "PROJECT_ROOT", tmp_path_factory.mktemp("project"))
        yield


def test_compiling_against_a_local_store_is_refused_with_what_to_do(local_kubeflow_stack, tmp_path, capsys):
    assert cli.main(["compile", "dataset", "--stack", "kubeflow", "--output", str(tmp_path)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in errors[0]
    assert "which pods on a cluster cannot reach" in errors[0] and "zenml login" in errors[0]
    assert not list(tmp_path.iterdir())
