"""``create_dataset_bio``: a labelled, leakage-free dataset from one FASTA per class."""

from __future__ import annotations

import argparse
import sys

from genomenlp.components.cli.common import HelpFormatter, config_from_args, run_command
from genomenlp.components.cli.dataset_options import add_dataset_arguments, print_dataset_summary
from genomenlp.components.configs import DatasetConfig
from genomenlp.components.errors import InputError
from genomenlp.components.fasta import DEFAULT_MAX_RECORD_LENGTH, Alphabet, record_length_limit
from genomenlp.components.stages import create_dataset
from genomenlp.components.storage import ensure_absent
from genomenlp.components.tokenisers import load_sequence_tokenizer


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``create_dataset_bio`` (positional FASTA files then the tokeniser, as the original)."""
    parser = argparse.ArgumentParser(
        prog="create_dataset_bio",
        description=(
            "Build train/test/valid splits (default 90/5/5) from one FASTA file per class, encoded with a\n"
            "tokeniser from tokenise_bio or kmerise_bio. Splits are seeded, stratified by class and leakage-\n"
            "free: a sequence, its reverse complement and exact duplicates always share a split. Each split is\n"
            "written as parquet, csv, json and a datasets save_to_disk folder, beside manifest.json.\n\n"
            "example: create_dataset_bio promoter.fasta.gz non_promoter.fasta.gz tokens.json -o data"
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("infile_paths", nargs="+", metavar="FASTA_OR_TOKENISER",
                        help="one FASTA per class (label order), then the tokeniser JSON")
    add_dataset_arguments(parser)
    parser.add_argument("--max_record_length", type=int, default=DEFAULT_MAX_RECORD_LENGTH, metavar="BASES",
                        help="refuse a record longer than this, naming it; memory grows with the longest record "
                        f"(default: {DEFAULT_MAX_RECORD_LENGTH:,})")
    parser.add_argument("--kmer_stride", type=int, default=1,
                        help="step between k-mer starts, when the tokeniser is a k-mer one (default: 1)")
    return parser


def _body(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.infile_paths) < 3:
        raise InputError("arguments", "give at least two FASTA files (one per class) and then the tokeniser JSON")
    *fasta_paths, tokeniser_path = args.infile_paths
    if not args.outfile_dir:
        raise InputError("-o/--outfile_dir", "required: the dataset folder to create")
    alphabet = Alphabet.PROTEIN if args.protein else Alphabet.DNA
    config = config_from_args(DatasetConfig, args, alphabet=alphabet)
    ensure_absent(args.outfile_dir, args.overwrite, folder=True)
    tokenizer = load_sequence_tokenizer(tokeniser_path, stride=args.kmer_stride)
    if args.max_record_length < 1:
        raise InputError("--max_record_length", "must be a positive number of bases")
    with record_length_limit(args.max_record_length):
        manifest = create_dataset(fasta_paths, tokenizer, config, args.outfile_dir, args.overwrite,
                                  not args.no_progress)
    print_dataset_summary(manifest, args.outfile_dir)
    if manifest.get("conflicting_records"):
        print(f"  warning: kept {manifest['conflicting_records']} records whose sequence appears under two or more "
              "labels (--allow_conflicts)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``create_dataset_bio``."""
    return run_command(_body, argv, "create_dataset_bio")


if __name__ == "__main__":
    sys.exit(main())
