"""Names of pipelines, steps' artifacts and models: defined once, used everywhere."""

from enum import StrEnum


class Artifacts(StrEnum):
    """Output artifact names of the steps."""

    TOKENIZER_JSON = "tokenizer_json"
    DATASET_DIR = "dataset_dir"
    DATASET_MANIFEST = "dataset_manifest"


class Pipelines(StrEnum):
    """Pipeline names as ZenML records them."""

    DATASET = "dataset_pipeline"
