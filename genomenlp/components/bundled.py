"""The bundled example data under the name the configs and the README give it: ``data/…``.

The checkout keeps it in ``data/``; an installed package carries the same files as package data
(``genomenlp/data``, a link to ``data/`` in the checkout). A relative ``data/…`` path that the working
folder does not hold names that copy, so ``genomenlp-pipeline dataset`` and the README's commands work
from any folder. A ``data/`` folder in the working folder always wins.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

BUNDLED_DATA = Path(__file__).resolve().parents[1] / "data"
BUNDLED_PREFIX = "data"


def resolve_bundled(path: str | os.PathLike) -> str:
    """``path``, or the bundled copy of a relative ``data/…`` path missing from the working folder."""
    text = str(path)
    if "://" in text or os.path.isabs(text) or os.path.exists(text):
        return text
    parts = PurePosixPath(text.replace(os.sep, "/")).parts
    if len(parts) < 2 or parts[0] != BUNDLED_PREFIX:
        return text
    candidate = BUNDLED_DATA.joinpath(*parts[1:])
    return str(candidate) if candidate.exists() else text
