"""The dataset pipeline: tokeniser (Unigram or k-mer) → labelled, leakage-free dataset folder."""

from zenml import pipeline
from zenml.enums import ExecutionMode

from genomenlp.components.configs import DatasetConfig, KmerConfig, TokeniseConfig
from genomenlp.components.names import Pipelines
from genomenlp.pipelines.tokeniser_branch import tokeniser_step
from genomenlp.steps.create_dataset import create_dataset
from genomenlp.steps.export_outputs import export_outputs
from genomenlp.steps.fingerprint_inputs import fingerprint_inputs

# Module-level defaults: frozen models, so sharing one instance across calls is safe.
DEFAULT_TOKENISE = TokeniseConfig()
DEFAULT_DATASET = DatasetConfig()


# Cached steps exchange stored folders; export_outputs (never cached) writes output_dir.
@pipeline(name=Pipelines.DATASET, enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def dataset_pipeline(
    class_files: list[str],
    output_dir: str,
    tokenise: TokeniseConfig = DEFAULT_TOKENISE,
    kmer: KmerConfig | None = None,
    dataset: DatasetConfig = DEFAULT_DATASET,
    overwrite: bool = False,
) -> None:
    """Learn or build a tokeniser from the class files, then write the encoded dataset.

    Args:
        class_files: One FASTA file per class, in label order.
        output_dir: The dataset folder to create.
        tokenise: Unigram settings (used when ``kmer`` is not given).
        kmer: k-mer settings; giving them selects the k-mer tokeniser instead of Unigram.
        dataset: Split, augmentation, chunking and truncation settings.
        overwrite: Replace ``output_dir`` if it exists.
    """
    digests, _, _ = fingerprint_inputs(class_files)
    tokenizer_json, kmer_stride = tokeniser_step(class_files, tokenise, kmer, digests)
    dataset_dir, _ = create_dataset(class_files, tokenizer_json, dataset, kmer_stride, digests)
    export_outputs(output_dir, overwrite, flat=True, dataset=dataset_dir)
