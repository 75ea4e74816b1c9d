"""Streaming FASTA reader: plain or gzip (by magic bytes), any line ending, strict validation.

Memory holds one record at a time, so files of any size stream through. Every problem is an
:class:`~components.errors.InputError` naming the file, the record or line, and what is wrong.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from components.errors import InputError
from components.storage import open_input

GZIP_MAGIC = b"\x1f\x8b"
# Other compressions users hand us by mistake: named, so the error can say what it is.
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}
_READ_BLOCK = 1 << 20


class Alphabet(StrEnum):
    """Which letters a sequence may contain."""

    DNA = "dna"  # IUPAC nucleotide codes; RNA's U is accepted too
    PROTEIN = "protein"


ALLOWED_LETTERS = {
    Alphabet.DNA: frozenset("ACGTURYSWKMBDHVN"),
    Alphabet.PROTEIN: frozenset("ACDEFGHIKLMNPQRSTVWYBZXUOJ*"),
}


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA record: the header split into id and description, and the upper-cased sequence.

    Attributes:
        id: First word of the header (kept verbatim: data, never a file name).
        description: The rest of the header line.
        sequence: Upper-cased letters, line breaks and blanks removed.
        number: 1-based position of the record in its file.
        line: Line number of the header.
    """

    id: str
    description: str
    sequence: str
    number: int
    line: int


def _open_decompressed(path: str) -> io.BufferedIOBase:
    raw = open_input(path)
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    head = buffered.peek(8)[:8]
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    for magic, name in _OTHER_MAGIC.items():
        if head.startswith(magic):
            buffered.close()
            raise InputError(path, f"is {name}-compressed; only plain text or gzip is read")
    return buffered


def _text_lines(path: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, line without its ending) for LF, CRLF and lone CR endings."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    pending = ""
    line_number = 0
    stream = _open_decompressed(path)
    try:
        while True:
            try:
                block = stream.read(_READ_BLOCK)
            except (EOFError, gzip.BadGzipFile, zlib.error) as error:
                raise InputError(path, f"damaged or truncated gzip data ({error})") from None
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                raise InputError(
                    path, "binary data, not FASTA text", f"line {line_number + pending.count(chr(10)) + 1}"
                ) from None
            if "\x00" in text:
                raise InputError(path, "binary data (NUL bytes), not FASTA text", f"line {line_number + 1}")
            pending += text
            if block:
                # A trailing \r may be the first half of \r\n: keep it for the next block.
                cut = len(pending) - 1 if pending.endswith("\r") else len(pending)
                complete, pending = pending[:cut], pending[cut:]
                lines = complete.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                pending = lines.pop() + pending
            else:
                lines = pending.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                pending = ""
            for line in lines:
                line_number += 1
                yield line_number, line
            if not block:
                return
    finally:
        stream.close()


def read_fasta(path: str | os.PathLike, alphabet: Alphabet = Alphabet.DNA) -> Iterator[FastaRecord]:
    """Stream the records of a FASTA file (plain or gzip, local or ``s3://``).

    Args:
        path: The file.
        alphabet: Letters a sequence may hold; anything else is an error naming the record.

    Yields:
        One :class:`FastaRecord` at a time, in file order.

    Raises:
        InputError: Empty file, no records, text before the first header, a record without
            sequence, letters outside the alphabet, damaged gzip or binary data.
    """
    path = str(path)
    allowed = ALLOWED_LETTERS[Alphabet(alphabet)]
    header: tuple[str, str, int] | None = None
    parts: list[str] = []
    count = 0
    line_number, line = 0, ""

    def finish() -> FastaRecord:
        record_id, description, line = header
        sequence = "".join(parts).upper()
        where = f"record {count} '{record_id}' (line {line})"
        if not sequence:
            raise InputError(path, "has no sequence", where)
        bad = set(sequence) - allowed
        if bad:
            letter = sorted(bad)[0]
            position = sequence.index(letter) + 1
            raise InputError(
                path,
                f"character {letter!r} at position {position} is not a {alphabet} sequence letter"
                f" (allowed: {''.join(sorted(allowed))})",
                where,
            )
        return FastaRecord(record_id, description, sequence, count, line)

    for line_number, line in _text_lines(path):
        if line.startswith(">"):
            if header is not None:
                yield finish()
            count += 1
            words = line[1:].strip().split(maxsplit=1)
            record_id = words[0] if words else f"record_{count}"
            header = (record_id, words[1] if len(words) > 1 else "", line_number)
            parts = []
            continue
        stripped = "".join(line.split())
        if not stripped:
            continue
        if header is None:
            raise InputError(path, f"text before the first '>' header: {line[:40]!r}", f"line {line_number}")
        parts.append(stripped)
    if header is not None:
        yield finish()
    elif line_number <= 1 and not line:
        raise InputError(path, "empty file: no FASTA records")
    else:
        raise InputError(path, "no FASTA records, only blank lines")
