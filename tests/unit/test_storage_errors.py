"""Failures of the environment become one line naming where and what to check."""

import errno

from genomenlp.components.object_store import describe_environment_error


def test_local_permission_denied():
    error = describe_environment_error(PermissionError(errno.EACCES, "Permission denied", "/data/out/x"))
    assert str(error).startswith("/data/out/x: permission denied")


def test_file_size_limit_and_full_disk():
    efbig = describe_environment_error(OSError(errno.EFBIG, "File too large", "/o/train.parquet"))
    assert "ulimit -f" in str(efbig) and str(efbig).startswith("/o/train.parquet")
    assert "no space left" in str(describe_environment_error(OSError(errno.ENOSPC, "No space left on device")))


def test_wrapped_endpoint_error_found_through_the_cause_chain(monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    try:
        try:
            raise EndpointConnectionError(endpoint_url="http://store:9000/b/k")
        except EndpointConnectionError as inner:
            raise OSError("upload failed") from inner
    except OSError as outer:
        error = describe_environment_error(outer)
    assert str(error).startswith("http://store:9000/b/k: cannot reach the object store at http://store:9000 ")
    assert "3 attempts" in str(error)


def test_programming_errors_are_not_hidden():
    assert describe_environment_error(ValueError("bug")) is None
    assert describe_environment_error(KeyError("x")) is None


def test_dead_and_legacy_staging_folders_are_removed_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from genomenlp.components.storage import clean_stale_local_staging

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    folders = {name: tmp_path / name for name in (f"genomenlp-out-{dead}-abc", f"genomenlp-out-{os.getpid()}-def",
                                                   "genomenlp-out-x1y2z3", "genomenlp-out-fresh")}
    for folder in folders.values():
        folder.mkdir()
    old = time.time() - 2 * 24 * 3600
    os.utime(folders["genomenlp-out-x1y2z3"], (old, old))
    removed = {path.name for path in clean_stale_local_staging(tmp_path)}
    assert removed == {f"genomenlp-out-{dead}-abc", "genomenlp-out-x1y2z3"}
