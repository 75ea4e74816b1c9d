"""Every path argument accepts s3://: the commands against a real S3-compatible server on loopback."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genomenlp.components.cli import create_dataset, kmerise, tokenise

DATA = Path(__file__).resolve().parents[2] / "data" / "ecoli_promoter"
BUCKET = "genomics"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3 server on 127.0.0.1, with the environment s3fs reads its endpoint and keys from."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        import s3fs

        filesystem = s3fs.S3FileSystem()
        filesystem.mkdir(BUCKET)
        filesystem.put(str(DATA / "promoter.fasta.gz"), f"{BUCKET}/in/promoter.fasta.gz")
        filesystem.put(str(DATA / "non_promoter.fasta.gz"), f"{BUCKET}/in/non_promoter.fasta.gz")
        yield filesystem
    finally:
        server.terminate()
        server.wait(timeout=10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_commands_read_and_write_s3(s3_server):
    inputs = [f"s3://{BUCKET}/in/promoter.fasta.gz", f"s3://{BUCKET}/in/non_promoter.fasta.gz"]
    tokens = f"s3://{BUCKET}/out/kmers.json"
    assert kmerise.main(["-i", *inputs, "-k", "2", "-t", tokens, "--no_progress"]) == 0
    assert tokenise.main(["-i", inputs[0], "-t", f"s3://{BUCKET}/out/uni.json", "--no_progress"]) == 0
    out = f"s3://{BUCKET}/out/data"
    assert create_dataset.main([*inputs, tokens, "-o", out, "--no_progress"]) == 0
    s3_server.invalidate_cache()
    manifest = json.loads(s3_server.cat(f"{BUCKET}/out/data/manifest.json"))
    assert manifest["splits"]["test"]["records"] == 338
    names = {path.rsplit("/", 1)[-1] for path in s3_server.ls(f"{BUCKET}/out/data")}
    assert {"train.parquet", "test.csv", "valid.json", "train", "tokenizer.json"} <= names
    # An existing remote output is protected like a local one.
    assert create_dataset.main([*inputs, tokens, "-o", out, "--no_progress"]) == 2
