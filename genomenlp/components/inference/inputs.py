"""What ``predict`` and ``interpret`` read: FASTA files or raw sequences typed on the command line."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from genomenlp.components.bundled import resolve_bundled
from genomenlp.components.errors import InputError
from genomenlp.components.fasta import ALLOWED_LETTERS, Alphabet, read_fasta
from genomenlp.components.storage import is_remote

COMMAND_LINE = "command line"


@dataclass(frozen=True)
class InputSource:
    """One positional argument: a FASTA file or one raw sequence.

    Attributes:
        argument: The argument as given.
        path: The FASTA file, when the argument names one.
        sequence: The upper-cased sequence, when the argument is a raw sequence.
        record_id: Id given to a raw sequence (``seq_1``, ``seq_2`` … in argument order).
        label: True class name of everything in this input, when the user gave one.
    """

    argument: str
    path: str | None = None
    sequence: str | None = None
    record_id: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class InputRecord:
    """One sequence to classify.

    Attributes:
        id: Record id (FASTA header's first word, or ``seq_N``): data, never used as a path.
        sequence: Upper-case letters.
        source: The file it came from, or ``command line``.
        label: True class name, when known.
    """

    id: str
    sequence: str
    source: str
    label: str | None = None


def model_alphabet(metadata: dict) -> Alphabet:
    """The alphabet a model was trained on, read from its ``genomenlp.json`` (DNA when unrecorded)."""
    for section in ("dataset", "tokenizer"):
        value = (metadata.get(section) or {}).get("alphabet")
        if value in {member.value for member in Alphabet}:
            return Alphabet(value)
    return Alphabet.DNA


def _is_raw_sequence(argument: str, alphabet: Alphabet) -> bool:
    return bool(argument) and set(argument.upper()) <= ALLOWED_LETTERS[alphabet]


def resolve_inputs(arguments: list[str], alphabet: Alphabet, labels: list[str] | None = None) -> list[InputSource]:
    """Sort positional arguments into FASTA files and raw sequences, checking them before any work.

    An existing file (or an ``s3://`` URL) is a FASTA file; anything else must be a sequence of
    ``alphabet`` letters. A file wins over a sequence of the same spelling.

    Args:
        arguments: The positional arguments, in order.
        alphabet: Letters a raw sequence may hold.
        labels: True class names, one per argument, or ``None``.

    Raises:
        InputError: No inputs, a label count that differs from the input count, a folder, or an
            argument that is neither a file nor a sequence.
    """
    if not arguments:
        raise InputError("SEQS", "give at least one FASTA file or sequence")
    if labels is not None and len(labels) != len(arguments):
        raise InputError("--true_labels", f"got {len(labels)} names for {len(arguments)} inputs: give one true label "
                         "per input file or sequence, in the same order")
    sources, raw_count = [], 0
    for index, argument in enumerate(arguments):
        label = labels[index] if labels is not None else None
        if is_remote(argument) or os.path.isfile(resolve_bundled(argument)):
            sources.append(InputSource(argument, path=resolve_bundled(argument), label=label))
        elif os.path.isdir(argument):
            raise InputError(argument, "is a folder; expected a FASTA file or a sequence")
        elif _is_raw_sequence(argument, alphabet):
            raw_count += 1
            sources.append(InputSource(argument, sequence=argument.upper(), record_id=f"seq_{raw_count}", label=label))
        else:
            shown = argument if len(argument) <= 60 else argument[:57] + "..."
            raise InputError(shown, f"no such file, and not a {alphabet} sequence "
                             f"(allowed letters: {''.join(sorted(ALLOWED_LETTERS[alphabet]))})")
    return sources


def iter_records(sources: Iterable[InputSource], alphabet: Alphabet) -> Iterator[InputRecord]:
    """Stream every record of every input, one at a time, in argument and file order."""
    for source in sources:
        if source.sequence is not None:
            yield InputRecord(source.record_id, source.sequence, COMMAND_LINE, source.label)
            continue
        for record in read_fasta(source.path, alphabet):
            yield InputRecord(record.id, record.sequence, source.path, source.label)
