"""Progress bars for long work, on standard error so piped output stays clean."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], description: str, enabled: bool = True, total: int | None = None) -> Iterator[T]:
    """Wrap an iterable in a tqdm bar, shown only when enabled and standard error is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=description, total=total, unit=" rec", file=sys.stderr, leave=False, mininterval=0.5)
