"""The pre-training pipeline: corpus tokeniser → the task's dataset → encoder pre-trained without its held-out split."""

from zenml import pipeline
from zenml.enums import ExecutionMode

from genomenlp.components.configs import DatasetConfig, KmerConfig, ModelConfig, PretrainConfig, TokeniseConfig
from genomenlp.components.names import Pipelines
from genomenlp.pipelines.tokeniser_branch import tokeniser_step
from genomenlp.steps.create_dataset import create_dataset
from genomenlp.steps.export_outputs import export_outputs
from genomenlp.steps.fingerprint_inputs import fingerprint_inputs
from genomenlp.steps.pretrain_encoder import pretrain_encoder

# Module-level defaults: frozen models, so sharing one instance across calls is safe.
DEFAULT_TOKENISE = TokeniseConfig()
DEFAULT_DATASET = DatasetConfig()
DEFAULT_MODEL = ModelConfig()
DEFAULT_PRETRAIN = PretrainConfig()


# Cached steps exchange stored folders; export_outputs (never cached) writes output_dir.
@pipeline(name=Pipelines.PRETRAINING, enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def pretraining_pipeline(
    corpus_files: list[str],
    class_files: list[str],
    output_dir: str,
    tokenise: TokeniseConfig = DEFAULT_TOKENISE,
    kmer: KmerConfig | None = None,
    dataset: DatasetConfig = DEFAULT_DATASET,
    model: ModelConfig = DEFAULT_MODEL,
    pretrain: PretrainConfig = DEFAULT_PRETRAIN,
    overwrite: bool = False,
) -> None:
    """Learn the tokeniser from the corpus, split the classes as training will, pre-train without valid and test.

    The dataset is built by the training pipeline's own step from the same class files and
    settings, so its valid and test splits are exactly those a classifier fine-tuned from this
    encoder is evaluated on (a split is a pure function of the files and ``dataset``).

    Args:
        corpus_files: Unlabelled FASTA files to pre-train on (whole genomes or any sequences).
        class_files: One FASTA file per class of the task the encoder is for, in label order.
        output_dir: Root of the run's folders: ``dataset`` and ``pretrain`` (``pretrain/encoder``).
        tokenise: Unigram settings, learnt from the corpus (used when ``kmer`` is not given).
        kmer: k-mer settings; giving them selects the k-mer tokeniser instead of Unigram.
        dataset: The classifier's split settings: keep them equal to the training pipeline's.
        model: Encoder architecture and shape (the classifier's).
        pretrain: Windowing, masking and optimisation.
        overwrite: Replace the folders of a previous run under ``output_dir``.
    """
    # One group for both: an edited class file re-runs the (cheap) tokeniser too.
    digests, _, _ = fingerprint_inputs([*corpus_files, *class_files])
    tokenizer_json, kmer_stride = tokeniser_step(corpus_files, tokenise, kmer, digests)
    dataset_dir, _ = create_dataset(class_files, tokenizer_json, dataset, kmer_stride, digests)
    _, _, pretrain_dir = pretrain_encoder(corpus_files, dataset_dir, pretrain, model, kmer_stride,
                                          input_digests=digests)
    export_outputs(output_dir, overwrite, dataset=dataset_dir, pretrain=pretrain_dir)
