"""Object storage: which paths are remote, how to reach them (botocore retries), and what a failure means.

The commands catch what the code cannot fix (an object store unreachable or refusing the
credentials, the file-size limit, a full disk) and print :func:`describe_environment_error`'s line
naming the endpoint or path and what to check, instead of a traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from genomenlp.components.errors import InputError

# botocore's default (legacy mode, 5 attempts, random backoff from 0 s) can give up within a few
# seconds of an S3 server going away; 10 attempts in standard mode back off with jitter up to 20 s
# each, about a minute in all, which outlasts a restart of the object store. The commands and the
# ZenML S3 artifact store (genomenlp/platform/stacks.py) share it; AWS_MAX_ATTEMPTS, botocore's own
# variable, lowers or raises the attempts.
S3_RETRIES = {"mode": "standard", "max_attempts": 10}


def is_remote(path: str | os.PathLike) -> bool:
    """Whether a path names object storage (has a URL scheme such as ``s3://``)."""
    return "://" in str(path) and not str(path).startswith("file://")


def storage_options(path: str | os.PathLike) -> dict:
    """Fsspec options for a path: botocore's retry configuration for ``s3://``."""
    if not str(path).startswith(("s3://", "s3a://")):
        return {}
    retries = dict(S3_RETRIES)
    if os.environ.get("AWS_MAX_ATTEMPTS", "").isdigit():
        retries["max_attempts"] = int(os.environ["AWS_MAX_ATTEMPTS"])
    options = {"config_kwargs": {"retries": retries, "connect_timeout": 10, "read_timeout": 60}}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        # Explicit, so fsspec's cache of filesystems tells endpoints apart when the environment changes.
        options["client_kwargs"] = {"endpoint_url": endpoint}
    return options


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3 (default endpoint)"


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """The error and its causes (``__cause__``, else ``__context__``), each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def is_connection_error(error: BaseException) -> bool:
    """Whether botocore gave up reaching the endpoint (refused, timed out or dropped connections)."""
    import botocore.exceptions as boto

    return isinstance(error, boto.EndpointConnectionError | boto.ConnectTimeoutError | boto.ConnectionClosedError
                      | boto.ReadTimeoutError)


_CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403",
                     "ExpiredToken", "InvalidToken", "AuthorizationHeaderMalformed")


def describe_environment_error(error: BaseException, where: str | None = None) -> InputError | None:
    """A one-line :class:`InputError` for a failure of the environment rather than of the code.

    Covers an object store that cannot be reached (after botocore's retries) or that refuses the
    credentials, the file-size limit (``ulimit -f``, EFBIG) and a full disk. Anything else gives None.

    Args:
        error: The exception (its causes are searched too).
        where: The path being read or written, when known.
    """
    try:
        import botocore.exceptions as boto
    except ImportError:  # pragma: no cover - botocore comes with s3fs
        boto = None
    for link in error_chain(error):
        if boto is not None and isinstance(link, boto.NoCredentialsError | boto.PartialCredentialsError):
            return InputError(where or _endpoint(), "no object-storage credentials found: set AWS_ACCESS_KEY_ID "
                              "and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
        if boto is not None and is_connection_error(link):
            from urllib.parse import urlsplit

            url = getattr(link, "kwargs", {}).get("endpoint_url") or _endpoint()
            parts = urlsplit(url)
            endpoint = f"{parts.scheme}://{parts.netloc}" if parts.netloc else url
            attempts = storage_options("s3://")["config_kwargs"]["retries"]["max_attempts"]
            return InputError(where or url, f"cannot reach the object store at {endpoint} (gave up after "
                              f"{attempts} attempts with backoff; AWS_MAX_ATTEMPTS sets how many): check "
                              "AWS_ENDPOINT_URL, the network and that the server is up")
        text = str(link)
        code = ""
        if boto is not None and isinstance(link, boto.ClientError):
            code = str(link.response.get("Error", {}).get("Code", ""))
        if (code in _CREDENTIAL_CODES or (isinstance(link, PermissionError) and where and is_remote(where))
                or any(name in text for name in _CREDENTIAL_CODES[:3])):
            return InputError(where or _endpoint(), f"the object store at {_endpoint()} refused the request "
                              f"({code or text.splitlines()[0] if text else 'forbidden'}): check AWS_ACCESS_KEY_ID, "
                              "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the bucket's permissions")
        if isinstance(link, PermissionError) and link.filename and not is_remote(str(link.filename)):
            return InputError(str(link.filename), "permission denied: choose a location you may write to, or fix "
                              "its permissions")
        if isinstance(link, OSError) and link.errno == errno.EFBIG:
            return InputError(link.filename or where or "output", "file size limit reached while writing (ulimit "
                              "-f): raise the limit or write elsewhere; nothing was published")
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            return InputError(link.filename or where or "output", "no space left on the device (or quota "
                              "exceeded) while writing: free space or write elsewhere; nothing was published")
    return None
