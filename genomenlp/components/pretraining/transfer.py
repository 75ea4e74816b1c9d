"""Starting a classifier from a pre-trained encoder: its base model (embeddings, layers) is loaded, the head is new.

What counts as the head: everything outside the HF base model — the classifier layer, DistilBERT's
``pre_classifier`` and BERT's pooler (the MLM model has no pooler, so it starts fresh too).
"""

from __future__ import annotations

import json
from pathlib import Path

from genomenlp.components.errors import InputError
from genomenlp.components.model_io import MODEL_METADATA, resolve_model_path
from genomenlp.components.tokenisers.common import SequenceTokenizer, sequence_tokenizer_from_json
from genomenlp.components.training.config import Architecture, ModelConfig
from genomenlp.components.training.conv_bert import MODEL_TYPE as CONV_BERT_TYPE

# HF config key → our ModelConfig field (the flag a user changes to match), per architecture.
SHAPE_KEYS = {
    "bert": {"hidden_size": "hidden_size", "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
             "intermediate_size": "intermediate_size", "max_position_embeddings": "max_positions"},
    "distilbert": {"dim": "hidden_size", "n_layers": "num_layers", "n_heads": "num_heads",
                   "hidden_dim": "intermediate_size", "max_position_embeddings": "max_positions"},
}
WEIGHTS_FILE = "model.safetensors"
# Classifier model type → the encoder type it is fine-tuned from, where they differ.
ENCODER_TYPE = {CONV_BERT_TYPE: "bert"}


def _encoder_folder(encoder_dir: str) -> Path:
    path = Path(resolve_model_path(str(encoder_dir)))
    if not (path / "config.json").is_file() or not (path / WEIGHTS_FILE).is_file():
        raise InputError(str(encoder_dir), "not a pre-trained encoder folder: expected config.json and "
                         "model.safetensors (pretrain writes OUT/encoder)")
    return path


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(str(path), f"not valid JSON ({error.msg} at line {error.lineno})") from None


def _same_tokenizer(path: Path, tokenizer: SequenceTokenizer) -> bool:
    """Whether the encoder was pre-trained with ``tokenizer``.

    ``pretrain`` records the source tokeniser's hash; the folder's ``tokenizer.json`` is the
    ``transformers`` re-serialisation, whose bytes differ, so without the record the vocabularies
    are compared.
    """
    metadata = _read_json(path / MODEL_METADATA) if (path / MODEL_METADATA).exists() else {}
    recorded = (metadata.get("tokenizer") or {}).get("sha256")
    if recorded:
        # The k-mer stride is not in the tokeniser JSON; the same vocabulary read at another stride is another input.
        stride = (metadata.get("tokenizer") or {}).get("stride", tokenizer.stride)
        return recorded == tokenizer.sha256() and stride == tokenizer.stride
    if not (path / "tokenizer.json").exists():
        return True
    stride = (metadata.get("tokenizer") or {}).get("stride", 1)
    theirs = sequence_tokenizer_from_json((path / "tokenizer.json").read_text(), str(path / "tokenizer.json"), stride)
    return theirs.tokenizer.get_vocab() == tokenizer.tokenizer.get_vocab() and theirs.kind is tokenizer.kind


def encoder_model_config(encoder_dir: str) -> ModelConfig:
    """The encoder's shape as a :class:`ModelConfig`, so a classifier can be built to match it."""
    path = _encoder_folder(encoder_dir)
    metadata = _read_json(path / MODEL_METADATA) if (path / MODEL_METADATA).exists() else {}
    if metadata.get("model"):
        return ModelConfig(**metadata["model"])
    hf_config = _read_json(path / "config.json")
    model_type = hf_config.get("model_type")
    if model_type not in SHAPE_KEYS:
        raise InputError(str(encoder_dir), f"encoder architecture {model_type!r} is not one of {sorted(SHAPE_KEYS)}")
    return ModelConfig(architecture=Architecture(model_type),
                       **{ours: hf_config[theirs] for theirs, ours in SHAPE_KEYS[model_type].items()})


