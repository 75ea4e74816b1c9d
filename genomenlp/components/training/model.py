"""The genomicBERT factory: a randomly initialised BERT-family classifier built from a config."""

from __future__ import annotations

from genomenlp.components.tokenisers.common import BOS, EOS, PAD
from genomenlp.components.training.config import Architecture, ModelConfig


def build_classifier(config: ModelConfig, vocab_size: int, label_names: list[str], token_ids: dict[str, int]):
    """A ``*ForSequenceClassification`` model; it pools position 0, which our tokenisers fill with ``<s>``.

    With ``conv_kernel`` or ``position_readout``, a BERT with a convolutional stem and/or a per-position
    readout (:mod:`.conv_bert`) that also pools the mean.

    Args:
        config: Architecture and shape.
        vocab_size: Size of the tokeniser's vocabulary.
        label_names: Class names; their order gives the label ids.
        token_ids: Ids of ``<s>``, ``</s>`` and ``<pad>`` in the tokeniser.
    """
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: index for index, name in enumerate(label_names)},
    }
    special = {"pad_token_id": token_ids[PAD], "bos_token_id": token_ids[BOS], "eos_token_id": token_ids[EOS]}
    if config.architecture is Architecture.BERT:
        config_class, model_class = BertConfig, BertForSequenceClassification
        if config.conv_kernel or config.position_readout:
            from genomenlp.components.training.conv_bert import conv_bert_classes, register_conv_bert

            register_conv_bert()
            config_class, model_class = conv_bert_classes()
            special = {**special, "conv_kernel": config.conv_kernel, "position_readout": config.position_readout}
        hf_config = config_class(
            vocab_size=vocab_size,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads,
            intermediate_size=config.intermediate_size,
            max_position_embeddings=config.max_positions,
            hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout,
            type_vocab_size=2,
            **labels,
            **special,
        )
        return model_class(hf_config)
    hf_config = DistilBertConfig(
        vocab_size=vocab_size,
        dim=config.hidden_size,
        n_layers=config.num_layers,
        n_heads=config.num_heads,
        hidden_dim=config.intermediate_size,
        max_position_embeddings=config.max_positions,
        dropout=config.dropout,
        attention_dropout=config.dropout,
        seq_classif_dropout=config.dropout,
        **labels,
        **special,
    )
    return DistilBertForSequenceClassification(hf_config)
