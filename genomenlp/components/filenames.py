"""File and folder names of the project's outputs: a leaf module every layer can import without cycles."""

# A dataset folder (create_dataset_bio, kmerise_bio).
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
# Parquet schema metadata key of a split: the sha256 of the tokeniser that encoded it, so data and
# vocabulary stay tied together without the manifest.
TOKENIZER_SHA256_KEY = "genomenlp.tokenizer_sha256"
# A training run's folder (train, sweep trials, cross-validation folds).
MODEL_DIR = "model_files"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
CHECKPOINT_DIR = "checkpoints"
HISTORY_FILE = "history.csv"
# A cross-validation fold's held-out probabilities after every validation (validation_NNN.npy) and the
# weights they came from (weights_NNN.safetensors, removed once the epoch is chosen).
HELD_OUT_DIR = "held_out"
# A cross-validation fold's model with the weights of the epoch the folds chose (an ensemble member).
CHOSEN_MODEL_DIR = "model_at_chosen_epoch"


def held_out_file(validation: int) -> str:
    """Name of the held-out probabilities after validation number ``validation`` (from 1)."""
    return f"validation_{validation:03d}.npy"


def held_out_weights_file(validation: int) -> str:
    """Name of a fold's weights after validation number ``validation`` (from 1)."""
    return f"weights_{validation:03d}.safetensors"
