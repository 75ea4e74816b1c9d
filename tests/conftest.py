"""Shared fixtures: tiny synthetic FASTA data and a throw-away ZenML store."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# A shell starts background jobs (`make test &`, nohup) with SIGINT ignored, and commands started from
# here would inherit that and never see the Ctrl-C the interruption tests send. An ignored SIGINT survives
# exec, a handler does not: with one here, every command starts with Python's own KeyboardInterrupt.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Planted in every sequence of the first class, so a classifier trained on the pair has signal.
MOTIF = "TATAAT"


def write_random_fasta(
    path: Path, count: int, length: int, seed: int, prefix: str, motif: str | None = None
) -> Path:
    """Write ``count`` seeded random DNA records of ``length`` bases, with ``motif`` if given."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for index in range(count):
            sequence = "".join(rng.choice("ACGT") for _ in range(length))
            if motif:
                start = rng.randrange(length - len(motif) + 1)
                sequence = sequence[:start] + motif + sequence[start + len(motif) :]
            handle.write(f">{prefix}_{index} synthetic\n{sequence[:30]}\n{sequence[30:]}\n")
    return path


@pytest.fixture
def tiny_fasta_pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two classes × 40 seeded random 60-bp sequences; the first class carries a planted motif.

    Returns:
        ``(path_a, path_b)``: ``class_a.fasta`` and ``class_b.fasta`` (labels class_a, class_b).
    """
    folder = tmp_path / "fasta"
    folder.mkdir()
    return (
        write_random_fasta(folder / "class_a.fasta", 40, 60, seed=1, prefix="a", motif=MOTIF),
        write_random_fasta(folder / "class_b.fasta", 40, 60, seed=2, prefix="b"),
    )


@pytest.fixture(scope="module")
def zenml_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of a throw-away ZenML global configuration, set in ``os.environ`` for the module.

    The working directory moves to the same temporary folder for the module, so ZenML finds no
    ``.zen`` there and never writes this store's stack into the checkout's ``.zen``.

    Yields:
        The variables set, for subprocesses that should use the same store.
    """
    home = tmp_path_factory.mktemp("zenml")
    env = {
        "ZENML_CONFIG_PATH": str(home / "config"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_COLORS_DISABLED": "true",
    }
    try:
        with zenml_environment(home, env):
            yield env
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def zenml_environment(home: Path, variables: dict[str, str]) -> Iterator[None]:
    """Set ``variables`` and work in ``home`` for the block; everything is put back afterwards.

    A ``.zen`` found from the working directory (or ``ZENML_REPOSITORY_PATH``) would record this
    store's stack in the checkout's config, so neither is left pointing at the checkout.
    """
    saved = {name: os.environ.get(name) for name in [*variables, "ZENML_REPOSITORY_PATH"]}
    os.environ.update(variables)
    os.environ.pop("ZENML_REPOSITORY_PATH", None)
    cwd = os.getcwd()
    os.chdir(home)
    try:
        yield
    finally:
        os.chdir(cwd)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def clean_zenml_client(zenml_env: dict[str, str]):
    """A ZenML client on a fresh local SQLite store and default stack, restored afterwards.

    Follows ZenML's project templates: reset the GlobalConfiguration and Client singletons, point
    them at a temporary folder, and put the originals back when the module's tests are done.
    """
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration
    from zenml.utils import source_utils

    original_config = GlobalConfiguration.get_instance()
    original_client = Client.get_instance()
    GlobalConfiguration._reset_instance()
    Client._reset_instance()
    # The repository root is the source root, as `zenml init` there would make it.
    source_utils.set_custom_source_root(str(REPO_ROOT))
    GlobalConfiguration().analytics_opt_in = False
    client = Client()
    _ = client.zen_store  # creates the database and the default stack now, not inside a test
    try:
        yield client
    finally:
        source_utils.set_custom_source_root(None)
        GlobalConfiguration._reset_instance(original_config)
        Client._reset_instance(original_client)


@pytest.fixture(scope="module")
def tiny_kmer_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-mer dataset folder built from a tiny FASTA pair like :func:`tiny_fasta_pair`'s.

    Returns:
        The folder: train/test/valid parquet, ``tokenizer.json`` and ``manifest.json``.
    """
    from genomenlp.components.configs import DatasetConfig, KmerConfig
    from genomenlp.components.stages import create_dataset, make_kmer_tokenizer

    folder = tmp_path_factory.mktemp("tiny_kmer")
    paths = [
        str(write_random_fasta(folder / "class_a.fasta", 40, 60, seed=1, prefix="a", motif=MOTIF)),
        str(write_random_fasta(folder / "class_b.fasta", 40, 60, seed=2, prefix="b")),
    ]
    config = DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1)
    out = folder / "dataset"
    create_dataset(
        paths, make_kmer_tokenizer(paths, KmerConfig(k=3)), config, str(out), False, False
    )
    return out


class RestartableS3:
    """moto's S3 server in this process on 127.0.0.1; its buckets survive :meth:`restart`.

    moto keeps its state in the process, not in the server thread, so stopping the HTTP server
    and starting another on the same port is what a restart of a persistent S3 service looks like
    from a client: connections refused for a while, then the same objects.
    """

    def __init__(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self) -> None:
        """Serve on the fixed port."""
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        """Close the listening socket; requests are refused until :meth:`start`."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def restart(self, downtime: float) -> None:
        """Stop, stay down for ``downtime`` seconds, start again on the same port."""
        import time

        self.stop()
        time.sleep(downtime)
        self.start()

    def client(self):
        """A boto3 S3 client for checking what the server holds."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")


@pytest.fixture(scope="module")
def restartable_s3() -> Iterator[RestartableS3]:
    """An in-process S3 server (moto) for the module, with test keys in ``os.environ``.

    The endpoint is not put in the environment: stack components carry it in their configuration.
    """
    import logging

    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    # werkzeug would log every request of the server thread.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)
    server = RestartableS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        werkzeug.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for a module: tiny models run fastest so, and disturb parallel work least."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


# The ZenML server: exits with the test process, and after 15 minutes whatever happens.
ZENML_SERVER_SCRIPT = """
import os, sys, threading, time
parent, deadline = os.getppid(), time.monotonic() + 900
def watch():
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(1)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
import uvicorn
uvicorn.run("zenml.zen_server.zen_server_api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
# The server's default user, as a person logs in; step pods use a service account's API key instead.
ZENML_SERVER_USER = ("default", "harness-password")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def zenml_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ZenML's real server on a loopback port, with password/API-key auth and a throw-away database.

    Yields:
        Its URL.
    """
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("uvicorn", reason="needs ZenML's server extra: pip install 'zenml[server]'")
    home = tmp_path_factory.mktemp("zenml-server")
    port = free_port()
    environment = {
        **os.environ,
        "ZENML_SERVER": "true",
        "ZENML_CONFIG_PATH": str(home / "config"),
        "ZENML_STORE_URL": f"sqlite:///{home}/zenml.db",
        "ZENML_SERVER_AUTO_ACTIVATE": "true",
        "ZENML_DEFAULT_USER_NAME": ZENML_SERVER_USER[0],
        "ZENML_DEFAULT_USER_PASSWORD": ZENML_SERVER_USER[1],
        "ZENML_SERVER_DEPLOYMENT_TYPE": "other",
        "ZENML_ANALYTICS_OPT_IN": "false",
    }
    # A script file, not `python -c`: the server derives a source root from its main module's file.
    script = home / "serve.py"
    script.write_text(ZENML_SERVER_SCRIPT)
    log = open(home / "server.log", "w")  # closed after the server stops
    # Started in its own folder: a `.zen` in the checkout (`make run` leaves one) holds the laptop store's
    # active project, which the server would look up and fail every request with "No active user found".
    environment.pop("ZENML_REPOSITORY_PATH", None)
    server = subprocess.Popen(
        [sys.executable, str(script), str(port)], cwd=home, env=environment, stdout=log, stderr=subprocess.STDOUT
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
def server_client(zenml_server: str, tmp_path_factory: pytest.TempPathFactory):
    """A ZenML client logged in to the loopback server as its default user (singletons restored after)."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration
    from zenml.utils import source_utils

    home = tmp_path_factory.mktemp("zenml-client")
    environment = {
        "ZENML_CONFIG_PATH": str(home / "config"),
        "ZENML_STORE_URL": zenml_server,
        "ZENML_STORE_TYPE": "rest",
        "ZENML_STORE_USERNAME": ZENML_SERVER_USER[0],
        "ZENML_STORE_PASSWORD": ZENML_SERVER_USER[1],
        "ZENML_ANALYTICS_OPT_IN": "false",
    }
    with zenml_environment(home, environment):
        original_config, original_client = GlobalConfiguration.get_instance(), Client.get_instance()
        GlobalConfiguration._reset_instance()
        Client._reset_instance()
        source_utils.set_custom_source_root(str(REPO_ROOT))
        try:
            yield Client()
        finally:
            source_utils.set_custom_source_root(None)
            GlobalConfiguration._reset_instance(original_config)
            Client._reset_instance(original_client)
