"""Dataset flags and the summary printed after building, shared by two commands."""

from __future__ import annotations

import argparse

from genomenlp.components.cli.common import add_config_arguments
from genomenlp.components.configs import DatasetConfig


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """``-o``, the split/augmentation/chunking flags, ``--protein``, ``--overwrite``, ``--no_progress``."""
    parser.add_argument("-o", "--outfile_dir", metavar="DATA_DIR",
                        help="dataset folder to create (local or s3://)")
    parser.add_argument("--protein", action="store_true", help="sequences are proteins, not nucleotides")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    add_config_arguments(parser, DatasetConfig, skip=("alphabet",))


def print_dataset_summary(manifest: dict, out_dir: str) -> None:
    """A short table of rows per split and class, and how the first training row was tokenised."""
    names = manifest["label_names"]
    width = max(len(name) for name in [*names, "split"]) + 2
    print(f"Dataset written to {out_dir}")
    print(f"  {manifest['groups']} leakage groups (a sequence, its reverse complement and duplicates stay together)")
    print("  " + "split".ljust(8) + "".join(name.rjust(width) for name in names) + "records".rjust(10))
    for split, info in manifest["splits"].items():
        counts = "".join(str(info["rows_per_class"][name]).rjust(width) for name in names)
        print("  " + split.ljust(8) + counts + str(info["records"]).rjust(10))
    if manifest.get("truncated_rows"):
        print(f"  warning: {manifest['truncated_rows']} rows were cut at --max_tokens; "
              "lower --chunk_size or raise --max_tokens so the model sees whole chunks")
    sample = manifest.get("sample")
    if sample:
        print(f"Sample token mapping ({sample['record_id']}):")
        print(f"  {sample['feature'][:80]}{'…' if len(sample['feature']) > 80 else ''}")
        shown = list(zip(sample["tokens"], sample["input_ids"], strict=True))[:12]
        print("  " + " ".join(f"{token}:{index}" for token, index in shown)
              + (" …" if len(sample["tokens"]) > 12 else ""))
