"""Step: build an overlapping k-mer tokeniser."""

from typing import Annotated

from zenml import step

from genomenlp.components.configs import KmerConfig
from genomenlp.components.names import Artifacts
from genomenlp.components.stages import make_kmer_tokenizer


@step
def build_kmer_tokeniser(
    class_files: list[str], config: KmerConfig, input_digests: dict | None = None
) -> Annotated[str, Artifacts.TOKENIZER_JSON]:
    """Build a k-mer vocabulary after checking every class file reads cleanly.

    Args:
        class_files: One FASTA file per class (local or ``s3://``).
        config: k, stride and alphabet.
        input_digests: Digests of ``class_files``; only part of the cache key (an edited file re-runs the step).

    Returns:
        The tokeniser as HF ``tokenizers`` JSON text. The stride is not part of the JSON: pass
        ``config.stride`` on to the dataset step as ``kmer_stride``.
    """
    return make_kmer_tokenizer(class_files, config).to_json()
