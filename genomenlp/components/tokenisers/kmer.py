"""Overlapping k-mer tokeniser with a deterministic vocabulary.

Nucleotide vocabularies hold every k-mer over ACGT in lexicographic order, whatever the
corpus, so the same k always gives the same ids (and byte-identical JSON); k-mers holding other
IUPAC codes map to ``<unk>``. Protein vocabularies hold the k-mers seen in the corpus, sorted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from genomenlp.components.tokenisers.common import (  # noqa: F401 - kmerise is imported from here too
    SPECIAL_TOKENS,
    UNK,
    SequenceTokenizer,
    TokenizerKind,
    add_cls_post_processor,
    kmerise,
)

MAX_NUCLEOTIDE_K = 8  # 4**8 = 65,536 tokens; beyond that the embedding table dwarfs the model


def build_kmer_tokenizer(
    k: int, stride: int = 1, protein_corpus: Iterable[str] | None = None
) -> SequenceTokenizer:
    """Build a k-mer tokeniser (WordLevel over whitespace-separated k-mers, ``<s>``/``</s>`` added).

    Args:
        k: k-mer length (1–8 for nucleotides).
        stride: Step between k-mer starts (1 = fully overlapping, k = disjoint).
        protein_corpus: Protein sequences whose k-mers form the vocabulary; ``None`` for nucleotides.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers

    if not 1 <= stride <= k:
        raise ValueError(f"stride must be between 1 and k={k}, got {stride}")
    if protein_corpus is None:
        if not 1 <= k <= MAX_NUCLEOTIDE_K:
            raise ValueError(f"k must be between 1 and {MAX_NUCLEOTIDE_K} for nucleotides, got {k}")
        words = ("".join(letters) for letters in itertools.product("ACGT", repeat=k))
    else:
        seen: set[str] = set()
        for sequence in protein_corpus:
            seen.update(kmerise(sequence, k, stride))
        words = iter(sorted(seen))
    vocab = {token: index for index, token in enumerate(itertools.chain(SPECIAL_TOKENS, words))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    add_cls_post_processor(tokenizer)
    return SequenceTokenizer(tokenizer, TokenizerKind.KMER, k, stride)
