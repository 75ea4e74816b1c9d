"""Streaming FASTA reader: plain or gzip (by magic bytes), any line ending, strict validation.

Memory holds one record at a time, so files of any size stream through, and reading is linear in
the input: lines are cut out of fixed-size blocks and a line longer than a block (a whole
chromosome on one line) is gathered piece by piece, never re-copied. Two limits bound memory
whatever the input: a record longer than ``max_record_length`` bases is refused (naming it), and a
gzip stream that expands more than :data:`MAX_GZIP_RATIO` times its compressed size is refused as a
decompression bomb. Every problem is an :class:`~components.errors.InputError` naming the file, the
record or line, and what is wrong.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from genomenlp.components.errors import InputError
from genomenlp.components.storage import open_input

GZIP_MAGIC = b"\x1f\x8b"
# Other compressions users hand us by mistake: named, so the error can say what it is.
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}
_READ_BLOCK = 1 << 20
# Longer than every human chromosome (chr1: 248,956,422 bp); a record is held whole while it is read.
DEFAULT_MAX_RECORD_LENGTH = 300_000_000
# DNA gzips 3-4×; long N runs more. A stream beyond this ratio, once past the floor, is a bomb.
MAX_GZIP_RATIO = 100
GZIP_RATIO_FLOOR = 64 << 20
# A header is held whole too: a "header" this long is not one.
MAX_HEADER_LENGTH = 1 << 20
_max_record_length = contextvars.ContextVar("max_record_length", default=DEFAULT_MAX_RECORD_LENGTH)


@contextlib.contextmanager
def record_length_limit(limit: int | None):
    """Make ``limit`` the longest record :func:`read_fasta` accepts within the block (None: the default).

    The commands set it from ``--max_record_length`` around their work, so every reader below them
    (dataset building, tokeniser learning, prediction) applies the user's limit.
    """
    token = _max_record_length.set(DEFAULT_MAX_RECORD_LENGTH if limit is None else int(limit))
    try:
        yield
    finally:
        _max_record_length.reset(token)


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


class _CountingReader(io.RawIOBase):
    """A readable stream that counts the bytes taken from the one it wraps (the compressed size)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


class _Decompressed:
    """The decompressed byte stream of a file and, for gzip, how many compressed bytes it has read."""

    def __init__(self, path: str) -> None:
        raw = open_input(path)
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        head = buffered.peek(8)[:8]
        self.counter: _CountingReader | None = None
        self.stream = buffered
        if head.startswith(GZIP_MAGIC):
            self.counter = _CountingReader(buffered)
            self.stream = gzip.GzipFile(fileobj=io.BufferedReader(self.counter, 1 << 16), mode="rb")
            return
        for magic, name in _OTHER_MAGIC.items():
            if head.startswith(magic):
                buffered.close()
                raise InputError(path, f"is {name}-compressed; only plain text or gzip is read")

    def close(self) -> None:
        self.stream.close()
        if self.counter is not None:
            self.counter.close()


