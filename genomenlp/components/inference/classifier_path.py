"""The classifier's logits from its embedding-layer output, computing only what the logits depend on.

A ``*ForSequenceClassification`` model reads one position of the last encoder layer: position 0
(``<s>``), through BERT's pooler or DistilBERT's pre-classifier. Every other position of the last
layer (its query, attention output and feed-forward) is computed by the library and thrown away.
Here the last layer runs its query, attention output and feed-forward for position 0 only; keys
and values still cover every position. The logits are those of the library's forward pass (same
weights, same operations; tested to float tolerance), at a fraction of the cost for shallow
models: the default 2-layer model skips about three eighths of each forward and backward pass,
which is what Integrated Gradients spends its time on.

Only the architectures :func:`~components.training.model.build_classifier` makes are supported:
BERT (post-layer-norm) and DistilBERT, both in eval mode (dropout off); the BERT with a stem or a
position readout (:mod:`~genomenlp.components.training.conv_bert`) reads every position and computes its
own logits from the same embedding output.
"""

from __future__ import annotations

from genomenlp.components.training.conv_bert import MODEL_TYPE
from genomenlp.components.training.ensemble_model import is_ensemble


def supports_classifier_path(model) -> bool:
    """Whether :func:`logits_from_embeddings` knows this model's layout."""
    return getattr(model.config, "model_type", None) in ("bert", "distilbert", MODEL_TYPE)


def embedding_output(model, input_ids):
    """The embedding layer's output (token + position (+ type) embeddings, normalised)."""
    return model.base_model.embeddings(input_ids)


def _attention(query, key, value, mask, heads: int):
    """Multi-head scaled dot-product attention; ``mask`` is boolean (batch, keys), True = attend."""
    import torch

    batch, queries, width = query.shape
    head_width = width // heads

    def split(tensor):
        return tensor.view(batch, tensor.shape[1], heads, head_width).transpose(1, 2)

    context = torch.nn.functional.scaled_dot_product_attention(split(query), split(key), split(value),
                                                               attn_mask=mask[:, None, None, :])
    return context.transpose(1, 2).reshape(batch, queries, width)


def _bert_layer(layer, hidden, mask, heads: int, first_only: bool):
    attention = layer.attention
    queries = hidden[:, :1] if first_only else hidden
    context = _attention(attention.self.query(queries), attention.self.key(hidden), attention.self.value(hidden),
                         mask, heads)
    attended = attention.output.LayerNorm(attention.output.dense(context) + queries)
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(attended))
    return layer.output.LayerNorm(layer.output.dense(inner) + attended)


def _distilbert_layer(layer, hidden, mask, heads: int, first_only: bool):
    attention = layer.attention
    queries = hidden[:, :1] if first_only else hidden
    context = _attention(attention.q_lin(queries), attention.k_lin(hidden), attention.v_lin(hidden), mask, heads)
    attended = layer.sa_layer_norm(attention.out_lin(context) + queries)
    feed_forward = layer.ffn.lin2(layer.ffn.activation(layer.ffn.lin1(attended)))
    return layer.output_layer_norm(feed_forward + attended)


def logits_from_embeddings(model, hidden, attention_mask):
    """Class logits of a BERT/DistilBERT classifier given its embedding-layer output.

    Args:
        model: ``BertForSequenceClassification`` or ``DistilBertForSequenceClassification`` in eval mode.
        hidden: Embedding-layer output, (batch, tokens, width); gradients flow through it.
        attention_mask: (batch, tokens), 1 for real tokens and 0 for padding.

    Returns:
        Logits, (batch, classes).
    """
    import torch

    if model.training:
        raise ValueError("logits_from_embeddings needs the model in eval mode (no dropout)")
    if model.config.model_type == MODEL_TYPE:
        # Its head reads every position (the mean), so there is nothing to prune.
        return model.logits_from_embeddings(hidden, attention_mask)
    mask = attention_mask.to(torch.bool)
    if model.config.model_type == "bert":
        layers, heads, step = model.bert.encoder.layer, model.config.num_attention_heads, _bert_layer
    elif model.config.model_type == "distilbert":
        layers, heads, step = model.distilbert.transformer.layer, model.config.n_heads, _distilbert_layer
    else:
        raise ValueError(f"no classifier path for model type {model.config.model_type!r}")
    for index, layer in enumerate(layers):
        hidden = step(layer, hidden, mask, heads, first_only=index == len(layers) - 1)
    first = hidden[:, 0]
    if model.config.model_type == "bert":
        return model.classifier(model.bert.pooler.activation(model.bert.pooler.dense(first)))
    return model.classifier(torch.nn.functional.relu(model.pre_classifier(first)))


def classifier_logits(model, input_ids, attention_mask):
    """Class logits of token ids: the pruned path where the layout is known, else the library's forward.

    An ensemble's are the mean of its members' logits, each member on its own pruned path.
    """
    if is_ensemble(model) and not model.training:
        import torch

        return torch.stack([classifier_logits(member, input_ids, attention_mask)
                            for member in model.members]).mean(dim=0)
    if supports_classifier_path(model) and not model.training:
        return logits_from_embeddings(model, embedding_output(model, input_ids), attention_mask)
    return model(input_ids=input_ids, attention_mask=attention_mask).logits
