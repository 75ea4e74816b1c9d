"""Names of pipelines, steps' artifacts and models: defined once, used everywhere."""

from enum import StrEnum


class Artifacts(StrEnum):
    """Output artifact names of the steps."""

    TOKENIZER_JSON = "tokenizer_json"
    DATASET_DIR = "dataset_dir"
    DATASET_MANIFEST = "dataset_manifest"
    BEST_HYPERPARAMETERS = "best_hyperparameters"
    SWEEP_TRIALS = "sweep_trials"
    MODEL_DIR = "model_dir"
    # The model a training pipeline registers and serves (the ensemble of its final and fold models), its
    # metrics, folder and report.
    SERVED_MODEL_DIR = "served_model_dir"
    SERVED_METRICS = "served_metrics"
    ENSEMBLE_DIR = "ensemble_dir"
    ENSEMBLE_REPORT = "ensemble_report"
    TRAINING_METRICS = "training_metrics"
    CV_METRICS = "cv_metrics"
    PRODUCTION_VERSION = "production_version"
    ENCODER_DIR = "encoder_dir"
    PRETRAINING_METRICS = "pretraining_metrics"
    INTERPRETATION = "interpretation"
    PREDICTIONS = "predictions"
    POWERLAW_SUMMARY = "powerlaw_summary"
    # Digests of a pipeline's input files, model references and sequences to explain: part of the cache key
    # of the steps reading them.
    INPUT_DIGESTS = "input_digests"
    MODEL_DIGESTS = "model_digests"
    EXPLAIN_DIGESTS = "explain_digests"
    # Each heavy step's whole folder, as the matching command writes it; the export step copies them to output_dir.
    SWEEP_DIR = "sweep_dir"
    TRAINING_DIR = "training_dir"
    CV_DIR = "cv_dir"
    INTERPRETATION_DIR = "interpretation_dir"
    PRETRAINING_DIR = "pretraining_dir"
    COMPARISON_DIR = "comparison_dir"
    # Reports as HTML artifacts: the dashboard shows them as visualizations.
    SWEEP_REPORT = "sweep_report"
    TRAINING_REPORT = "training_report"
    CV_REPORT = "cv_report"
    INTERPRETATION_REPORT = "interpretation_report"
    COMPARISON_REPORT = "comparison_report"
    # Where the export step put each folder: ``{folder name: destination}``.
    EXPORTED_FOLDERS = "exported_folders"


class Pipelines(StrEnum):
    """Pipeline names as ZenML records them."""

    DATASET = "dataset_pipeline"
    TRAINING = "training_pipeline"
    PRETRAINING = "pretraining_pipeline"
    COMPARISON = "comparison_pipeline"


# Where the interpretation and prediction steps take their model from by default.
PRODUCTION_MODEL = "registry:genomic_bert@production"


class Models(StrEnum):
    """Model names in the model registry."""

    GENOMIC_BERT = "genomic_bert"
    # Masked-LM pre-trained encoders (no head): starting points for genomic_bert classifiers.
    GENOMIC_BERT_ENCODER = "genomic_bert_encoder"
