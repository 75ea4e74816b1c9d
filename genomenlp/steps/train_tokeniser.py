"""Step: learn a Unigram tokeniser from one FASTA file per class."""

from typing import Annotated

from zenml import step

from genomenlp.components.configs import TokeniseConfig
from genomenlp.components.names import Artifacts
from genomenlp.components.stages import learn_tokenizer


@step
def train_tokeniser(
    class_files: list[str], config: TokeniseConfig, input_digests: dict | None = None
) -> Annotated[str, Artifacts.TOKENIZER_JSON]:
    """Learn a Unigram vocabulary from the sequences of every class file.

    Args:
        class_files: One FASTA file per class (local or ``s3://``).
        config: Vocabulary size, piece lengths and alphabet.
        input_digests: Digests of ``class_files``; only part of the cache key (an edited file re-runs the step).

    Returns:
        The tokeniser as HF ``tokenizers`` JSON text.
    """
    # Progress bars would interleave with ZenML's step logs.
    return learn_tokenizer(class_files, config, show_progress=False).to_json()
