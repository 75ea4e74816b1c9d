"""genomicBERT: model factory, training on transformers.Trainer, metrics, baselines and reports."""
