"""Collapse: a classifier whose validation predictions fall to one class or score no better than chance.

A learning rate far too high (the tutorial's sweep reaches 0.1) drives a transformer to predict one
class for every input: the loss stays near ln(classes), weighted F1 sits at the majority share and
MCC at 0. Such a run is not slow, it is finished; training it to its last epoch wastes the budget,
and choosing or registering it crowns a constant predictor.
"""

from __future__ import annotations

import numpy as np

from genomenlp.components.errors import InputError

# A validation figure within this of chance still counts as chance (float noise, not signal).
CHANCE_TOLERANCE = 1e-6
# Above this, AdamW on a transformer classifier usually diverges or collapses (the tutorial's sweep reaches 0.1).
HIGH_LEARNING_RATE = 5e-3


class TrainingCollapsed(InputError):
    """A run collapsed (see :func:`degenerate_reason`) and its caller asked not to keep it."""


def chance_f1(labels: np.ndarray) -> float:
    """Weighted F1 of guessing at random in the class shares: the sum of squared shares (0.5 for two balanced)."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    shares = counts / counts.sum()
    return float(np.sum(shares**2))


def degenerate_reason(labels: np.ndarray, probabilities: np.ndarray, f1: float) -> str | None:
    """Why one validation result is degenerate, or ``None`` when it shows signal.

    Args:
        labels: True class ids of the validation rows.
        probabilities: Predicted class probabilities, shape (rows, classes).
        f1: The weighted F1 of those predictions.
    """
    predicted = np.unique(np.asarray(probabilities).argmax(axis=1))
    if len(predicted) == 1 and len(np.unique(labels)) > 1:
        return f"every validation prediction is class {int(predicted[0])}"
    chance = chance_f1(labels)
    if f1 <= chance + CHANCE_TOLERANCE:
        return f"validation F1 {f1:.3f} is no better than chance ({chance:.3f})"
    return None


def collapse_message(reason: str, epochs: int, learning_rate: float) -> str:
    """The one line that says a run collapsed, after how many epochs, and what to change."""
    span = "epoch 1" if epochs == 1 else f"epochs 1-{epochs}"
    cause = ("a learning rate this high is the usual cause" if learning_rate > HIGH_LEARNING_RATE
             else "at a learning rate this small the model may need more epochs or data")
    return f"collapsed: {reason} in {span} (learning_rate {learning_rate:g}: {cause})"
