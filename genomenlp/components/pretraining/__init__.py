"""Self-supervised pre-training of the genomicBERT encoder on unlabelled genomes, and transfer to classifiers."""
