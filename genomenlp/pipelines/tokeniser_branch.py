"""The tokeniser branch shared by the dataset, training and pre-training pipelines (wiring only)."""

from genomenlp.components.configs import KmerConfig, TokeniseConfig
from genomenlp.steps.build_kmer_tokeniser import build_kmer_tokeniser
from genomenlp.steps.train_tokeniser import train_tokeniser


def tokeniser_step(files: list[str], tokenise: TokeniseConfig, kmer: KmerConfig | None, digests):
    """Wire the step that makes the tokeniser: k-mers when ``kmer`` is given, else a Unigram learnt from ``files``.

    Called while a pipeline is defined, so ``kmer`` is the run's parameter value and only one of the two
    steps joins the run.

    Returns:
        The step's ``tokenizer.json`` output and the k-mer stride the dataset step needs (1 for Unigram).
    """
    if kmer is None:
        return train_tokeniser(files, tokenise, digests), 1
    return build_kmer_tokeniser(files, kmer, digests), kmer.stride
