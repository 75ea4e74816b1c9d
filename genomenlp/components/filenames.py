"""File and folder names of the project's outputs: a leaf module every layer can import without cycles."""

# A dataset folder (create_dataset_bio, kmerise_bio).
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
# A training run's folder (train, sweep trials, cross-validation folds).
MODEL_DIR = "model_files"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
CHECKPOINT_DIR = "checkpoints"
