"""Submitting and polling an Experiment against a loopback stand-in for the Kubernetes API server."""

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genomenlp.components.errors import InputError
from genomenlp.components.katib.cli_support import katib_sweep
from genomenlp.components.katib.config import KatibConfig
from genomenlp.components.katib.experiment import build_experiment, experiment_to_dict
from genomenlp.components.katib.launcher import (
    ExperimentFailed,
    ExperimentTimeout,
    SubmissionError,
    run_experiment,
)
from genomenlp.components.search.spec import SweepSpec
from genomenlp.components.training.config import model_config_from_mapping, training_config_from_mapping

SPEC = SweepSpec(method="bayes", name="promoters", metric={"name": "eval/f1", "goal": "maximize"}, parameters={
    "learning_rate": {"min": 1e-4, "max": 1e-1, "distribution": "log_uniform_values"},
    "batch_size": {"values": [5, 10, 15]},
    "num_layers": {"min": 1, "max": 4},
    "epochs": {"value": 3},
})
CONFIG = KatibConfig(timeout_s=5, poll_interval_s=0.01)
PATH = re.compile(r"^/apis/kubeflow\.org/v1beta1/namespaces/(?P<ns>[^/]+)/experiments(?:/(?P<name>[^/?]+))?")
RUNNING = {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}],
           "trials": 2, "trialsRunning": 2}
SUCCEEDED = {
    "conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "False"},
                   {"type": "Succeeded", "status": "True", "reason": "ExperimentMaxTrialsReached"}],
    "currentOptimalTrial": {
        "bestTrialName": "promoters-x-7fj2k",
        "parameterAssignments": [{"name": "learning_rate", "value": "0.0123"},
                                 {"name": "per_device_train_batch_size", "value": "10"},
                                 {"name": "num_layers", "value": "3"}],
        "observation": {"metrics": [{"name": "eval_f1", "latest": "0.80", "max": "0.85", "min": "0.61"},
                                    {"name": "eval_loss", "latest": "0.4", "max": "0.7", "min": "0.4"}]},
    },
    "trials": 8, "trialsSucceeded": 7, "trialsFailed": 1,
}
FAILED = {"conditions": [{"type": "Created", "status": "True"},
                         {"type": "Failed", "status": "True", "reason": "ExperimentMaxFailedTrialsReached",
                          "message": "Experiment has reached the maximum number of failed trials"}],
          "trials": 4, "trialsFailed": 4}
NO_BEST = {"conditions": [{"type": "Succeeded", "status": "True", "reason": "ExperimentMaxTrialsReached"}],
           "trials": 8, "trialMetricsUnavailable": 8}


