"""Executes compiled cluster artifacts on this machine as Kubeflow Pipelines and Katib would.

What it reproduces:

* **A KFP v2 task**: each task of a compiled pipeline YAML, in the DAG's dependency order, runs its
  executor's ``command`` + ``args`` in a subprocess whose environment is exactly the image's ``ENV``
  (parsed from the ``Dockerfile``), the task's compiled ``env`` and the keys its platform spec's
  ``secretAsEnv`` maps from Kubernetes Secrets (filled from a test Secret map), plus ``PATH`` and
  ``HOME`` as a container has them. In a private mount namespace, a fresh copy of the image's
  ``WORKDIR`` contents is mounted at ``/app`` and ``/tmp`` is an empty tmpfs (keeping only the
  checkout and virtualenv that stand in for the image, when they live under ``/tmp``), so no pod
  sees another's files (this needs root and ``unshare``, as CI has).
  Runtime placeholders (``{{$.pipeline_job_name}}``, and ``{{$}}``, the executor input, with one
  artifact per declared output under KFP's default ``minio://`` pipeline root) are substituted as
  the driver does; any other placeholder fails the run rather than being guessed. After the task,
  what the launcher would upload and record is collected: each output's file at its local path
  (``/minio/…``) and its metadata from the executor output file (``/tmp/kfp_outputs``).
* **A Katib trial**: for each of a few parameter assignments, the Experiment's ``trialSpec`` has its
  ``${trialParameters.NAME}`` references replaced by the assignment (Katib's substitution of the
  trial template), and the primary container's command runs as a pod (its ``env``, its
  ``envFrom`` Secrets). Each stdout line is matched against the Experiment's ``metricsFormat``
  regexes (the StdOut collector); a trial's objective is the metric's strategy value (max/min),
  and the best trial becomes ``currentOptimalTrial`` of a Succeeded Experiment.

What it does not reproduce: scheduling, resources, node selectors and tolerations (checked in the
compiled YAML, not enforced); the KFP driver's caching and artifact passing (ZenML steps pass
artifacts through the ZenML server and the artifact store themselves); Katib's suggestion
services (the assignments are fixed, spread over each feasible space) and early stopping; the
metrics-collector sidecar's shell wrapper; in-cluster Kubernetes credentials (the sweep step is
pointed at this stand-in API server with its ``katib_host`` parameter).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# The Dockerfile's WORKDIR: the pods' working folder, where relative paths such as data/... resolve.
IMAGE_WORKDIR = "/app"
# KFP's default pipeline root is minio://mlpipeline/v2/artifacts; the launcher maps it to /minio/… in the
# pod and hands the executor output file under /tmp/kfp_outputs.
PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
LAUNCHER_ARTIFACTS = "/minio"
LAUNCHER_OUTPUTS = "/tmp/kfp_outputs"
_PLACEHOLDER = re.compile(r"\{\{\$\.[^}]*\}\}")
_EXPERIMENTS = re.compile(r"^/apis/kubeflow\.org/v1beta1/namespaces/(?P<ns>[^/]+)/experiments(?:/(?P<name>[^/?]+))?")


def image_environment(dockerfile: Path = REPO_ROOT / "Dockerfile") -> dict[str, str]:
    """The ``ENV`` variables the project image sets (``ENV A=1 \\`` continuation lines included)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    environment = {}
    for line in text.splitlines():
        if line.strip().startswith("ENV "):
            for item in shlex.split(line.strip()[4:]):
                key, _, value = item.partition("=")
                environment[key] = value
    return environment


