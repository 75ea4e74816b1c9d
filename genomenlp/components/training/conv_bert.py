"""BERT for motifs at fixed places: an optional convolutional stem and an optional per-position readout.

Promoters are recognised by short motifs (the −10 and −35 boxes) at roughly fixed distances from
the transcription start. A convolution over neighbouring tokens (``conv_kernel``) finds such motifs
directly, where plain self-attention has to learn them from pairs of tokens. A readout with its own
weights for every position (``position_readout``) keeps where a feature occurs, which pooling
throws away. The pooled head reads the ``<s>`` token and the mean over the sequence.

It is a Hugging Face model like the others (``save_pretrained`` to safetensors, ``Trainer``,
``AutoModelForSequenceClassification`` once :func:`register_conv_bert` has run), with the
embedding layer of BERT at ``base_model.embeddings``, so Integrated Gradients attributes the same
token embeddings as for plain BERT.
"""

from __future__ import annotations

from functools import cache

MODEL_TYPE = "genomic_conv_bert"


@cache
def conv_bert_classes():
    """The config and model classes (built on first use, so importing this module costs nothing)."""
    import torch
    from torch import nn
    from transformers import BertConfig, BertModel, BertPreTrainedModel
    from transformers.masking_utils import create_bidirectional_mask
    from transformers.modeling_outputs import SequenceClassifierOutput

    class StemBertConfig(BertConfig):
        """``BertConfig`` plus the stem's width in tokens (odd; 0: no stem) and the readout's features per position."""

        model_type = MODEL_TYPE

        def __init__(self, conv_kernel: int = 9, position_readout: int = 0, **kwargs):
            super().__init__(**kwargs)
            self.conv_kernel = conv_kernel
            self.position_readout = position_readout

    class ConvStem(nn.Module):
        """A residual 1-D convolution across positions; padded positions neither give nor take."""

        def __init__(self, config):
            super().__init__()
            self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, config.conv_kernel,
                                  padding=config.conv_kernel // 2)
            self.activation = nn.GELU()
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

        def forward(self, hidden, mask):
            keep = mask.unsqueeze(-1).to(hidden.dtype)
            motifs = self.conv((hidden * keep).transpose(1, 2)).transpose(1, 2)
            return self.norm(hidden + self.dropout(self.activation(motifs))) * keep

    class PositionReadout(nn.Module):
        """Logits from a few features of every position, each position with its own weights.

        What a motif means depends on where it sits (a −10 box 10 bases upstream of the start, not
        anywhere); pooling throws that away, this keeps it. Padded positions add nothing, and the
        weights start at zero, so training starts from the pooled head alone.
        """

        def __init__(self, config):
            super().__init__()
            self.project = nn.Linear(config.hidden_size, config.position_readout)
            self.activation = nn.GELU()
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.weight = nn.Parameter(
                torch.zeros(config.max_position_embeddings, config.position_readout, config.num_labels))

        def forward(self, hidden, mask):
            features = self.dropout(self.activation(self.project(hidden))) * mask.unsqueeze(-1).to(hidden.dtype)
            return torch.einsum("bpf,pfc->bc", features, self.weight[: hidden.shape[1]])

    class StemBertForSequenceClassification(BertPreTrainedModel):
        """Embeddings → convolutional stem → BERT encoder → [``<s>``; mean] (+ per-position readout) → logits."""

        config_class = StemBertConfig

        def __init__(self, config):
            super().__init__(config)
            self.num_labels = config.num_labels
            self.bert = BertModel(config, add_pooling_layer=False)
            self.stem = ConvStem(config) if config.conv_kernel else None
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)
            self.readout = PositionReadout(config) if config.position_readout else None
            self.post_init()

        def _init_weights(self, module):
            super()._init_weights(module)
            if isinstance(module, PositionReadout):
                nn.init.zeros_(module.weight)

        def logits_from_embeddings(self, hidden, attention_mask):
            """Class logits from the embedding layer's output (what Integrated Gradients perturbs)."""
            if self.stem is not None:
                hidden = self.stem(hidden, attention_mask)
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)
            hidden = self.bert.encoder(hidden, attention_mask=mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            logits = self.classifier(self.dropout(torch.cat([hidden[:, 0], mean], dim=-1)))
            return logits + self.readout(hidden, attention_mask) if self.readout is not None else logits

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **_unused):
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            logits = self.logits_from_embeddings(hidden, attention_mask)
            loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)

    return StemBertConfig, StemBertForSequenceClassification


@cache
def register_conv_bert() -> None:
    """Make ``AutoConfig``/``AutoModelForSequenceClassification`` know the model type (once per process)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config_class, model_class = conv_bert_classes()
    AutoConfig.register(MODEL_TYPE, config_class)
    AutoModelForSequenceClassification.register(config_class, model_class)
