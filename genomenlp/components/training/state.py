"""What a training run leaves behind and how it ends: its result, its resume state, and its failures.

Kept free of torch and transformers so commands and the search can name these without loading them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from genomenlp.components.errors import InputError

# An epoch whose mean training loss is this many times chance level (ln of the class count) is
# not learning but blowing up: stop it rather than spend the remaining epochs. (3, not the hand-written
# loop's 4: HF's warm-up starts at 0 and rounds its steps up, which softens a blow-up's first steps; at
# lr 1.0 the tiny test model averages 3.9x chance, with single steps at 13x.)
DIVERGENCE_FACTOR = 3.0
# History column: 1 when that validation's predictions were one class or at chance (a Katib metric
# line too, so its early stopping can act on it).
DEGENERATE = "eval_degenerate"
# The run's own resume record beside the Trainer checkpoints: fingerprint, history, best validation
# and the checkpoint folder they belong to. Written after that checkpoint is complete.
STATE_FILE = "state.json"


class TrainingDiverged(InputError):
    """The loss became NaN or infinite, or far above chance (usually a learning rate far too high)."""


class PruneRun(Exception):
    """Raised by an ``on_epoch`` callback to stop a run after this validation (a search pruning a poor trial)."""


@dataclass
class FitResult:
    """What training produced: one history row per validation, the one chosen on valid, and why it stopped early.

    Attributes:
        history: One row per validation (``epoch`` is fractional when validating every N steps).
        best_index: Position in ``history`` of the best validation (-1: none yet).
        best_value: Its selection metric.
        model_index: Position in ``history`` of the weights training ended with (the best one when
            ``load_best_model_at_end``, else the last).
        resumed_from: Epoch of the checkpoint the run resumed from (0: a fresh run).
        collapsed: Set when no validation ever showed signal (see ``genomenlp.components.training.collapse``).
        stopped_early: Set when a run that had shown signal fell to one class or chance for good.
    """

    history: list[dict] = field(default_factory=list)
    best_index: int = -1
    best_value: float = float("nan")
    model_index: int = -1
    resumed_from: float = 0
    collapsed: str | None = None
    stopped_early: str | None = None

    @property
    def best_epoch(self) -> float:
        """Epoch of the best validation (0 when there was none)."""
        return self.history[self.best_index]["epoch"] if self.best_index >= 0 else 0

    def to_state(self, fingerprint: str, checkpoint: str) -> dict:
        """The resume record: what a resumed run needs beyond the Trainer checkpoint it names."""
        return {"fingerprint": fingerprint, "checkpoint": checkpoint,
                "epoch": self.history[-1]["epoch"] if self.history else 0, "history": self.history,
                "best_index": self.best_index, "best_value": self.best_value, "collapsed": self.collapsed,
                "stopped_early": self.stopped_early}

    @classmethod
    def from_state(cls, state: dict) -> FitResult:
        """The result so far of the run a resume record describes."""
        return cls(state["history"], state["best_index"], state["best_value"], resumed_from=state["epoch"],
                   collapsed=state.get("collapsed"), stopped_early=state.get("stopped_early"))


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader sees the old or the new file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_json_atomically(path: Path, value, indent: int | None = None) -> None:
    """:func:`write_text_atomically` of a JSON document."""
    write_text_atomically(path, json.dumps(value, indent=indent, default=str))


def is_main_process() -> bool:
    """Whether this process writes the run's files: the only one, or rank 0 of a ``torchrun``/``accelerate`` job."""
    return int(os.environ.get("RANK", "0")) == 0