class PodRunner:
    """Runs a container's command as a pod of the project image would, with the venv as the image."""

    def __init__(self, workdir_contents: Path, secrets: dict[str, dict[str, str]], timeout_s: float = 600) -> None:
        self.workdir_contents = workdir_contents
        self.secrets = secrets
        self.timeout_s = timeout_s
        self.root = Path(tempfile.mkdtemp(prefix="genomenlp-pods-", dir="/var/tmp"))
        self.runs: list[dict] = []
        # A PyTorchJob's replicas start together, each from its own thread.
        self._lock = threading.Lock()
        self._started = 0

    def pod_folder(self, name: str) -> Path:
        """The host folder of the next pod (its /app, home and the launcher's local artifact folders)."""
        with self._lock:
            self._started += 1
            return self.root / f"{self._started - 1:02d}-{re.sub(r'[^A-Za-z0-9_.-]', '-', name)}"

    def run(self, name: str, command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
        """Run ``command`` in a fresh pod folder with exactly the image's and the given environment."""
        pod = self.pod_folder(name)
        shutil.copytree(self.workdir_contents, pod / "app")
        for folder in ("home", "minio", "kfp_outputs"):
            (pod / folder).mkdir()
        env = {**image_environment(), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
               "HOME": str(pod / "home"), **environment}
        # Each container has its own filesystem: a private /tmp, the image's WORKDIR at /app (ZenML's
        # entrypoint changes into it whatever the pod's working folder was), and the KFP launcher's
        # local artifact folders (/minio/… for the default pipeline root, /tmp/kfp_outputs), kept on the
        # host so the harness can read what the launcher would upload.
        for mount_point in (IMAGE_WORKDIR, LAUNCHER_ARTIFACTS):
            Path(mount_point).mkdir(exist_ok=True)
        (pod / "host-tmp").mkdir()
        # The "image" is this checkout and its virtualenv: when they live under /tmp (a CI clone), they are
        # mounted back into the private /tmp from the host's, reached through a bind of it made first.
        keep = "".join(f' && mkdir -p "/tmp/{name}" && mount --bind "$0/host-tmp/{name}" "/tmp/{name}"'
                       for name in _under_tmp(REPO_ROOT, Path(sys.prefix)))
        script = (f'mount --bind "$0/app" {IMAGE_WORKDIR} && mount --bind "$0/minio" {LAUNCHER_ARTIFACTS} '
                  f'&& mount --bind /tmp "$0/host-tmp" && mount -t tmpfs tmpfs /tmp{keep} '
                  f'&& mkdir {LAUNCHER_OUTPUTS} && mount --bind "$0/kfp_outputs" {LAUNCHER_OUTPUTS} '
                  f'&& cd {IMAGE_WORKDIR} && exec "$@"')
        isolated = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(pod), *command]
        result = subprocess.run(isolated, cwd=pod, env=env, capture_output=True, text=True, timeout=self.timeout_s)
        with self._lock:
            self.runs.append({"name": name, "command": command, "env": env, "result": result, "folder": pod})
        return result

    def secret_environment(self, secret: str, keys: dict[str, str] | None = None) -> dict[str, str]:
        """Environment from a Kubernetes Secret: ``keys`` maps secret key → variable (None: every key)."""
        data = self.secrets[secret]
        return {variable: data[key] for key, variable in (keys or {k: k for k in data}).items()}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _under_tmp(*paths: Path) -> list[str]:
    """The top-level /tmp folders holding any of ``paths`` (resolved), which a private /tmp must keep."""
    names = set()
    for path in paths:
        parts = path.resolve().parts
        if len(parts) > 2 and parts[:2] == ("/", "tmp"):
            names.add(parts[2])
    return sorted(names)


