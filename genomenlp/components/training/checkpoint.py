"""Reading a run's checkpoint folder back: a damaged one is one line saying how to start afresh."""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterator
from pathlib import Path

from genomenlp.components.errors import InputError


@contextlib.contextmanager
def unreadable_checkpoint_is_input_error(directory: Path) -> Iterator[None]:
    """Turn a checkpoint that cannot be read (truncated JSON or weights, a pickle) into an :class:`InputError`.

    Optimizer state is read with ``torch.load(weights_only=True)``, which refuses any pickled object
    rather than running it; that refusal, like a truncated file, lands here.

    Args:
        directory: The checkpoint folder (named in the message, with what to do).
    """
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, EOFError, ValueError, KeyError, TypeError, RuntimeError, pickle.UnpicklingError,
            SafetensorError) as error:
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise InputError(str(directory), f"holds a checkpoint that cannot be read ({reason}): pass --overwrite to "
                         f"start afresh, or delete {directory}") from None
