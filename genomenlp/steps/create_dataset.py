"""Step: build the labelled, leakage-free dataset folder."""

from pathlib import Path
from typing import Annotated

from zenml import step

from genomenlp.components import stages
from genomenlp.components.configs import DatasetConfig
from genomenlp.components.export import staging_folder
from genomenlp.components.names import Artifacts
from genomenlp.components.tokenisers.common import sequence_tokenizer_from_json


@step
def create_dataset(
    class_files: list[str],
    tokenizer_json: str,
    config: DatasetConfig,
    kmer_stride: int = 1,
    input_digests: dict | None = None,
) -> tuple[Annotated[Path, Artifacts.DATASET_DIR], Annotated[dict, Artifacts.DATASET_MANIFEST]]:
    """Split, augment and encode the class files into train/test/valid, stored as the run's dataset folder.

    Args:
        class_files: One FASTA file per class, in label order.
        tokenizer_json: The tokeniser as HF ``tokenizers`` JSON text.
        config: Split, augmentation, chunking and truncation settings.
        kmer_stride: Step between k-mer starts (k-mer tokenisers only; JSON does not record it).
        input_digests: Digests of ``class_files``; only part of the cache key (an edited file re-runs the step).

    Returns:
        The dataset folder (built in a private staging folder; the pipeline's export step copies it to
        ``output_dir``) and its manifest (rows per split and class, tokeniser, config).
    """
    tokenizer = sequence_tokenizer_from_json(tokenizer_json, Artifacts.TOKENIZER_JSON, kmer_stride)
    folder = staging_folder("dataset")
    manifest = stages.create_dataset(class_files, tokenizer, config, str(folder), show_progress=False)
    return folder, manifest
