"""Using trained classifiers: batched, streamed prediction and Integrated Gradients attributions."""

from components.inference.config import InterpretConfig, PredictConfig
from components.inference.output import safe_file_stem

__all__ = ["InterpretConfig", "PredictConfig", "safe_file_stem"]
