"""genomicBERT: model factory, training loop, metrics, baselines and reports."""