class StubApiServer:
    """Experiments API on 127.0.0.1: records requests; GETs walk through ``statuses`` (the last repeats)."""

    def __init__(self, statuses, create_status=201):
        self.statuses, self.create_status = statuses, create_status
        self.posted, self.gets, self.deleted = [], 0, []
        self.stored = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.posted.append((PATH.match(self.path)["ns"], body))
                if stub.create_status != 201:
                    return self._reply(stub.create_status, {"kind": "Status", "reason": "AlreadyExists"})
                stub.stored[body["metadata"]["name"]] = body
                self._reply(201, body)

            def do_GET(self):
                name = PATH.match(self.path)["name"]
                if name not in stub.stored:
                    return self._reply(404, {"kind": "Status", "reason": "NotFound"})
                status = stub.statuses[min(stub.gets, len(stub.statuses) - 1)]
                stub.gets += 1
                self._reply(200, {**copy.deepcopy(stub.stored[name]), "status": status})

            def do_DELETE(self):
                stub.deleted.append(PATH.match(self.path)["name"])
                self._reply(200, {"kind": "Status", "status": "Success"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        # Stops itself even if a test hangs.
        self.watchdog = threading.Timer(60, self.server.shutdown)
        self.watchdog.daemon = True
        self.watchdog.start()
        return self

    def __exit__(self, *exc):
        self.watchdog.cancel()
        self.server.shutdown()
        self.server.server_close()


def test_success_returns_the_best_hyperparameters_and_deletes():
    with StubApiServer([RUNNING, RUNNING, SUCCEEDED]) as api:
        result = run_experiment(SPEC, CONFIG, host=api.url)
    namespace, body = api.posted[0]
    assert namespace == "genomenlp"
    # What reached the server is the builder's Experiment, under a unique name.
    assert re.fullmatch(r"promoters-[0-9a-f]{6}", body["metadata"]["name"])
    expected = experiment_to_dict(build_experiment(SPEC, CONFIG))
    expected["metadata"]["name"] = body["metadata"]["name"]
    assert body == expected
    assert api.gets == 3 and api.deleted == [result.name]
    assert result.best_trial == "promoters-x-7fj2k" and result.value == 0.85 and result.metric == "eval_f1"
    assert result.hyperparameters == {"num_train_epochs": 3, "learning_rate": 0.0123, "per_device_train_batch_size": 10,
                                      "num_layers": 3, "metric_for_best_model": "eval_f1", "greater_is_better": True}
    assert result.trials["trials_failed"] == 1
    # Ready for train -w: the same loaders train uses accept every key.
    assert training_config_from_mapping(result.hyperparameters, "best").per_device_train_batch_size == 10
    assert model_config_from_mapping(result.hyperparameters, "best").num_layers == 3


def test_failed_experiment_raises_and_still_deletes():
    with StubApiServer([RUNNING, FAILED]) as api, pytest.raises(ExperimentFailed, match="maximum number of failed"):
        run_experiment(SPEC, CONFIG, host=api.url)
    assert len(api.deleted) == 1


def test_success_without_a_reported_objective_is_a_failure():
    with (StubApiServer([NO_BEST]) as api,
          pytest.raises(ExperimentFailed, match="without a trial that reported eval_f1")):
        run_experiment(SPEC, CONFIG, host=api.url)


def test_timeout_raises_and_stops_the_search():
    config = CONFIG.override(timeout_s=0.3, poll_interval_s=0.05)
    with StubApiServer([RUNNING]) as api, pytest.raises(ExperimentTimeout, match="still running after 0.3 s"):
        run_experiment(SPEC, config, host=api.url)
    assert 2 <= api.gets <= 8 and len(api.deleted) == 1


def test_refused_submission_raises():
    with StubApiServer([RUNNING], create_status=409) as api, pytest.raises(SubmissionError, match="already exists"):
        run_experiment(SPEC, CONFIG, host=api.url, unique=False)
    assert api.gets == 0 and api.deleted == []


def test_keep_leaves_the_experiment():
    with StubApiServer([SUCCEEDED]) as api:
        run_experiment(SPEC, CONFIG, host=api.url, delete=False)
    assert api.deleted == []


def test_sweep_backend_katib_writes_hyperparams(tmp_path, capsys):
    common = dict(katib_config=None, train="s3://b/train.parquet", file_format="parquet", tokeniser="s3://b/t.json",
                  test="test", valid="valid", trials=8, output_dir=str(tmp_path), fixed={}, dry_run=False)
    config = tmp_path / "katib.yaml"
    config.write_text("poll_interval_s: 0.01\ntimeout_s: 5\n")
    common["katib_config"] = str(config)
    with StubApiServer([SUCCEEDED]) as api:
        assert katib_sweep(SPEC, host=api.url, **common) == 0
    saved = json.loads((tmp_path / "hyperparams.json").read_text())
    assert saved["learning_rate"] == 0.0123 and saved["num_train_epochs"] == 3
    assert "eval_f1=0.8500" in capsys.readouterr().out
    with StubApiServer([FAILED]) as api, pytest.raises(InputError, match="katib: Experiment genomenlp/promoters-"):
        katib_sweep(SPEC, host=api.url, **common)


def test_pipeline_sweep_step_runs_katib_on_the_stored_dataset(clean_zenml_client, tmp_path):
    from zenml import pipeline

    from genomenlp.components.names import Artifacts
    from genomenlp.components.training.config import ModelConfig, TrainConfig
    from genomenlp.steps.sweep_hyperparameters import sweep_hyperparameters

    stored = "s3://genomenlp/zenml/dataset_dir/1234"
    katib = CONFIG.model_copy(update={"train_path": f"{stored}/train.parquet"})
    model = ModelConfig(num_layers=2, hidden_size=64, num_heads=2, intermediate_size=128)
    with StubApiServer([RUNNING, SUCCEEDED]) as api:

        # The step records metadata, so it runs in a (one-step) pipeline, as it does in the training pipeline.
        @pipeline(enable_cache=False)
        def katib_sweep_only() -> None:
            sweep_hyperparameters(tmp_path / "dataset", SPEC, model, TrainConfig(num_train_epochs=5), 6,
                                  epochs=2, backend="katib", katib=katib, katib_host=api.url)

        outputs = katib_sweep_only().steps["sweep_hyperparameters"].outputs
    best = outputs[Artifacts.BEST_HYPERPARAMETERS][0].load()
    trials = outputs[Artifacts.SWEEP_TRIALS][0].load()
    folder = outputs[Artifacts.SWEEP_DIR][0].load()
    assert best["learning_rate"] == 0.0123 and best["num_layers"] == 3
    assert trials[0]["best_trial"] == "promoters-x-7fj2k"
    _, body = api.posted[0]
    assert body["spec"]["maxTrialCount"] == 6
    command = " ".join(
        body["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"])
    assert f"{stored}/train.parquet" in command and f"{stored}/tokenizer.json" in command
    assert "--hidden_size" in command and "--num_train_epochs" in command
    # The sweep folder holds the best settings and a report, not trials: they ran on the cluster.
    assert json.loads((folder / "hyperparams.json").read_text())["learning_rate"] == 0.0123
    assert not (folder / "trials").exists()
