"""The training pipeline: tokeniser → dataset → sweep → cross-validation (epoch choice) → classifier → ensemble."""

from zenml import pipeline
from zenml.enums import ExecutionMode

from genomenlp.components.configs import (
    DatasetConfig,
    InterpretConfig,
    KmerConfig,
    ModelConfig,
    SweepSpec,
    TokeniseConfig,
    TrainConfig,
)
from genomenlp.components.names import Pipelines
from genomenlp.pipelines.tokeniser_branch import tokeniser_step
from genomenlp.steps.create_dataset import create_dataset
from genomenlp.steps.cross_validate_model import cross_validate_model
from genomenlp.steps.ensemble_models import ensemble_models
from genomenlp.steps.export_outputs import export_outputs
from genomenlp.steps.fingerprint_inputs import fingerprint_inputs
from genomenlp.steps.interpret_sequences import interpret_sequences
from genomenlp.steps.promote_model import promote_model
from genomenlp.steps.sweep_hyperparameters import sweep_hyperparameters
from genomenlp.steps.train_classifier import train_classifier

# Module-level defaults: frozen models, so sharing one instance across calls is safe.
DEFAULT_TOKENISE = TokeniseConfig()
DEFAULT_DATASET = DatasetConfig()
DEFAULT_MODEL = ModelConfig()
DEFAULT_TRAINING = TrainConfig()
DEFAULT_INTERPRET = InterpretConfig()


# Cached steps exchange stored folders; export_outputs (never cached) writes output_dir.
@pipeline(name=Pipelines.TRAINING, enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def training_pipeline(
    class_files: list[str],
    output_dir: str,
    sweep: SweepSpec,
    tokenise: TokeniseConfig = DEFAULT_TOKENISE,
    kmer: KmerConfig | None = None,
    dataset: DatasetConfig = DEFAULT_DATASET,
    model: ModelConfig = DEFAULT_MODEL,
    training: TrainConfig = DEFAULT_TRAINING,
    trials: int = 8,
    folds: int = 5,
    overwrite: bool = False,
    explain: list[str] | None = None,
    interpret: InterpretConfig = DEFAULT_INTERPRET,
    ensemble: bool = True,
) -> None:
    """Build the dataset, sweep hyperparameters, cross-validate the best, train with them to the chosen epoch.

    Args:
        class_files: One FASTA file per class, in label order.
        output_dir: Root of the run's folders: ``dataset``, ``sweep``, ``train`` and ``cv``.
        sweep: The sweep specification (method, metric, parameters, early_terminate).
        tokenise: Unigram settings (used when ``kmer`` is not given).
        kmer: k-mer settings; giving them selects the k-mer tokeniser instead of Unigram.
        dataset: Split, augmentation, chunking and truncation settings.
        model: Model shape; the sweep's best values override it.
        training: Training settings; the sweep's best values override them.
        trials: Sweep trials.
        folds: Cross-validation folds.
        overwrite: Replace the folders of a previous run under ``output_dir``.
        explain: FASTA files or sequences to interpret with the trained model (``output_dir/interpret``).
        interpret: Interpretation settings.
        ensemble: Serve (register, promote, interpret) the ensemble of the final model and the fold models at the
            chosen epoch rather than the final model alone.
    """
    # A registry reference in init_from names another encoder once a newer one is registered.
    init_from = [training.init_from] if training.init_from else None
    digests, init_digests, explain_digests = fingerprint_inputs(class_files, init_from, explain)
    tokenizer_json, kmer_stride = tokeniser_step(class_files, tokenise, kmer, digests)
    dataset_dir, _ = create_dataset(class_files, tokenizer_json, dataset, kmer_stride, digests)
    best, _, sweep_dir, _ = sweep_hyperparameters(
        dataset_dir, sweep, model, training, trials, init_digests=init_digests
    )
    # The folds choose the final model's epoch on thousands of held-out rows, not on the validation split.
    cv_metrics, cv_dir, _ = cross_validate_model(dataset_dir, best, model, training, folds, init_digests=init_digests)
    model_dir, metrics, train_dir, _ = train_classifier(dataset_dir, best, model, training, init_digests,
                                                        cv_metrics=cv_metrics)
    ensemble_dir = None
    if ensemble:
        # The fold models are trained already: averaged with the final model they are the model served.
        model_dir, metrics, ensemble_dir, _ = ensemble_models(dataset_dir, model_dir, metrics, cv_dir, cv_metrics)
    promote_model(metrics, cv_metrics)
    interpret_dir = None
    if explain:
        _, interpret_dir, _ = interpret_sequences(
            explain, interpret, model_dir=model_dir, input_digests=explain_digests
        )
    export_outputs(output_dir, overwrite, dataset=dataset_dir, sweep=sweep_dir, train=train_dir, cv=cv_dir,
                   ensemble=ensemble_dir, interpret=interpret_dir)
