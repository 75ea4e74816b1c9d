"""Local and object-storage paths (``s3://…`` through fsspec) with atomic writes.

A single file lands under a temporary name first and is renamed into place when complete (one PUT
on object storage, which S3 makes visible whole or not at all).

A multi-file output (a dataset, a model, a report folder) is built in a local staging folder and
published as one step:

- **Local**: the staging folder, a hidden sibling ``.NAME.PID.ID.tmp``, is renamed into place.
- **Object storage** (commit-marker design, :mod:`.remote_publish`): every object is uploaded under
  a staging prefix beside the target (``.NAME.staging-ID/``), ``_SUCCESS`` last. Only then is the
  target touched: its old ``_SUCCESS`` is removed (readers now refuse it, but no old object has been
  deleted), the staged objects are copied into place server-side, the new ``_SUCCESS`` is written
  last, and only after that are old objects that the new set lacks deleted, and the staging prefix
  removed.

Every folder this module publishes holds ``_SUCCESS`` (local ones too, so a folder copied to a
bucket stays readable), and every reader of an ``s3://`` folder calls :func:`require_complete`,
which refuses a prefix without it: an interrupted upload is never taken for a complete output.

Staging space is removed on every exit path but SIGKILL (the commands turn SIGTERM into a normal
exit); what a killed run left (its local staging folder, hidden siblings, staging prefixes) is
removed by the next run that writes the same output. Two runs writing the same output at the same
time are not supported.

Object-storage calls use botocore's standard retry mode (exponential backoff with jitter); when the
store cannot be reached, or refuses the credentials, ``describe_environment_error`` turns the
error into one line naming the endpoint and what to check (:mod:`.object_store`).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from genomenlp.components.bundled import resolve_bundled
from genomenlp.components.errors import InputError
from genomenlp.components.object_store import (  # noqa: F401 - is_remote and storage_options are used from here too
    describe_environment_error,
    is_remote,
    storage_options,
)
from genomenlp.components.remote_publish import (  # noqa: F401 - FAULT_KILL_AFTER_OBJECTS is used from here too
    COMMIT_MARKER,
    FAULT_KILL_AFTER_OBJECTS,
    clean_stale_prefixes,
    publish_remote,
)

LOCAL_STAGING_PREFIX = "genomenlp-out-"
_LEGACY_STAGING_AGE = 24 * 3600
# .NAME.PID.HEX.tmp / .old are this module's; .NAME.HEX8.tmp / .old are what earlier versions made.
_LOCAL_SIBLING = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{8}\.(?:tmp|old)$")


def _filesystem(path: str | os.PathLike):
    import fsspec

    fs, fs_path = fsspec.core.url_to_fs(str(path), **storage_options(path))
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


def parent_of(path: str | os.PathLike) -> str:
    """The folder holding a file, for URLs and local paths alike."""
    if is_remote(path):
        return str(path).rstrip("/").rsplit("/", 1)[0]
    return str(Path(path).parent)


def open_input(path: str | os.PathLike) -> IO[bytes]:
    """Open a local or remote file for binary reading, with a one-line error when it is missing."""
    import fsspec

    try:
        return fsspec.open(resolve_bundled(path), "rb", **storage_options(path)).open()
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a folder, expected a file") from None
    except PermissionError as error:
        described = describe_environment_error(error, str(path))
        raise InputError(str(path), "permission denied") if described is None else described from None


def read_text(path: str | os.PathLike) -> str:
    """Read a whole (small) UTF-8 text file, local or remote."""
    with open_input(path) as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(str(path), "is not UTF-8 text") from None


def require_complete(folder: str | os.PathLike) -> None:
    """Refuse an ``s3://`` folder without its commit marker (an interrupted or foreign upload).

    Local folders are published by one rename and need no check.
    """
    if not is_remote(folder):
        return
    fs, fs_path = _filesystem(folder)
    if fs.exists(f"{fs_path.rstrip('/')}/{COMMIT_MARKER}"):
        return
    if not fs.exists(fs_path):
        raise InputError(str(folder), "no such folder")
    raise InputError(str(folder), f"has no {COMMIT_MARKER} marker, so it is an incomplete (interrupted) output: "
                     f"run the command that makes it again with --overwrite (if you copied a complete folder "
                     f"there yourself, add an empty {COMMIT_MARKER} object)")


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def ensure_absent(path: str | os.PathLike, overwrite: bool, folder: bool | None = None) -> None:
    """Refuse to replace something the user made unless asked (checked before long work starts).

    An empty folder counts as absent for a folder output. With ``overwrite``, targets that cannot be
    replaced safely are still refused, each with its reason: a symbolic link (replacing it would
    replace the link, not what the user thinks), the current folder or one holding it, a file where a
    folder is written or a folder where a file is written.

    Args:
        path: The output, local or ``s3://``.
        overwrite: Whether the user passed ``--overwrite``.
        folder: True for a folder output, False for a file, None when the caller does not say.
    """
    if is_remote(path):
        scheme_free = str(path).split("://", 1)[1].strip("/")
        if "/" not in scheme_free:
            raise InputError(str(path), "is a whole bucket: give a folder inside it (s3://bucket/folder)")
        if not overwrite and exists(path):
            raise InputError(str(path), "already exists; pass --overwrite to replace it")
        return
    target = Path(path)
    if target.is_symlink():
        raise InputError(str(path), f"is a symbolic link (to {os.readlink(target)}); give the real path or remove "
                         "the link: --overwrite does not replace links")
    if not target.exists():
        return
    if folder is not False and target.is_dir() and not any(target.iterdir()):
        return
    if not overwrite:
        raise InputError(str(path), "already exists; pass --overwrite to replace it")
    if folder and not target.is_dir():
        raise InputError(str(path), "is a file, not a folder: --overwrite replaces only a folder here; remove it "
                         "or choose another output")
    if folder is False and target.is_dir():
        raise InputError(str(path), "is a folder, not a file: --overwrite replaces only a file here; remove it "
                         "or choose another output")
    if target.is_dir() and _is_within(Path.cwd().resolve(), target.resolve()):
        raise InputError(str(path), "is the current folder or holds it, so it cannot be replaced: choose a new "
                         "output folder")


def prepare_resumable_dir(path: str | os.PathLike, overwrite: bool, finished: str | None, state: str,
                          what: str = "run") -> Path:
    """A local output folder that doubles as a command's checkpoint store, checked before work starts.

    The folder may be absent, empty or this command's own resumable state (it holds ``state``, the
    checkpoint folder of an interrupted run); anything else, a finished run (``finished`` present)
    included, is refused without ``overwrite``, and with it removed after :func:`ensure_absent`'s
    safety checks (never a link, a file or the current folder).

    Args:
        path: The output folder.
        overwrite: Whether the user passed ``--overwrite``.
        finished: File whose presence marks a finished run (``metrics.json``); None when a finished run
            is continued too (a sweep's study).
        state: Entry whose presence marks a resumable run (``checkpoints``).
        what: What a finished run is called in the message.

    Returns:
        The folder, as a path.
    """
    out = Path(path)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        ensure_absent(out, True, folder=True)
    if not out.is_dir() or not any(out.iterdir()):
        return out
    if finished and (out / finished).exists() and not overwrite:
        raise InputError(str(path), f"holds a finished {what}; pass --overwrite to replace it")
    if not overwrite and not (out / state).exists():
        shown = ", ".join(sorted(entry.name for entry in out.iterdir())[:4])
        raise InputError(str(path), f"is not empty ({shown}…) and holds no interrupted run to resume ({state}/): "
                         "pass --overwrite to replace it, or choose another folder")
    if overwrite:
        ensure_absent(out, True, folder=True)
        shutil.rmtree(out)
    return out


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> None:
    """Write a file in one step: a temporary sibling, then a rename (one PUT on object storage).

    Args:
        path: Destination, local or ``s3://``.
        data: The whole content.
        overwrite: Replace an existing file; otherwise an existing file is an error.
    """
    ensure_absent(path, overwrite, folder=False)
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_local_staging(folder: str | os.PathLike | None = None) -> list[Path]:
    """Remove the local staging folders of runs that died (their process is gone).

    Args:
        folder: Where staging folders are made (default: the temporary folder).

    Returns:
        What was removed.
    """
    removed = []
    base = Path(folder or tempfile.gettempdir())
    for candidate in base.glob(f"{LOCAL_STAGING_PREFIX}*"):
        if not candidate.is_dir() or candidate.is_symlink():
            continue
        owner, dash, _ = candidate.name.removeprefix(LOCAL_STAGING_PREFIX).partition("-")
        if dash and owner.isdigit():
            dead = not _alive(int(owner))
        else:  # named by an earlier version, without its process id: judged by age
            dead = time.time() - candidate.stat().st_mtime > _LEGACY_STAGING_AGE
        if dead:
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _clean_stale_siblings(final: Path) -> None:
    """Remove hidden ``.NAME.….tmp`` / ``.old`` siblings of ``final`` that a killed run left."""
    if not final.parent.is_dir():
        return
    for candidate in final.parent.glob(f".{glob.escape(final.name)}.*"):
        match = _LOCAL_SIBLING.match(candidate.name)
        if not match or match["name"] != final.name or candidate.is_symlink():
            continue
        if match["pid"] and _alive(int(match["pid"])) and int(match["pid"]) != os.getpid():
            continue
        if candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()


def write_commit_marker(folder: Path) -> None:
    """Write ``_SUCCESS`` (what was published and when) into a finished staging folder."""
    files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (folder / COMMIT_MARKER).write_text(json.dumps({"written": stamp, "files": files}) + "\n", encoding="utf-8")


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build an output folder under a temporary name and publish it when complete (see module doc).

    Yields a local staging folder. On success it replaces ``path`` (a local folder, renamed; or an
    ``s3://`` prefix, staged and copied into place, ``_SUCCESS`` last); on failure it is removed and
    ``path`` is untouched.

    Args:
        path: The final folder, local or ``s3://``.
        overwrite: Replace an existing folder; otherwise an existing folder is an error.
    """
    ensure_absent(path, overwrite, folder=True)
    remote = is_remote(path)
    clean_stale_local_staging()
    if remote:
        fs, fs_path = _filesystem(path)
        clean_stale_prefixes(fs, fs_path)
        staging = Path(tempfile.mkdtemp(prefix=f"{LOCAL_STAGING_PREFIX}{os.getpid()}-"))
    else:
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale_siblings(final)
        staging = final.parent / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        staging.mkdir()
    try:
        yield staging
        write_commit_marker(staging)
        if remote:
            publish_remote(staging, *_filesystem(str(path)))
        else:
            _swap_local(staging, Path(path))
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _swap_local(staging: Path, final: Path) -> None:
    if final.is_dir() and not any(final.iterdir()):
        final.rmdir()
    if not final.exists():
        staging.rename(final)
        return
    # Move the old folder aside first so the swap never leaves neither in place.
    old = final.parent / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old"
    final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