def _text_pieces(path: str) -> Iterator[tuple[int, str, bool]]:
    """Yield ``(line number, text, ends_line)``: each line, cut into pieces when it is longer than a block.

    LF, CRLF and lone CR all end a line. Work and memory are linear in the input: a piece is never
    copied again, however long its line.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    line_number = 1
    carry_cr = False  # the previous block ended with \r, which may be the first half of \r\n
    source = _Decompressed(path)
    expanded = 0
    try:
        while True:
            try:
                block = source.stream.read(_READ_BLOCK)
            except (EOFError, gzip.BadGzipFile, zlib.error) as error:
                raise InputError(path, f"damaged or truncated gzip data ({error})") from None
            expanded += len(block)
            if source.counter is not None and expanded > GZIP_RATIO_FLOOR \
                    and expanded > MAX_GZIP_RATIO * max(source.counter.count, 1):
                raise InputError(path, f"gzip data expands more than {MAX_GZIP_RATIO}× ({expanded >> 20} MiB from "
                                 f"{source.counter.count >> 10} KiB read): refused as a decompression bomb; "
                                 "decompress it yourself if it is genuine")
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                # Lines already yielded are counted; the rest of this block up to the byte adds its own.
                bad_line = line_number + error.object[: error.start].count(b"\n")
                raise InputError(path, _undecodable(error), f"line {bad_line}") from None
            if "\x00" in text:
                nul_line = line_number + text[: text.index("\x00")].count("\n")
                raise InputError(path, "binary data (NUL bytes), not FASTA text", f"line {nul_line}")
            if carry_cr:
                text = "\r" + text
                carry_cr = False
            if block and text.endswith("\r"):
                text, carry_cr = text[:-1], True
            if not text:
                if not block:
                    return
                continue
            lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            for line in lines[:-1]:
                yield line_number, line, True
                line_number += 1
            if lines[-1] or not block:
                yield line_number, lines[-1], not block
            if not block:
                return
    finally:
        source.close()


def _undecodable(error: UnicodeDecodeError) -> str:
    """Why bytes are not UTF-8: a legacy 8-bit encoding (Latin-1, cp1252) in text, or binary data."""
    data = error.object
    sample = data[max(0, error.start - 64): error.start + 64]
    printable = sum(32 <= byte < 127 or byte in (9, 10, 13) for byte in sample)
    if printable >= 0.9 * len(sample):
        byte = data[error.start]
        return (f"byte 0x{byte:02x} is not UTF-8 (a Latin-1/cp1252 character, probably in a header): save the "
                "file as UTF-8")
    return "binary data, not FASTA text"


def read_fasta(
    path: str | os.PathLike, alphabet: Alphabet = Alphabet.DNA, max_record_length: int | None = None,
) -> Iterator[FastaRecord]:
    """Stream the records of a FASTA file (plain or gzip, local or ``s3://``).

    Args:
        path: The file.
        alphabet: Letters a sequence may hold; anything else is an error naming the record.
        max_record_length: Longest record accepted, in letters (None: the limit set by
            :func:`record_length_limit`, else :data:`DEFAULT_MAX_RECORD_LENGTH`).

    Yields:
        One :class:`FastaRecord` at a time, in file order.

    Raises:
        InputError: Empty file, no records, text before the first header, a record without
            sequence, letters outside the alphabet, a record over the length limit, a gzip bomb,
            damaged gzip or binary data.
    """
    path = str(path)
    allowed = ALLOWED_LETTERS[Alphabet(alphabet)]
    limit = _max_record_length.get() if max_record_length is None else max_record_length
    # translate() with this table deletes every allowed letter: what is left is wrong.
    strip_allowed = str.maketrans("", "", "".join(allowed) + "".join(allowed).lower())
    header: tuple[str, str, int] | None = None
    header_pieces: list[str] | None = None
    parts: list[str] = []
    length = 0
    count = 0
    line_number, seen_text, at_line_start = 0, False, True
    line_offset = 0  # characters of the current line in earlier pieces (for columns)

    def where() -> str:
        return f"record {count} '{header[0]}' (line {header[2]})"

    def finish() -> FastaRecord:
        record_id, description, line = header
        if not length:
            raise InputError(path, "has no sequence", where())
        # Pieces are upper-cased as they come: one whole-record copy fewer at the peak.
        sequence = "".join(parts)
        parts.clear()
        return FastaRecord(record_id, description, sequence, count, line)

    for line_number, piece, ends in _text_pieces(path):
        seen_text = seen_text or bool(piece)
        if header_pieces is not None:  # inside a header line longer than a block
            header_pieces.append(piece)
            if sum(map(len, header_pieces)) > MAX_HEADER_LENGTH:
                raise InputError(path, f"header longer than {MAX_HEADER_LENGTH:,} characters (is a newline "
                                 "missing after it?)", f"line {line_number}")
        elif at_line_start and piece.startswith(">"):
            if header is not None:
                yield finish()
            count += 1
            length = 0
            header_pieces = [piece]
        else:
            stripped = "".join(piece.split()) if not piece.isalpha() else piece
            if stripped:
                if header is None:
                    raise InputError(path, f"text before the first '>' header: {piece[:40]!r}",
                                     f"line {line_number}")
                wrong = stripped.translate(strip_allowed)
                if wrong:
                    _raise_bad_letter(path, piece, stripped, wrong, length, (line_number, line_offset), allowed,
                                      alphabet, where())
                length += len(stripped)
                if length > limit:
                    raise InputError(path, f"record longer than --max_record_length {limit:,} bases: raise the "
                                     "limit, or split the record", where())
                parts.append(stripped.upper())
        if ends and header_pieces is not None:
            words = "".join(header_pieces)[1:].strip().split(maxsplit=1)
            record_id = words[0] if words else f"record_{count}"
            header = (record_id, words[1] if len(words) > 1 else "", line_number)
            header_pieces = None
        at_line_start = ends
        line_offset = 0 if ends else line_offset + len(piece)
    if header_pieces is not None:
        words = "".join(header_pieces)[1:].strip().split(maxsplit=1)
        header = (words[0] if words else f"record_{count}", words[1] if len(words) > 1 else "", line_number)
    if header is not None:
        yield finish()
    elif not seen_text and line_number <= 1:
        raise InputError(path, "empty file: no FASTA records")
    else:
        raise InputError(path, "no FASTA records, only blank lines")


def _raise_bad_letter(path, piece, stripped, wrong, before, line, allowed, alphabet, where) -> None:
    """Report the first letter outside the alphabet, at its position in the record and its line and column."""
    letter = wrong[0]
    position = before + stripped.index(letter) + 1
    line_number, offset = line
    column = offset + piece.index(letter) + 1
    raise InputError(
        path,
        f"character {letter!r} at position {position} (line {line_number}, column {column}) is not a {alphabet} "
        f"sequence letter (allowed: {''.join(sorted(allowed))})",
        where,
    )
