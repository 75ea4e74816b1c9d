"""Step: build the labelled, leakage-free dataset folder."""

from pathlib import Path
from typing import Annotated

from zenml import step

from components import stages
from components.configs import DatasetConfig
from components.errors import InputError
from components.names import Artifacts
from components.storage import is_remote
from components.tokenisers.common import sequence_tokenizer_from_json


@step
def create_dataset(
    class_files: list[str],
    tokenizer_json: str,
    config: DatasetConfig,
    output_dir: str,
    overwrite: bool = False,
    kmer_stride: int = 1,
) -> tuple[Annotated[Path, Artifacts.DATASET_DIR], Annotated[dict, Artifacts.DATASET_MANIFEST]]:
    """Split, augment and encode the class files into train/test/valid at ``output_dir``.

    Args:
        class_files: One FASTA file per class, in label order.
        tokenizer_json: The tokeniser as HF ``tokenizers`` JSON text.
        config: Split, augmentation, chunking and truncation settings.
        output_dir: The dataset folder to create (user-facing; ZenML also stores a copy).
        overwrite: Replace ``output_dir`` if it exists.
        kmer_stride: Step between k-mer starts (k-mer tokenisers only; JSON does not record it).

    Returns:
        The dataset folder and its manifest (rows per split and class, tokeniser, config).
    """
    if is_remote(output_dir):
        # A Path artifact is a local folder; object storage would need the store's copy alone.
        raise InputError(output_dir, "output_dir must be a local folder in the pipeline")
    tokenizer = sequence_tokenizer_from_json(tokenizer_json, Artifacts.TOKENIZER_JSON, kmer_stride)
    manifest = stages.create_dataset(
        class_files, tokenizer, config, output_dir, overwrite, show_progress=False
    )
    return Path(output_dir), manifest
