"""``genomenlp-pipeline submit``: what kfp.Client sends to Kubeflow, recorded by a loopback server.

A Kubeflow stack needs a remote ZenML server (its pods report to it), so this module starts
ZenML's own server on 127.0.0.1 with a throw-away database, beside an in-process S3 server for
the artifact store and a stub of the Kubeflow Pipelines API that records every request.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from kfp_server_api.exceptions import ApiException

from pipelines import cli
from pipelines.stacks import KubeflowStackConfig, register_kubeflow_stack

pytest.importorskip("uvicorn", reason="needs ZenML's server extra: pip install 'zenml[server]'")
# kfp.Client warns that it needs Kubeflow Pipelines 2.x on every construction.
pytestmark = pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "pipelines" / "configs"
BUCKET = "genomenlp"
# The ZenML server: exits with the test process, and after 10 minutes whatever happens.
SERVER = """
import os, sys, threading, time
parent, deadline = os.getppid(), time.monotonic() + 600
def watch():
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(1)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
import uvicorn
uvicorn.run("zenml.zen_server.zen_server_api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Multi-user Kubeflow serves the Pipelines API under this path of its hostname.
PREFIX = "/pipeline"


class KubeflowStub:
    """The Kubeflow Pipelines v2beta1 API as far as kfp.Client uses it to submit; records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict | None]] = []
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
                stub.requests.append(("GET", self.path.removeprefix(PREFIX), None))
                if self.path.startswith(f"{PREFIX}/apis/v2beta1/healthz"):
                    return self._reply({"multi_user": False})
                # No experiment exists yet: kfp then creates one.
                self._reply({})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                path = self.path.split("?")[0].removeprefix(PREFIX)
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
def zenml_server(tmp_path_factory) -> str:
    """ZenML's server on a loopback port with its own throw-away database; yields its URL."""
    home = tmp_path_factory.mktemp("zenml-server")
    port = _free_port()
    environment = {
        **os.environ,
        "ZENML_SERVER": "true",
        "ZENML_CONFIG_PATH": str(home / "config"),
        "ZENML_STORE_URL": f"sqlite:///{home}/zenml.db",
        "ZENML_SERVER_AUTH_SCHEME": "NO_AUTH",
        "ZENML_SERVER_AUTO_ACTIVATE": "true",
        "ZENML_SERVER_DEPLOYMENT_TYPE": "other",
        "ZENML_ANALYTICS_OPT_IN": "false",
    }
    # A script file, not `python -c`: the server derives a source root from its main module's file.
    script = home / "serve.py"
    script.write_text(SERVER)
    log = open(home / "server.log", "w")  # closed after the server stops
    server = subprocess.Popen(
        [sys.executable, str(script), str(port)], env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (home / "server.log").read_text()[-3000:]
                    raise RuntimeError(f"ZenML server did not start:\n{log_text}") from None
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def server_client(zenml_server, tmp_path_factory):
    """A ZenML client of the loopback server (fresh singletons, restored afterwards)."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration
    from zenml.utils import source_utils

    home = tmp_path_factory.mktemp("zenml-client")
    environment = {
        "ZENML_CONFIG_PATH": str(home / "config"),
        "ZENML_STORE_URL": zenml_server,
        "ZENML_STORE_TYPE": "rest",
        "ZENML_ANALYTICS_OPT_IN": "false",
    }
    saved = {name: os.environ.get(name) for name in [*environment, "ZENML_REPOSITORY_PATH"]}
    os.environ.update(environment)
    os.environ.pop("ZENML_REPOSITORY_PATH", None)
    original_config, original_client = GlobalConfiguration.get_instance(), Client.get_instance()
    GlobalConfiguration._reset_instance()
    Client._reset_instance()
    source_utils.set_custom_source_root(str(REPO_ROOT))
    cwd = os.getcwd()
    os.chdir(home)
    try:
        yield Client()
    finally:
        os.chdir(cwd)
        source_utils.set_custom_source_root(None)
        GlobalConfiguration._reset_instance(original_config)
        Client._reset_instance(original_client)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
    )
    register_kubeflow_stack(config, server_client)
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
    assert steps == {"train_tokeniser", "create_dataset"}
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
    assert len(executors) == len(yaml.safe_load(nightly.read_text())["steps"])
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
