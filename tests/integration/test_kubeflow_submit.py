"""``genomenlp-pipeline submit``: what kfp.Client sends to Kubeflow, recorded by a loopback server.

A Kubeflow stack needs a remote ZenML server (its pods report to it), so this module starts
ZenML's own server on 127.0.0.1 with a throw-away database, beside an in-process S3 server for
the artifact store and a stub of the Kubeflow Pipelines API that records every request.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kfp_server_api.exceptions import ApiException

from genomenlp.platform import cli
from genomenlp.platform.config_overlay import load_run_config
from genomenlp.platform.stacks import KubeflowStackConfig, register_kubeflow_stack

# kfp.Client warns that it needs Kubeflow Pipelines 2.x on every construction.
pytestmark = pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "genomenlp" / "pipelines" / "configs"
BUCKET = "genomenlp"
# Multi-user Kubeflow serves the Pipelines API under this path of its hostname.
PREFIX = "/pipeline"


class KubeflowStub:
    """The Kubeflow Pipelines v2beta1 API as far as kfp.Client uses it to submit; records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict | None]] = []
        self.authorizations: list[str | None] = []
        self.fail_runs = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                stub.authorizations.append(self.headers.get("Authorization"))
                stub.requests.append(("GET", self.path.removeprefix(PREFIX), None))
                if self.path.startswith(f"{PREFIX}/apis/v2beta1/healthz"):
                    return self._reply({"multi_user": False})
                # No experiment exists yet: kfp then creates one.
                self._reply({})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                path = self.path.split("?")[0].removeprefix(PREFIX)
                stub.authorizations.append(self.headers.get("Authorization"))
                stub.requests.append(("POST", path, body))
                if path == "/apis/v2beta1/experiments":
                    return self._reply({"experiment_id": "experiment-1", **body})
                if path == "/apis/v2beta1/runs":
                    if stub.fail_runs:
                        return self._reply({"error": "quota exceeded", "code": 8}, status=500)
                    return self._reply({"run_id": "run-1", "state": "PENDING", **body})
                if path == "/apis/v2beta1/recurringruns":
                    return self._reply({"recurring_run_id": "recurring-1", **body})
                self._reply({"error": f"unexpected {path}"}, status=404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def posted(self, path: str) -> list[dict]:
        return [body for method, where, body in self.requests if method == "POST" and where.split("?")[0] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def kubeflow(server_client, restartable_s3, tmp_path_factory):
    """The kubeflow stack on the loopback servers, and the Kubeflow stub that records requests."""
    restartable_s3.client().create_bucket(Bucket=BUCKET)
    stub = KubeflowStub()
    config = KubeflowStackConfig(
        kubeflow_hostname=stub.url,
        image="registry.example.com/genomenlp/genomenlp:cuda-test",
        registry="registry.example.com/genomenlp",
        artifact_path=f"s3://{BUCKET}/zenml",
        s3_endpoint_url=restartable_s3.endpoint,
        secret_env={"s3-credentials": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
                    "zenml-api-key": ["ZENML_STORE_API_KEY"]},
    )
    register_kubeflow_stack(config, server_client)
    register_kubeflow_stack(config.model_copy(update={"name": "protected", "kfp_token_env": "KFP_TEST_TOKEN"}),
                            server_client)
    # A port nothing listens on: a Kubeflow endpoint that is down.
    register_kubeflow_stack(config.model_copy(update={"name": "down", "kubeflow_hostname": "http://127.0.0.1:9"}),
                            server_client)
    with pytest.MonkeyPatch.context() as patch:
        # The command's `zenml init` goes here, not into the checkout.
        patch.setattr(cli, "PROJECT_ROOT", tmp_path_factory.mktemp("project"))
        yield stub
    stub.close()


def test_submit_creates_a_kubeflow_run_of_the_compiled_pipeline(kubeflow, server_client, capsys):
    kubeflow.requests.clear()

    assert cli.main(["submit", "dataset", "--stack", "kubeflow"]) == 0

    assert kubeflow.requests[0][:2] == ("GET", "/apis/v2beta1/healthz")
    (run,) = kubeflow.posted("/apis/v2beta1/runs")
    assert run["service_account"] == "genomenlp-runner"
    assert run["experiment_id"] == "experiment-1"
    # The pipeline goes inline with the run, platform config (Secrets, placement) beside it.
    spec = run["pipeline_spec"]["pipeline_spec"]
    platform = run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all(executor["secretAsEnv"][0]["secretName"] == "s3-credentials" for executor in platform.values())
    executors = spec["deploymentSpec"]["executors"]
    steps = {executor["container"]["args"][executor["container"]["args"].index("--step_name") + 1]
             for executor in executors.values()}
    assert steps == {"fingerprint_inputs", "train_tokeniser", "create_dataset", "export_outputs"}
    assert {executor["container"]["image"] for executor in executors.values()} == {
        "registry.example.com/genomenlp/genomenlp:cuda-test"
    }
    # The run ZenML records is the one submitted, waiting for Kubeflow to start its pods.
    (zenml_run,) = server_client.list_pipeline_runs(sort_by="desc:created", size=1)
    assert f"submitted as ZenML run {zenml_run.name}" in capsys.readouterr().out
    assert str(zenml_run.snapshot.id) in json.dumps(spec)
    assert zenml_run.status.value in {"initializing", "provisioning"}


def test_a_scheduled_config_creates_a_recurring_run_with_its_cron(kubeflow, server_client):
    kubeflow.requests.clear()
    nightly = CONFIGS / "training_pipeline_kubeflow_nightly.yaml"

    assert cli.main(["submit", "training", "--config", str(nightly), "--stack", "kubeflow"]) == 0

    (experiment,) = kubeflow.posted("/apis/v2beta1/experiments")
    assert experiment["display_name"] == "training_pipeline"
    (recurring,) = kubeflow.posted("/apis/v2beta1/recurringruns")
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *"
    assert recurring["no_catchup"] is True
    assert recurring["mode"] == "ENABLE"
    assert recurring["service_account"] == "genomenlp-runner"
    executors = recurring["pipeline_spec"]["pipeline_spec"]["deploymentSpec"]["executors"]
    assert len(executors) == len(load_run_config(nightly)["steps"])
    assert not kubeflow.posted("/apis/v2beta1/runs")
    # ZenML keeps the schedule as written; only Kubeflow's copy has the seconds field.
    (schedule,) = server_client.list_schedules(name="training-nightly")
    assert schedule.cron_expression == "0 2 * * *"


def test_a_rejected_run_fails_the_submission_and_the_zenml_run(kubeflow, server_client):
    kubeflow.fail_runs = True
    try:
        with pytest.raises(ApiException):
            cli.main(["submit", "dataset", "--stack", "kubeflow"])
    finally:
        kubeflow.fail_runs = False

    (zenml_run,) = server_client.list_pipeline_runs(sort_by="desc:created", size=1)
    assert zenml_run.status.value == "failed"


_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def _secret_values(server_client) -> list[str]:
    """Every credential the submitting client holds: its API token, and the S3 keys."""
    from zenml.login.credentials_store import get_credentials_store

    url = server_client.zen_store.url
    token = get_credentials_store().get_token(url, allow_expired=True)
    return [token.access_token, os.environ["AWS_SECRET_ACCESS_KEY"]] if token else [os.environ["AWS_SECRET_ACCESS_KEY"]]


def _pipeline_files(server_client) -> list[Path]:
    """The YAML files submit wrote locally: the orchestrator's pipeline directory (under the ZenML config)."""
    from zenml.config.global_config import GlobalConfiguration

    return list(Path(GlobalConfiguration().local_stores_path).rglob("*.yaml"))


@pytest.mark.parametrize("config", ["dataset_pipeline_kubeflow.yaml", "training_pipeline_kubeflow_nightly.yaml"])
def test_no_token_or_secret_is_uploaded_or_written(kubeflow, server_client, config):
    kubeflow.requests.clear()
    name = "training" if "training" in config else "dataset"
    for schedule in server_client.list_schedules(name="training-nightly"):
        server_client.delete_schedule(schedule.id)

    assert cli.main(["submit", name, "--config", str(CONFIGS / config), "--stack", "kubeflow"]) == 0

    uploaded = json.dumps([body for _, _, body in kubeflow.requests if body])
    written = "".join(path.read_text() for path in _pipeline_files(server_client))
    for text in (uploaded, written):
        assert "ZENML_STORE_API_TOKEN" not in text
        assert not _JWT.search(text)
        for value in _secret_values(server_client):
            assert value not in text
    assert "ZENML_STORE_API_KEY" in uploaded  # as a Secret reference, never a value


def test_a_protected_endpoint_gets_the_bearer_token(kubeflow, monkeypatch):
    kubeflow.requests.clear()
    kubeflow.authorizations.clear()
    monkeypatch.setenv("KFP_TEST_TOKEN", "kfp-token-123")

    assert cli.main(["submit", "dataset", "--stack", "protected"]) == 0

    assert kubeflow.authorizations and set(kubeflow.authorizations) == {"Bearer kfp-token-123"}


def test_a_missing_token_is_one_line_before_any_run(kubeflow, server_client, monkeypatch, capsys):
    monkeypatch.delenv("KFP_TEST_TOKEN", raising=False)
    before = server_client.list_pipeline_runs(size=1).total

    assert cli.main(["submit", "dataset", "--stack", "protected"]) == 2

    assert "$KFP_TEST_TOKEN is empty" in capsys.readouterr().err
    assert server_client.list_pipeline_runs(size=1).total == before


def test_an_unreachable_endpoint_fails_in_seconds_with_one_line(kubeflow, server_client, capsys):
    before = server_client.list_pipeline_runs(size=1).total
    started = time.monotonic()

    assert cli.main(["submit", "dataset", "--stack", "down"]) == 2

    error = capsys.readouterr().err.strip()
    assert time.monotonic() - started < 30
    assert "Kubeflow Pipelines at http://127.0.0.1:9 did not answer" in error
    assert "Traceback" not in error and len(error.splitlines()) == 1
    assert server_client.list_pipeline_runs(size=1).total == before


def test_a_schedule_submitted_twice_is_one_line(kubeflow, server_client, capsys):
    nightly = str(CONFIGS / "training_pipeline_kubeflow_nightly.yaml")
    if not server_client.list_schedules(name="training-nightly").total:
        assert cli.main(["submit", "training", "--config", nightly, "--stack", "kubeflow"]) == 0
    capsys.readouterr()

    assert cli.main(["submit", "training", "--config", nightly, "--stack", "kubeflow"]) == 2

    error = capsys.readouterr().err.strip()
    assert "zenml pipeline schedule delete" in error and len(error.splitlines()) == 1
