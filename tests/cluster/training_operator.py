"""The Kubernetes API's PyTorchJob endpoint on 127.0.0.1, with a controller that runs the replicas as pods.

What it reproduces of the Training Operator (v1, ``pkg/controller.v1/pytorch/envvar.go``): each
replica (``Master`` 0, then ``Worker`` 0…n-1) is a pod of the job's own template, running its
``pytorch`` container's command with the container's ``env`` and ``envFrom`` Secrets plus what the
operator adds: ``PYTHONUNBUFFERED=0``, ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE`` (replicas ×
``nprocPerNode``), ``RANK`` (the Master 0, Worker i is i + 1), ``PET_NPROC_PER_NODE``,
``PET_NODE_RANK`` (= ``RANK``) and ``PET_NNODES`` (replicas). Kubernetes's ``$(NAME)`` expansion of
a container's command from its environment is applied. All replicas start together and the job
is ``Succeeded`` when every one exits 0, else ``Failed``.

What differs: ``MASTER_ADDR`` is ``127.0.0.1`` (the pods share this machine's network; the operator
gives the Master's Service name) and ``MASTER_PORT`` a free port here, not the container's port
(23456 may be taken on a shared machine). Not reproduced: scheduling and GPUs, the Master
Service, restarts (``restartPolicy`` Never is what the project submits), elastic policies and
``cleanPodPolicy``.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import PodRunner

_JOBS = re.compile(r"^/apis/kubeflow\.org/v1/namespaces/(?P<ns>[^/]+)/pytorchjobs(?:/(?P<name>[^/?]+))?")
_REFERENCE = re.compile(r"\$\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def expand(text: str, environment: dict[str, str]) -> str:
    """Kubernetes's ``$(NAME)`` expansion: defined names are replaced, others left as written."""
    return _REFERENCE.sub(lambda match: environment.get(match["name"], match.group(0)), text)


class TrainingOperatorStandIn:
    """Serves ``pytorchjobs`` create/get/delete; a created job's replicas run at once as pods."""

    def __init__(self, pods: PodRunner) -> None:
        self.pods = pods
        self.jobs: dict[str, dict] = {}
        self.replica_runs: list[dict] = []
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
                name = body["metadata"]["name"]
                stand_in.jobs[name] = {**body, "status": {"conditions": [
                    {"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]}}
                threading.Thread(target=stand_in._control, args=(name,), daemon=True).start()
                self._reply(201, body)

            def do_GET(self) -> None:
                name = _JOBS.match(self.path)["name"]
                if name not in stand_in.jobs:
                    return self._reply(404, {"kind": "Status", "reason": "NotFound"})
                self._reply(200, copy.deepcopy(stand_in.jobs[name]))

            def do_DELETE(self) -> None:
                stand_in.deleted.append(_JOBS.match(self.path)["name"])
                self._reply(200, {"kind": "Status", "status": "Success"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _replicas(self, job: dict) -> list[dict]:
        """Each replica's pod name, rank and container, with the operator's variables in its environment."""
        specs = job["spec"]["pytorchReplicaSpecs"]
        total = sum(spec["replicas"] for spec in specs.values())
        nproc = job["spec"].get("nprocPerNode", "1")
        per_node = int(nproc) if str(nproc).isdigit() else 1
        port = str(_free_port())
        replicas = []
        for kind in ("Master", "Worker"):
            for index in range(specs.get(kind, {}).get("replicas", 0)):
                rank = index + 1 if kind == "Worker" else index
                (container,) = [c for c in specs[kind]["template"]["spec"]["containers"] if c["name"] == "pytorch"]
                environment = {item["name"]: item["value"] for item in container.get("env", [])}
                for source in container.get("envFrom", []):
                    environment.update(self.pods.secret_environment(source["secretRef"]["name"]))
                environment.update(PYTHONUNBUFFERED="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                                   WORLD_SIZE=str(total * per_node), RANK=str(rank), PET_NPROC_PER_NODE=str(nproc),
                                   PET_NODE_RANK=str(rank), PET_NNODES=str(total))
                replicas.append({"name": f"{job['metadata']['name']}-{kind.lower()}-{index}", "rank": rank,
                                 "command": [expand(part, environment) for part in container["command"]],
                                 "env": environment})
        return replicas

    def _control(self, name: str) -> None:
        job = self.jobs[name]
        replicas = self._replicas(job)

        def run(replica: dict) -> None:
            replica["result"] = self.pods.run(replica["name"], replica["command"], replica["env"])

        threads = [threading.Thread(target=run, args=(replica,)) for replica in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.replica_runs.extend(replicas)
        failed = [replica["name"] for replica in replicas if replica["result"].returncode != 0]
        condition = ({"type": "Failed", "status": "True", "reason": "PyTorchJobFailed",
                      "message": f"replicas {failed} failed"} if failed
                     else {"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded"})
        job["status"] = {"conditions": [condition]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
