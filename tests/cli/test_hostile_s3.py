"""Object-storage guarantees against a real S3 server (moto) on loopback, with SIGKILL mid-upload.

The commands run as subprocesses; ``GENOMENLP_FAULT_KILL_AFTER_OBJECTS`` makes one kill itself
after a chosen number of objects, as a crash or an out-of-memory kill would.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genomenlp.components.errors import InputError
from genomenlp.components.storage import COMMIT_MARKER, FAULT_KILL_AFTER_OBJECTS

REPO = Path(__file__).resolve().parents[2]
BUCKET = "hostile"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_moto(extra_env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(extra_env or {})},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.2)


def write_random_fasta(path: Path, count: int, length: int, seed: int, prefix: str) -> Path:
    """Seeded random DNA records (two classes from two seeds are told apart only by chance)."""
    import random

    rng = random.Random(seed)
    path.write_text("".join(f">{prefix}_{i}\n{''.join(rng.choice('ACGT') for _ in range(length))}\n"
                            for i in range(count)))
    return path


KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server subprocess (it outlives the killed commands) and an s3fs client on it."""
    server, endpoint = _start_moto()
    saved = {key: os.environ.get(key) for key in [*KEYS, "AWS_ENDPOINT_URL"]}
    os.environ.update({**KEYS, "AWS_ENDPOINT_URL": endpoint})
    import s3fs

    try:
        filesystem = s3fs.S3FileSystem(skip_instance_cache=True)
        filesystem.mkdir(BUCKET)
        yield filesystem
    finally:
        server.terminate()
        server.wait(timeout=10)
        s3fs.S3FileSystem.clear_instance_cache()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two tiny class files and a 3-mer tokeniser, local."""
    from genomenlp.components.tokenisers import build_kmer_tokenizer

    folder = tmp_path_factory.mktemp("inputs")
    a = write_random_fasta(folder / "a.fasta", 40, 60, seed=1, prefix="a")
    b = write_random_fasta(folder / "b.fasta", 40, 60, seed=2, prefix="b")
    tokens = folder / "kmers.json"
    tokens.write_text(build_kmer_tokenizer(3).to_json())
    return [str(a), str(b), str(tokens)]


def _create(inputs, out, tmpdir: Path, *extra, kill_after: int | None = None, env: dict | None = None):
    """Run create_dataset_bio in a subprocess with its own TMPDIR (to see what staging it leaves)."""
    tmpdir.mkdir(exist_ok=True)
    environment = {**os.environ, "TMPDIR": str(tmpdir), **(env or {})}
    environment.pop(FAULT_KILL_AFTER_OBJECTS, None)
    if kill_after is not None:
        environment[FAULT_KILL_AFTER_OBJECTS] = str(kill_after)
    return subprocess.run(
        [sys.executable, "-m", "genomenlp.components.cli.create_dataset", *inputs, "-o", out, "--no_progress", *extra],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=300,
    )


def _objects(fs, prefix: str) -> dict[str, str]:
    fs.invalidate_cache()
    if not fs.exists(prefix):
        return {}
    return {key[len(prefix) + 1:]: fs.info(key)["ETag"] for key in fs.find(prefix)}


def _staging_prefixes(fs, parent: str) -> list[str]:
    fs.invalidate_cache()
    return [entry for entry in fs.ls(parent, detail=False) if ".staging-" in entry]


def test_killed_upload_to_a_new_prefix_publishes_nothing_and_the_next_run_cleans_up(s3, inputs, tmp_path):
    out = f"s3://{BUCKET}/new/ds"
    killed = _create(inputs, out, tmp_path / "tmp", kill_after=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _objects(s3, f"{BUCKET}/new/ds") == {}
    assert _staging_prefixes(s3, f"{BUCKET}/new")
    assert list((tmp_path / "tmp").glob("genomenlp-out-*"))

    done = _create(inputs, out, tmp_path / "tmp")
    assert done.returncode == 0, done.stderr
    assert _staging_prefixes(s3, f"{BUCKET}/new") == []
    assert list((tmp_path / "tmp").glob("genomenlp-out-*")) == []
    objects = _objects(s3, f"{BUCKET}/new/ds")
    assert COMMIT_MARKER in objects and "manifest.json" in objects
    marker = json.loads(s3.cat(f"{BUCKET}/new/ds/{COMMIT_MARKER}"))
    assert set(marker["files"]) == set(objects) - {COMMIT_MARKER}


def test_overwrite_killed_during_upload_leaves_the_old_output_whole(s3, inputs, tmp_path):
    out = f"s3://{BUCKET}/keep/ds"
    assert _create(inputs, out, tmp_path / "tmp").returncode == 0
    before = _objects(s3, f"{BUCKET}/keep/ds")
    killed = _create(inputs, out, tmp_path / "tmp", "--overwrite", "--seed", "7", kill_after=4)
    assert killed.returncode == -signal.SIGKILL
    assert _objects(s3, f"{BUCKET}/keep/ds") == before


def test_overwrite_killed_during_the_swap_is_refused_by_readers_then_recovers(s3, inputs, tmp_path):
    from genomenlp.components.training.data import dataset_manifest, load_split

    out = f"s3://{BUCKET}/swap/ds"
    assert _create(inputs, out, tmp_path / "tmp").returncode == 0
    s3.pipe(f"{BUCKET}/swap/ds/stale.txt", b"from an older layout")
    count = len(_objects(s3, f"{BUCKET}/swap/ds")) - 1  # the new set lacks stale.txt
    killed = _create(inputs, out, tmp_path / "tmp", "--overwrite", "--seed", "7", kill_after=count + 3)
    assert killed.returncode == -signal.SIGKILL
    assert COMMIT_MARKER not in _objects(s3, f"{BUCKET}/swap/ds")
    with pytest.raises(InputError, match=COMMIT_MARKER):
        load_split(f"{out}/train.parquet", "parquet")
    with pytest.raises(InputError, match="incomplete"):
        dataset_manifest(f"{out}/train.parquet")

    done = _create(inputs, out, tmp_path / "tmp", "--overwrite", "--seed", "7")
    assert done.returncode == 0, done.stderr
    objects = _objects(s3, f"{BUCKET}/swap/ds")
    assert COMMIT_MARKER in objects and "stale.txt" not in objects
    assert _staging_prefixes(s3, f"{BUCKET}/swap") == []
    assert len(load_split(f"{out}/train.parquet", "parquet")) > 0


def test_a_prefix_without_marker_is_refused_by_train(s3, inputs, tmp_path):
    s3.pipe(f"{BUCKET}/foreign/train.parquet", b"PAR1")
    result = subprocess.run(
        [sys.executable, "-m", "genomenlp.components.cli.train", f"s3://{BUCKET}/foreign/train.parquet", "parquet",
         inputs[2], "-o", str(tmp_path / "run")],
        cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert COMMIT_MARKER in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_endpoint_down_is_one_line_naming_the_endpoint(inputs, tmp_path):
    endpoint = f"http://127.0.0.1:{_free_port()}"
    env = {**KEYS, "AWS_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "2"}
    started = time.monotonic()
    result = _create(inputs, f"s3://{BUCKET}/down/ds", tmp_path / "tmp", env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert endpoint in line and "cannot reach" in line
    assert time.monotonic() - started < 120


def test_wrong_credentials_are_one_line(inputs, tmp_path):
    # moto checks signatures against its IAM users once authentication is switched on.
    server, endpoint = _start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        env = {**KEYS, "AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1", "AWS_ENDPOINT_URL": endpoint,
               "AWS_MAX_ATTEMPTS": "2"}
        result = _create(inputs, f"s3://{BUCKET}/creds/ds", tmp_path / "tmp", env=env)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert "AWS_ACCESS_KEY_ID" in line and endpoint in line


def test_pretraining_exclusion_refuses_an_incomplete_dataset_prefix(s3):
    from genomenlp.components.pretraining.corpus import exclusion_index

    s3.pipe(f"{BUCKET}/half/valid.parquet", b"PAR1")
    s3.pipe(f"{BUCKET}/half/test.parquet", b"PAR1")
    with pytest.raises(InputError, match=COMMIT_MARKER):
        exclusion_index([f"s3://{BUCKET}/half"])


def test_server_killed_mid_upload_is_one_line_and_staging_is_removed(inputs, tmp_path):
    server, endpoint = _start_moto()
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
        # The server dies after the third object reaches it, as a crashed or restarted store would.
        script = ("import os, signal, sys\n"
                  "import genomenlp.components.remote_publish as publishing\n"
                  "original = publishing._Transfers.done\n"
                  "def done(self):\n"
                  "    original(self)\n"
                  "    if self.count == 3:\n"
                  "        os.kill(int(os.environ['SERVER_PID']), signal.SIGKILL)\n"
                  "publishing._Transfers.done = done\n"
                  "from genomenlp.components.cli import create_dataset\n"
                  "sys.exit(create_dataset.main(sys.argv[1:]))\n")
        tmpdir = tmp_path / "tmp"
        tmpdir.mkdir()
        environment = {**os.environ, **KEYS, "AWS_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "2",
                       "SERVER_PID": str(server.pid), "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO)}
        environment.pop(FAULT_KILL_AFTER_OBJECTS, None)
        done = subprocess.run([sys.executable, "-c", script, *inputs, "-o", f"s3://{BUCKET}/dies/ds", "--no_progress"],
                              cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert done.returncode == 2, done.stderr
    line, = done.stderr.strip().splitlines()
    assert "cannot reach" in line and endpoint in line
    assert list(tmpdir.iterdir()) == []