def compiled_tasks(path: Path) -> list[dict]:
    """The tasks of a compiled KFP pipeline YAML in dependency order: name, command, env, secrets."""
    pipeline, platform = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    executors = pipeline["deploymentSpec"]["executors"]
    platform_executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    dag = pipeline["root"]["dag"]["tasks"]
    ordered, done = [], set()
    while len(ordered) < len(dag):
        ready = [name for name, task in dag.items()
                 if name not in done and set(task.get("dependentTasks", [])) <= done]
        assert ready, f"cycle among {set(dag) - done}"
        for name in sorted(ready):
            label = pipeline["components"][dag[name]["componentRef"]["name"]]["executorLabel"]
            container = executors[label]["container"]
            secrets = {entry["secretName"]: {item["secretKey"]: item["envVar"] for item in entry["keyToEnv"]}
                       for entry in platform_executors.get(label, {}).get("secretAsEnv", [])}
            outputs = pipeline["components"][dag[name]["componentRef"]["name"]].get("outputDefinitions", {})
            ordered.append({"name": dag[name]["taskInfo"]["name"], "image": container["image"],
                            "outputs": {output: spec["artifactType"]
                                        for output, spec in outputs.get("artifacts", {}).items()},
                            "command": [*container.get("command", []), *container.get("args", [])],
                            "env": {item["name"]: item["value"] for item in container.get("env", [])},
                            "secrets": secrets, "platform": platform_executors.get(label, {})})
            done.add(name)
    return ordered


def run_compiled_pipeline(path: Path, pods: PodRunner, job_name: str) -> list[dict]:
    """Run every task of a compiled pipeline as the KFP launcher would; stops at the first failure.

    Returns:
        The tasks, each with its ``result`` (a CompletedProcess).
    """
    tasks = compiled_tasks(path)
    for task in tasks:
        executor_input = _executor_input(task, job_name)

        def substitute(text: str, task: dict = task, executor_input: dict = executor_input) -> str:
            text = text.replace("{{$.pipeline_job_name}}", job_name)
            if text == "{{$}}":
                return json.dumps(executor_input)
            assert not _PLACEHOLDER.search(text), f"task {task['name']}: placeholder the harness cannot fill: {text}"
            return text

        environment = {key: substitute(value) for key, value in task["env"].items()}
        for secret, keys in task["secrets"].items():
            environment.update(pods.secret_environment(secret, keys))
        task["result"] = pods.run(task["name"], [substitute(part) for part in task["command"]], environment)
        if task["result"].returncode != 0:
            break
        task["kfp_outputs"] = _collected_outputs(task, executor_input, pods.runs[-1]["folder"])
    return tasks


def _executor_input(task: dict, job_name: str) -> dict:
    """What KFP's driver hands a task: one artifact per declared output under the pipeline root."""
    artifacts = {name: {"artifacts": [{"name": name, "type": kind, "metadata": {},
                                       "uri": f"{PIPELINE_ROOT}/{job_name}/{task['name']}/{name}"}]}
                 for name, kind in task["outputs"].items()}
    return {"inputs": {}, "outputs": {"artifacts": artifacts, "outputFile": f"{LAUNCHER_OUTPUTS}/output_metadata.json"}}


def _collected_outputs(task: dict, executor_input: dict, pod: Path) -> dict:
    """What the launcher uploads and records: each output's file and its metadata from the executor output."""
    if not task["outputs"]:
        return {}
    written = json.loads((pod / "kfp_outputs" / "output_metadata.json").read_text())["artifacts"]
    collected = {}
    for name, entry in executor_input["outputs"]["artifacts"].items():
        local = entry["artifacts"][0]["uri"].replace("minio://", "", 1)
        file = pod / "minio" / local
        collected[name] = {"schema": entry["artifacts"][0]["type"]["schemaTitle"],
                           "metadata": written[name]["artifacts"][0]["metadata"],
                           "text": file.read_text(encoding="utf-8") if file.is_file() else None}
    return collected


def _assignments(parameters: list[dict], count: int) -> list[dict[str, str]]:
    """``count`` assignments spread over each feasible space (list items in turn, or evenly over a range)."""
    assignments = []
    for index in range(count):
        assignment = {}
        for parameter in parameters:
            space = parameter["feasibleSpace"]
            if "list" in space:
                assignment[parameter["name"]] = space["list"][index % len(space["list"])]
            else:
                low, high = float(space["min"]), float(space["max"])
                value = low + (high - low) * (index + 1) / (count + 1)
                assignment[parameter["name"]] = str(round(value)) if parameter["parameterType"] == "int" \
                    else repr(value)
        assignments.append(assignment)
    return assignments


