"""Using trained classifiers: batched, streamed prediction and Integrated Gradients attributions."""

from genomenlp.components.inference.config import InterpretConfig, PredictConfig
from genomenlp.components.inference.output import safe_file_stem

__all__ = ["InterpretConfig", "PredictConfig", "safe_file_stem"]
