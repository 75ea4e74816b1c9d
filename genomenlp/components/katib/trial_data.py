"""The dataset Katib trials read: a plain object-storage prefix, not a ZenML artifact.

ZenML stores a folder artifact as one ``<uri>/data.tar.gz``, which ``train`` in a trial pod
cannot read as ``<uri>/train.parquet``. The sweep step therefore exports the files a trial
reads to ``<prefix>/`` with the project's commit marker (``_SUCCESS``, :mod:`genomenlp.components.storage`)
last, so trials, which refuse a prefix without it, never read a half-exported dataset.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from genomenlp.components.errors import InputError
from genomenlp.components.filenames import MANIFEST_FILE, TOKENIZER_FILE
from genomenlp.components.storage import COMMIT_MARKER

# What `train DATA/train.parquet parquet DATA/tokenizer.json -t test -v valid` reads, manifest last.
TRIAL_FILES = ("train.parquet", "valid.parquet", "test.parquet", TOKENIZER_FILE, MANIFEST_FILE)


def trial_data_prefix(artifact_root: str, run_id: str) -> str:
    """Where one pipeline run's trial data lives: ``<artifact store root>/katib-data/<run id>``."""
    return f"{artifact_root.rstrip('/')}/katib-data/{run_id}"


def export_trial_dataset(dataset_dir: str | Path, prefix: str, copy: Callable[[str, str], None]) -> str:
    """Copy a dataset folder's trial files to ``prefix``, the commit marker last.

    Args:
        dataset_dir: A local dataset folder (``create_dataset_bio`` layout).
        prefix: Object-storage prefix the trial pods read (``s3://bucket/…``).
        copy: Copies one local file to a remote path (the artifact store's filesystem, with its
            credentials).

    Returns:
        The prefix.

    Raises:
        InputError: A file a trial needs is missing from the dataset.
    """
    missing = [name for name in TRIAL_FILES if not Path(dataset_dir, name).is_file()]
    if missing:
        raise InputError(str(dataset_dir), f"no {', '.join(missing)}: not a dataset folder trials can read")
    for name in TRIAL_FILES:
        copy(str(Path(dataset_dir, name)), f"{prefix.rstrip('/')}/{name}")
    with tempfile.TemporaryDirectory() as folder:
        marker = Path(folder, COMMIT_MARKER)
        marker.write_text(json.dumps({"files": list(TRIAL_FILES)}) + "\n", encoding="utf-8")
        copy(str(marker), f"{prefix.rstrip('/')}/{COMMIT_MARKER}")
    return prefix
