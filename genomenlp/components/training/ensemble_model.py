"""Several classifiers as one Hugging Face model: the mean of their logits.

An ensemble of the final model and the cross-validation's fold models scores higher than any one
of them (``benchmarks/README.md``, ensembles). Stored as one model folder (``config.json`` listing
every member's config, one ``model.safetensors`` holding every member's weights under
``members.N.``), it loads with ``AutoModelForSequenceClassification`` once
:func:`register_ensemble` has run, so ``predict``, ``interpret`` and the registry take it like any
other model.

The logits, not the probabilities, are averaged: a mean of the members' logits is linear in them,
so Integrated Gradients of the ensemble is the mean of each member's attributions on its own
embeddings, and still sums to the ensemble's logit difference (completeness).
"""

from __future__ import annotations

from functools import cache

ENSEMBLE_TYPE = "genomic_ensemble"


def is_ensemble(model) -> bool:
    """Whether a loaded model is an ensemble (its members are ``model.members``)."""
    return getattr(model.config, "model_type", None) == ENSEMBLE_TYPE


@cache
def ensemble_classes():
    """The config and model classes (built on first use, so importing this module costs nothing)."""
    import torch
    from torch import nn
    from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    from genomenlp.components.training.conv_bert import register_conv_bert

    class EnsembleConfig(PretrainedConfig):
        """The members' configs (dicts, each with its ``model_type``), and what every member shares."""

        model_type = ENSEMBLE_TYPE

        def __init__(self, members: list[dict] | None = None, **kwargs):
            super().__init__(**kwargs)
            self.members = list(members or [])
            if self.members:
                # What callers read off any classifier's config: the narrowest member bounds the ensemble.
                self.max_position_embeddings = min(member["max_position_embeddings"] for member in self.members)
                self.vocab_size = min(member["vocab_size"] for member in self.members)

        def member_configs(self) -> list:
            """Each member's own config object."""
            register_conv_bert()
            return [AutoConfig.for_model(**member) for member in self.members]

    class EnsembleForSequenceClassification(PreTrainedModel):
        """Members in a ``ModuleList``; logits are the mean of theirs, the loss is cross-entropy on that mean."""

        config_class = EnsembleConfig
        base_model_prefix = "members"

        def __init__(self, config):
            super().__init__(config)
            self.num_labels = config.num_labels
            self.members = nn.ModuleList(AutoModelForSequenceClassification.from_config(member)
                                         for member in config.member_configs())
            self.post_init()

        def _init_weights(self, module):
            # Every member initialises its own modules; loading replaces them all.
            pass

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **_unused):
            logits = torch.stack([member(input_ids=input_ids, attention_mask=attention_mask).logits
                                  for member in self.members]).mean(dim=0)
            loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)

    return EnsembleConfig, EnsembleForSequenceClassification


@cache
def register_ensemble() -> None:
    """Make ``AutoConfig``/``AutoModelForSequenceClassification`` know the ensemble (once per process)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from genomenlp.components.training.conv_bert import register_conv_bert

    register_conv_bert()
    config_class, model_class = ensemble_classes()
    AutoConfig.register(ENSEMBLE_TYPE, config_class)
    AutoModelForSequenceClassification.register(config_class, model_class)


def build_ensemble(members: list):
    """An ensemble holding copies of the given classifiers' weights (same labels in the same order)."""
    config_class, model_class = ensemble_classes()
    first = members[0].config
    config = config_class(members=[member.config.to_dict() for member in members], num_labels=first.num_labels,
                          id2label=dict(first.id2label), label2id=dict(first.label2id),
                          pad_token_id=first.pad_token_id)
    ensemble = model_class(config)
    for slot, member in zip(ensemble.members, members, strict=True):
        slot.load_state_dict(member.state_dict())
    return ensemble.eval()
