"""Reading a trained model folder (``train``'s ``model_files/``), and resolving model references.

A reference is a folder path, or ``SCHEME:REST`` for a scheme some outer layer registered (the
ZenML layer registers ``registry:NAME[@VERSION|@STAGE]``); this module itself knows only folders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genomenlp.components.errors import InputError
from genomenlp.components.tokenisers.common import SequenceTokenizer, sequence_tokenizer_from_json

MODEL_METADATA = "genomenlp.json"
# Scheme → function turning the rest of a reference into a local model folder.
MODEL_RESOLVERS: dict[str, Callable[[str], str]] = {}


@dataclass
class LoadedModel:
    """A classifier with everything needed to use it.

    Attributes:
        model: The ``*ForSequenceClassification`` module (eval mode, on the CPU).
        tokenizer: The tokeniser it was trained with (k-mer stride restored).
        label_names: Class names by label id.
        metadata: ``genomenlp.json``: tokeniser, model and training settings.
        path: The folder it came from.
    """

    model: object
    tokenizer: SequenceTokenizer
    label_names: list[str]
    metadata: dict
    path: str

    @property
    def max_tokens(self) -> int:
        """Longest input the model takes, in tokens (``<s>`` and ``</s>`` included)."""
        return int(self.model.config.max_position_embeddings)


def resolve_model_path(reference: str) -> str:
    """A local model folder for a reference (folder path or ``scheme:…`` with a registered resolver)."""
    scheme, separator, rest = str(reference).partition(":")
    if separator and scheme in MODEL_RESOLVERS:
        return MODEL_RESOLVERS[scheme](rest)
    if separator and scheme == "registry":
        raise InputError(reference, "registry references need the ZenML layer (use the installed command)")
    return str(reference)


def _read_json(path: Path, reference: str) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise InputError(str(path), f"is damaged ({str(error).splitlines()[0][:120]}): copy the model folder again "
                         f"or re-run train; {reference} cannot be used as it is") from None
    if not isinstance(content, dict):
        raise InputError(str(path), "is damaged (not a JSON object): copy the model folder again or re-run train")
    return content


def load_model(reference: str) -> LoadedModel:
    """Load a model folder written by ``train``/``sweep`` (safetensors only, never pickle).

    A damaged folder (truncated weights, corrupt ``config.json`` or metadata, a tokeniser that does
    not fit the embeddings) is one :class:`InputError` naming the file and what to do.
    """
    path = Path(resolve_model_path(reference))
    if not (path / "config.json").exists() or not (path / "model.safetensors").exists():
        raise InputError(str(reference), "not a model folder: expected config.json and model.safetensors "
                         "(train writes them to OUT/model_files)")
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    _read_json(path / "config.json", reference)
    from genomenlp.components.training.ensemble_model import register_ensemble

    # The project's own model types (convolutional-stem BERT, ensembles) load like the library's.
    register_ensemble()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as error:
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise InputError(str(path / "model.safetensors"), f"cannot be loaded ({reason}): the weights are truncated "
                         "or do not match config.json; copy the model folder again or re-run train") from None
    model.eval()
    metadata = _read_json(path / MODEL_METADATA, reference) if (path / MODEL_METADATA).exists() else {}
    if metadata.get("kind") == "encoder":
        raise InputError(str(reference), "is a pre-trained encoder without a classification head: fine-tune it "
                         "first (train --init_from)")
    stride = (metadata.get("tokenizer") or {}).get("stride", 1)
    tokenizer_path = path / "tokenizer.json"
    if not tokenizer_path.exists():
        raise InputError(str(reference), "has no tokenizer.json: copy the whole model folder (train writes it)")
    tokenizer = sequence_tokenizer_from_json(tokenizer_path.read_text(encoding="utf-8", errors="replace"),
                                             str(tokenizer_path), stride)
    vocab_size = tokenizer.tokenizer.get_vocab_size()
    if vocab_size > model.config.vocab_size:
        raise InputError(str(tokenizer_path), f"does not match the model: its vocabulary has {vocab_size:,} tokens, "
                         f"the model's embeddings {model.config.vocab_size:,}; put back the tokenizer.json the model "
                         "was trained with")
    names = metadata.get("label_names") or [model.config.id2label[i] for i in range(model.config.num_labels)]
    if len(names) != model.config.num_labels:
        raise InputError(str(path / MODEL_METADATA), f"names {len(names)} classes for a model of "
                         f"{model.config.num_labels}: copy the model folder again or re-run train")
    return LoadedModel(model, tokenizer, list(names), metadata, str(path))
