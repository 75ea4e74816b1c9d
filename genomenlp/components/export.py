"""Pipeline outputs as folders: private staging folders for steps, digests of inputs, export to ``output_dir``.

A cached pipeline step must not write where a user looks (a step taken from the cache would leave
that place unwritten), so each step builds its folder in a private staging folder that ZenML
stores as an artifact, and one export at the end of the run copies the stored folders to the
user's ``output_dir``. Input files enter the cache key through their digests, so a changed file
re-runs the steps that read it even when its path is the same.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from genomenlp.components.bundled import resolve_bundled
from genomenlp.components.dataset.build import file_sha256
from genomenlp.components.errors import InputError
from genomenlp.components.storage import atomic_output_dir, exists, is_remote

STAGING_PREFIX = "genomenlp-step-"


def staging_folder(name: str) -> Path:
    """A fresh path ``<private temporary folder>/<name>`` (not yet created) for a step to build its folder in.

    The temporary folder is removed when the process exits: by then ZenML has stored the folder
    (a local orchestrator runs every step in the command's process; a Kubeflow step pod ends).

    Args:
        name: The folder's name, as the user will find it (``train``, ``cv``…).
    """
    parent = tempfile.mkdtemp(prefix=STAGING_PREFIX)
    atexit.register(shutil.rmtree, parent, True)
    return Path(parent) / name


def folder_digest(folder: str | os.PathLike) -> str:
    """SHA-256 over a local folder's relative file names and contents (stable across machines)."""
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(item for item in root.rglob("*") if item.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file_sha256(str(path)).encode())
    return digest.hexdigest()


def input_digests(references: Sequence[str], resolve: Callable[[str], str] | None = None) -> dict[str, str]:
    """A digest per input: a file's bytes, or a folder's files (a model folder a reference names, too).

    Args:
        references: Local or ``s3://`` files, local folders, model references, or inline sequences.
        resolve: Turns a model reference such as ``registry:NAME@STAGE``, whose meaning changes when the
            registry does, into the local folder it names now (other paths come back unchanged).

    Returns:
        ``{reference: sha256}``, in the order given.
    """
    digests = {}
    for reference in references:
        path = resolve_bundled(resolve(reference) if resolve is not None else reference)
        if is_remote(path) or Path(path).is_file():
            digests[reference] = file_sha256(path)
        elif Path(path).is_dir():
            digests[reference] = folder_digest(path)
        else:
            # Not a path: a sequence given inline (``interpret`` takes them), which is its own content.
            digests[reference] = hashlib.sha256(str(path).encode()).hexdigest()
    return digests


def export_folders(folders: Mapping[str, str | os.PathLike], overwrite: bool = False) -> dict[str, str]:
    """Copy each folder to its destination (local or ``s3://``), each replaced whole or not at all.

    Every destination is checked before anything is copied, so a refused export writes nothing.

    Args:
        folders: ``{destination: source folder}``.
        overwrite: Replace existing destinations; otherwise an existing one is an error.

    Returns:
        ``{destination: destination}`` with local destinations made absolute.
    """
    for destination, source in folders.items():
        if not Path(source).is_dir():
            raise InputError(str(source), "is not a folder to export")
        if not overwrite and exists(destination):
            # The run's results are stored: run it again with overwrite (or elsewhere) and they come from the cache.
            raise InputError(str(destination), "already exists; set overwrite: true to replace it (a re-run "
                             "takes this run's results from the cache)")
    exported = {}
    for destination, source in folders.items():
        with atomic_output_dir(destination, overwrite) as staging:
            shutil.copytree(source, staging, dirs_exist_ok=True)
        exported[str(destination)] = str(destination) if is_remote(destination) else str(Path(destination).resolve())
    return exported
