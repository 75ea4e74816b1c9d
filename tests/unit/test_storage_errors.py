"""Failures of the environment become one line naming where and what to check."""

import errno

from components.storage import describe_environment_error


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
    assert "http://store:9000/b/k" in str(error) and "3 attempts" in str(error)


def test_programming_errors_are_not_hidden():
    assert describe_environment_error(ValueError("bug")) is None
    assert describe_environment_error(KeyError("x")) is None
