"""Writing results safely: streamed files that appear only when complete, TSV fields, file names."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from genomenlp.components.storage import ensure_absent, is_remote

MAX_STEM_LENGTH = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Device names Windows refuses as file names whatever the extension.
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                               *(f"LPT{i}" for i in range(1, 10))})


def safe_file_stem(record_id: str, taken: set[str], fallback: str = "record") -> str:
    """A file-name stem for a record id that is safe on every file system, unique among ``taken``.

    The stem holds only ``A-Z a-z 0-9 . _ -`` (accented letters lose their accents, other runs
    become ``_``), never starts with ``.`` or ``-`` (no hidden files, no option look-alikes), is
    at most :data:`MAX_STEM_LENGTH` characters, and differs from every stem in ``taken`` ignoring
    case (case-insensitive file systems) by a ``_2``, ``_3`` … suffix. Path separators cannot
    survive, so ``../x`` or ``/etc/passwd`` stay inside the output folder.

    Args:
        record_id: Any text (a FASTA header word may hold anything).
        taken: Lower-cased stems already used; the returned stem is added to it.
        fallback: Stem used when nothing of the id survives.

    Returns:
        The stem, without extension.
    """
    ascii_text = unicodedata.normalize("NFKD", str(record_id)).encode("ascii", "ignore").decode("ascii")
    stem = _UNSAFE.sub("_", ascii_text).lstrip(".-_").rstrip(".")
    stem = stem[:MAX_STEM_LENGTH].rstrip(".") or fallback
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem = f"_{stem}"[:MAX_STEM_LENGTH]
    candidate, number = stem, 1
    while candidate.lower() in taken:
        number += 1
        suffix = f"_{number}"
        candidate = stem[: MAX_STEM_LENGTH - len(suffix)].rstrip(".") + suffix
    taken.add(candidate.lower())
    return candidate


def tsv_field(value) -> str:
    """A value as one TSV field: tabs and line breaks (which would break the table) become spaces."""
    return re.sub(r"[\t\r\n]", " ", str(value))


def tsv_line(values) -> str:
    """One TSV line, newline included."""
    return "\t".join(tsv_field(value) for value in values) + "\n"


@contextlib.contextmanager
def atomic_text_stream(path: str | os.PathLike, overwrite: bool = False) -> Iterator[IO[str]]:
    """Write a text file line by line under a temporary name; it takes its real name only when complete.

    Streaming keeps memory flat however long the output; the rename (or, for ``s3://``, one
    upload at the end) means an interrupted run leaves no partial file behind.

    Args:
        path: Destination, local or ``s3://``.
        overwrite: Replace an existing file; otherwise an existing file is an error.
    """
    ensure_absent(path, overwrite, folder=False)
    remote = is_remote(path)
    folder = Path(tempfile.gettempdir()) if remote else Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    name = "output" if remote else Path(path).name
    # The name is known before the file exists, so an interrupt landing right after its creation still removes it.
    temp_name = str(folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        handle = os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8", newline="", errors="backslashreplace") as stream:
            yield stream
        if remote:
            import fsspec

            fs, fs_path = fsspec.core.url_to_fs(str(path))
            fs.put_file(temp_name, fs_path)
            os.unlink(temp_name)
        else:
            os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
