"""Publishing a finished staging folder to object storage with the commit-marker design (see :mod:`.storage`).

Every object goes under a staging prefix beside the target first, ``_SUCCESS`` last; then the target's
old marker is removed, the objects are copied into place server-side, the new marker is written last,
and only then are old objects the new set lacks deleted and the staging prefix removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import uuid
from pathlib import Path

from genomenlp.components.object_store import error_chain, is_connection_error

COMMIT_MARKER = "_SUCCESS"
# Fault injection for tests: the process SIGKILLs itself after this many objects were transferred
# to object storage (uploads and server-side copies, counted together).
FAULT_KILL_AFTER_OBJECTS = "GENOMENLP_FAULT_KILL_AFTER_OBJECTS"
_STAGING_PREFIX = re.compile(r"^\.(?P<name>.+)\.staging-[0-9a-f]{12}$")


def clean_stale_prefixes(fs, target: str) -> None:
    """Remove the staging prefixes beside ``target`` that earlier (killed) runs left."""
    parent, _, name = target.rstrip("/").rpartition("/")
    if not parent:
        return
    with contextlib.suppress(FileNotFoundError):
        for entry in fs.ls(parent, detail=False, refresh=True):
            match = _STAGING_PREFIX.match(entry.rstrip("/").rsplit("/", 1)[-1])
            if match and match["name"] == name:
                fs.rm(entry, recursive=True)


class _Transfers:
    """Counts objects sent to object storage; the fault-injection hook kills the process at its count."""

    def __init__(self) -> None:
        limit = os.environ.get(FAULT_KILL_AFTER_OBJECTS, "")
        self.limit = int(limit) if limit.isdigit() else None
        self.count = 0

    def done(self) -> None:
        self.count += 1
        if self.limit is not None and self.count >= self.limit:
            os.kill(os.getpid(), signal.SIGKILL)


def _relative_files(fs, prefix: str) -> set[str]:
    """Object keys under ``prefix``, relative to it."""
    if not fs.exists(prefix):
        return set()
    return {key[len(prefix) + 1:] for key in fs.find(prefix) if key.startswith(prefix + "/")}


def publish_remote(staging: Path, fs, target: str) -> None:
    """Upload ``staging`` beside ``target`` (a path on ``fs``), then copy it into place with the marker last.

    The steps and their order are in the module's docstring.
    """
    target = target.rstrip("/")
    parent, _, name = target.rpartition("/")
    stage = f"{parent}/.{name}.staging-{uuid.uuid4().hex[:12]}"
    files = sorted(path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file())
    ordered = [path for path in files if path != COMMIT_MARKER] + [COMMIT_MARKER]
    transfers = _Transfers()
    reachable = True
    try:
        for relative in ordered:
            fs.put_file(str(staging / relative), f"{stage}/{relative}")
            transfers.done()
        fs.invalidate_cache()
        old = _relative_files(fs, target)
        if COMMIT_MARKER in old:
            fs.rm_file(f"{target}/{COMMIT_MARKER}")
        for relative in ordered:
            fs.copy(f"{stage}/{relative}", f"{target}/{relative}")
            transfers.done()
        stale = sorted(old - set(ordered))
        if stale:
            fs.rm([f"{target}/{relative}" for relative in stale])
    except Exception as error:
        # A store that cannot be reached would make the clean-up retry for as long again; the next run
        # removes the staging prefix instead.
        reachable = not any(is_connection_error(link) for link in error_chain(error))
        raise
    finally:
        if reachable:
            # Clean-up must not replace the error that brought us here.
            with contextlib.suppress(Exception):
                fs.rm(stage, recursive=True)
        fs.invalidate_cache()
