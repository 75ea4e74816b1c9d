"""Step: masked-language-model pre-training of the encoder on genomes, for one dataset, without its held-out split."""

from pathlib import Path
from typing import Annotated

from pydantic import PositiveInt
from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.enums import ArtifactType

from genomenlp.components.export import staging_folder
from genomenlp.components.names import Artifacts
from genomenlp.components.pretraining.config import PretrainConfig
from genomenlp.components.pretraining.mlm import ENCODER_DIR
from genomenlp.components.stages import TOKENIZER_FILE
from genomenlp.components.training.config import ModelConfig
from genomenlp.components.training_operator.config import DistributedConfig
from genomenlp.components.training_operator.job import pretrain_command
from genomenlp.steps.support.accelerated_stage import run_stage
from genomenlp.steps.support.training_job import run_as_pytorch_job

# Summary figures recorded as run metadata (the step's, and the model version's when there is one).
METADATA_KEYS = ("mlm_loss", "mlm_accuracy", "bases_removed", "tokens_per_second", "tokens_seen", "steps",
                 "train_seconds", "parameters")


@step
def pretrain_encoder(
    corpus_files: list[str],
    dataset_dir: Path,
    config: PretrainConfig,
    model: ModelConfig,
    kmer_stride: int = 1,
    exclude: list[str] | None = None,
    input_digests: dict | None = None,
    processes_per_pod: PositiveInt = 1,
    distributed: DistributedConfig | None = None,
) -> tuple[
    # A model artifact: a run with a ZenML `model:` lists it among the version's models.
    Annotated[Path, ArtifactConfig(name=Artifacts.ENCODER_DIR, artifact_type=ArtifactType.MODEL)],
    Annotated[dict, Artifacts.PRETRAINING_METRICS],
    Annotated[Path, Artifacts.PRETRAINING_DIR],
]:
    """Pre-train an encoder for the classifier of ``dataset_dir``, never on its valid or test sequences.

    Args:
        corpus_files: Unlabelled FASTA files (whole genomes or any sequences; local or ``s3://``).
        dataset_dir: The dataset the encoder is for: fine-tuning shares its ``tokenizer.json``, and
            every genome position its valid and test sequences cover (either strand) is masked out.
        config: Windowing, masking and optimisation.
        model: Encoder architecture and shape (the classifier's).
        kmer_stride: Step between k-mer starts of a k-mer tokeniser (JSON does not record it).
        exclude: Further dataset folders whose valid and test sequences are masked out too.
        input_digests: Digests of the input files; only part of the cache key (an edited genome re-runs it).
        processes_per_pod: Training processes in this step's pod, one per GPU; above 1 they run under ZenML's
            ``run_with_accelerate`` (DDP, or FSDP with ``config.fsdp``), and this step still logs once.
        distributed: Run the pre-training as a Kubeflow Training Operator PyTorchJob of this many workers
            and GPUs each instead (multi-node); ``exclude`` is not supported there (one dataset is held out).

    Returns:
        The encoder folder (HF safetensors, tokeniser, ``genomenlp.json``), the metrics summary and the
        run folder (``encoder/``, ``history.csv``, ``metrics.json``) as the ``pretrain`` command writes
        it (the pipeline's export step copies it to ``output_dir``).
    """
    held_out = [str(dataset_dir), *(exclude or [])]
    # Metric lines and the corpus/exclusion report go to the step's logs; a progress bar would garble them.
    folder = staging_folder("pretrain")
    if distributed is not None:
        summary = run_as_pytorch_job("pretrain", distributed, dataset_dir, folder, lambda data: pretrain_command(
            list(corpus_files), data, model, config, kmer_stride, distributed.gpus_per_worker))
    else:
        tokenizer = str(dataset_dir / TOKENIZER_FILE)
        summary = run_stage("pretrain", {"corpus_files": list(corpus_files), "tokenizer": tokenizer,
                                         "out_dir": str(folder), "model": model.model_dump(mode="json"),
                                         "config": config.model_dump(mode="json"), "held_out": held_out,
                                         "kmer_stride": kmer_stride}, processes_per_pod)
    exclusion = summary["exclusion"]
    scalars = {**{key: summary[key] for key in METADATA_KEYS}, "held_out_sequences": exclusion["held_out_sequences"],
               "held_out_found": exclusion["held_out_found"]}
    log_metadata(scalars)
    log_metadata(scalars, run_id_name_or_prefix=get_step_context().pipeline_run.id)
    # infer_model raises unless the step or its pipeline is configured with a `model:`.
    if get_step_context().model_version is not None:
        log_metadata(scalars, infer_model=True)
    return folder / ENCODER_DIR, summary, folder
