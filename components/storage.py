"""Local and object-storage paths (``s3://…`` through fsspec) with atomic writes.

Every write lands under a temporary name first and is renamed into place only when complete,
so an interrupted command never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from components.errors import InputError


def is_remote(path: str | os.PathLike) -> bool:
    """Whether a path names object storage (has a URL scheme such as ``s3://``)."""
    return "://" in str(path) and not str(path).startswith("file://")


def _filesystem(path: str | os.PathLike):
    import fsspec

    fs, fs_path = fsspec.core.url_to_fs(str(path))
    return fs, fs_path


def exists(path: str | os.PathLike) -> bool:
    """Whether a file or folder exists, locally or in object storage."""
    fs, fs_path = _filesystem(path)
    return fs.exists(fs_path)


def join(base: str | os.PathLike, *parts: str) -> str:
    """Join path parts with ``/`` for URLs and the OS separator for local paths."""
    if is_remote(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return str(Path(base, *parts))


def open_input(path: str | os.PathLike) -> IO[bytes]:
    """Open a local or remote file for binary reading, with a one-line error when it is missing."""
    import fsspec

    try:
        return fsspec.open(str(path), "rb").open()
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a folder, expected a file") from None
    except PermissionError:
        raise InputError(str(path), "permission denied") from None


def read_text(path: str | os.PathLike) -> str:
    """Read a whole (small) UTF-8 text file, local or remote."""
    with open_input(path) as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(str(path), "is not UTF-8 text") from None


def ensure_absent(path: str | os.PathLike, overwrite: bool) -> None:
    """Refuse to replace something the user made unless asked (checked before long work starts)."""
    if not overwrite and exists(path):
        raise InputError(str(path), "already exists; pass --overwrite to replace it")


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> None:
    """Write a file in one step: a temporary sibling, then a rename (one PUT on object storage).

    Args:
        path: Destination, local or ``s3://``.
        data: The whole content.
        overwrite: Replace an existing file; otherwise an existing file is an error.
    """
    ensure_absent(path, overwrite)
    if is_remote(path):
        fs, fs_path = _filesystem(path)
        fs.pipe_file(fs_path, data)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def write_text_atomic(path: str | os.PathLike, text: str, overwrite: bool = False) -> None:
    """Write UTF-8 text atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build an output folder under a temporary name and move it into place when complete.

    Yields a local staging folder. On success it replaces ``path`` (a local folder, renamed; or an
    ``s3://`` prefix, uploaded); on failure it is removed and ``path`` is untouched.

    Args:
        path: The final folder, local or ``s3://``.
        overwrite: Replace an existing folder; otherwise an existing folder is an error.
    """
    ensure_absent(path, overwrite)
    if is_remote(path):
        staging = Path(tempfile.mkdtemp(prefix="genomenlp-out-"))
    else:
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
        staging.mkdir()
    try:
        yield staging
        if is_remote(path):
            fs, fs_path = _filesystem(path)
            if fs.exists(fs_path):
                fs.rm(fs_path, recursive=True)
            fs.put(str(staging) + "/", fs_path, recursive=True)
        else:
            final = Path(path)
            if final.exists():
                # Move the old folder aside first so the swap never leaves neither in place.
                old = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}.old"
                final.rename(old)
                staging.rename(final)
                shutil.rmtree(old)
            else:
                staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