def init_classifier_from_encoder(classifier, encoder_dir: str, tokenizer: SequenceTokenizer | None = None) -> dict:
    """Load a pre-trained encoder's base-model weights into a freshly built classifier, in place.

    Args:
        classifier: A ``BertForSequenceClassification`` or ``DistilBertForSequenceClassification``.
        encoder_dir: A folder written by ``pretrain`` (``OUT/encoder``), or a reference a registered
            resolver turns into one (``registry:NAME@VERSION`` with the ZenML layer loaded).
        tokenizer: The tokeniser the fine-tuning data is encoded with; when given, it must be the
            one the encoder was pre-trained with.

    Returns:
        ``encoder`` (the folder), ``loaded_tensors`` and ``loaded_parameters`` (copied from the
        encoder), ``fresh_tensors`` and ``fresh_parameters`` (left at their new initialisation),
        and ``fresh`` (the names of those tensors).

    Raises:
        InputError: Not an encoder folder, another architecture, another shape, vocabulary or
            padding id, or another tokeniser; one line naming what differs and the flag to change.
    """
    path = _encoder_folder(encoder_dir)
    hf_config = _read_json(path / "config.json")
    # A BERT with a stem or a position readout holds a plain BERT encoder; those extras start fresh.
    theirs, ours = hf_config.get("model_type"), ENCODER_TYPE.get(classifier.config.model_type,
                                                                 classifier.config.model_type)
    if theirs != ours:
        raise InputError(str(encoder_dir),
                         f"the encoder is {theirs}, the classifier {ours}: pass --architecture {theirs}")
    for key, flag in SHAPE_KEYS[ours].items():
        if hf_config.get(key) != getattr(classifier.config, key):
            raise InputError(str(encoder_dir), f"the encoder has {flag} {hf_config.get(key)}, the classifier "
                             f"{getattr(classifier.config, key)}: pass --{flag} {hf_config.get(key)} "
                             "(or leave the model flags unset)")
    for key in ("vocab_size", "pad_token_id"):
        if hf_config.get(key) != getattr(classifier.config, key):
            raise InputError(str(encoder_dir), f"the encoder has {key} {hf_config.get(key)}, the classifier "
                             f"{getattr(classifier.config, key)}: fine-tune with the tokeniser the encoder was "
                             "pre-trained with")
    if tokenizer is not None and not _same_tokenizer(path, tokenizer):
        raise InputError(str(encoder_dir), "was pre-trained with another tokeniser than this data's; "
                         "encode the dataset with the tokeniser the encoder was pre-trained with")

    from safetensors import safe_open

    prefix = f"{classifier.base_model_prefix}."
    with safe_open(str(path / WEIGHTS_FILE), framework="pt") as handle:
        weights = {name[len(prefix):]: handle.get_tensor(name) for name in handle.keys() if name.startswith(prefix)}
    if not weights:
        raise InputError(str(encoder_dir), f"holds no {prefix}* weights: not a {ours} encoder")
    try:
        missing, unexpected = classifier.base_model.load_state_dict(weights, strict=False)
    except RuntimeError as error:
        # Only a tensor shape the config checks above did not cover gets here.
        problem = str(error).splitlines()[-1].strip()
        raise InputError(str(encoder_dir), f"weights do not fit the classifier: {problem}") from None
    if unexpected:
        raise InputError(str(encoder_dir), f"holds weights the classifier lacks ({', '.join(sorted(unexpected)[:3])})")
    # Only the pooler (absent from MLM models) may be missing from the encoder's base model.
    kept = [name for name in missing if not name.startswith("pooler.")]
    if kept:
        raise InputError(str(encoder_dir), f"lacks encoder weights ({', '.join(sorted(kept)[:3])})")
    loaded = {prefix + name for name in weights}
    fresh = sorted(name for name, _ in classifier.named_parameters() if name not in loaded)
    parameters = dict(classifier.named_parameters())
    return {
        "encoder": str(path),
        "loaded_tensors": len(weights),
        "loaded_parameters": sum(tensor.numel() for tensor in weights.values()),
        "fresh_tensors": len(fresh),
        "fresh_parameters": sum(parameters[name].numel() for name in fresh),
        "fresh": fresh,
    }
