"""Labelled, leakage-free datasets from one FASTA file per class."""