class KatibStandIn:
    """The Kubernetes API's Experiments endpoint on 127.0.0.1, with a controller that runs trials as pods."""

    def __init__(self, pods: PodRunner, trials: int = 2) -> None:
        self.pods, self.trials = pods, trials
        self.experiments: dict[str, dict] = {}
        self.trial_runs: list[dict] = []
        self.deleted: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.experiments[body["metadata"]["name"]] = {**body, "status": {"conditions": [
                    {"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]}}
                threading.Thread(target=stand_in._control, args=(body["metadata"]["name"],), daemon=True).start()
                self._reply(201, body)

            def do_GET(self) -> None:
                name = _EXPERIMENTS.match(self.path)["name"]
                if name not in stand_in.experiments:
                    return self._reply(404, {"kind": "Status", "reason": "NotFound"})
                self._reply(200, copy.deepcopy(stand_in.experiments[name]))

            def do_DELETE(self) -> None:
                stand_in.deleted.append(_EXPERIMENTS.match(self.path)["name"])
                self._reply(200, {"kind": "Status", "status": "Success"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _run_trial(self, experiment: dict, name: str, assignment: dict[str, str]) -> dict:
        spec = experiment["spec"]
        template = json.dumps(spec["trialTemplate"]["trialSpec"])
        for parameter in spec["trialTemplate"]["trialParameters"]:
            template = template.replace(f"${{trialParameters.{parameter['name']}}}",
                                        assignment[parameter["reference"]])
        job = json.loads(template)
        (container,) = [c for c in job["spec"]["template"]["spec"]["containers"]
                        if c["name"] == spec["trialTemplate"]["primaryContainerName"]]
        environment = {item["name"]: item["value"] for item in container.get("env", [])}
        for source in container.get("envFrom", []):
            environment.update(self.pods.secret_environment(source["secretRef"]["name"]))
        result = self.pods.run(name, container["command"], environment)
        formats = [re.compile(pattern) for pattern in spec["metricsCollectorSpec"]["source"]["filter"]["metricsFormat"]]
        values: dict[str, list[float]] = {}
        for line in result.stdout.splitlines():
            for pattern in formats:
                for match in pattern.finditer(line.strip()):
                    values.setdefault(match.group(1), []).append(float(match.group(2)))
        trial = {"name": name, "assignment": assignment, "job": job, "values": values, "result": result}
        self.trial_runs.append(trial)
        return trial

    def _control(self, name: str) -> None:
        experiment = self.experiments[name]
        spec = experiment["spec"]
        objective = spec["objective"]["objectiveMetricName"]
        strategy = {s["name"]: s["value"] for s in spec["objective"].get("metricStrategies", [])}
        count = min(self.trials, spec.get("maxTrialCount", self.trials))
        finished = [self._run_trial(experiment, f"{name}-{uuid.uuid4().hex[:8]}", assignment)
                    for assignment in _assignments(spec["parameters"], count)]
        reported = [trial for trial in finished if trial["result"].returncode == 0 and trial["values"].get(objective)]
        pick = max if strategy.get(objective, "max") == "max" else min
        status = {"trials": count, "trialsSucceeded": len(reported), "trialsFailed": count - len(reported)}
        if not reported:
            status["conditions"] = [{"type": "Failed", "status": "True", "reason": "ExperimentMaxFailedTrialsReached",
                                     "message": "no trial reported the objective"}]
        else:
            best = pick(reported, key=lambda trial: pick(trial["values"][objective]))
            status["conditions"] = [{"type": "Succeeded", "status": "True", "reason": "ExperimentMaxTrialsReached"}]
            status["currentOptimalTrial"] = {
                "bestTrialName": best["name"],
                "parameterAssignments": [{"name": k, "value": v} for k, v in best["assignment"].items()],
                "observation": {"metrics": [
                    {"name": metric, "latest": str(series[-1]), "max": str(max(series)), "min": str(min(series))}
                    for metric, series in best["values"].items()]},
            }
        experiment["status"] = status

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
