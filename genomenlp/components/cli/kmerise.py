"""``kmerise_bio``: an overlapping k-mer tokeniser and, with ``-o``, the dataset encoded with it."""

from __future__ import annotations

import argparse
import sys

from genomenlp.components.cli.common import HelpFormatter, config_from_args, run_command
from genomenlp.components.cli.dataset_options import add_dataset_arguments, print_dataset_summary
from genomenlp.components.configs import DatasetConfig, KmerConfig
from genomenlp.components.errors import InputError
from genomenlp.components.fasta import Alphabet
from genomenlp.components.stages import create_dataset, make_kmer_tokenizer
from genomenlp.components.storage import ensure_absent, write_text_atomic


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``kmerise_bio``."""
    parser = argparse.ArgumentParser(
        prog="kmerise_bio",
        description=(
            "Tokenise sequences into overlapping k-mers with a deterministic vocabulary (every ACGT k-mer in\n"
            "lexicographic order: the same k always gives the same ids). Writes the tokeniser (-t) and, with\n"
            "-o, the same dataset layout as create_dataset_bio, one input file per class.\n\n"
            "example: kmerise_bio -i promoter.fasta.gz non_promoter.fasta.gz -k 3 -t kmers.json -o data_kmer"
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-i", "--infile_paths", nargs="+", required=True, metavar="FASTA",
                        help="FASTA files, plain or gzip, local or s3:// (one per class with -o)")
    parser.add_argument("-k", "--kmer_size", type=int, default=3, help="k-mer length (default: 3)")
    parser.add_argument("-s", "--stride", type=int, default=1,
                        help="step between k-mer starts, 1 = overlapping (default: 1)")
    parser.add_argument("-t", "--tokeniser_path", metavar="JSON", help="where to write the tokeniser JSON")
    add_dataset_arguments(parser)
    return parser


def _body(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not args.tokeniser_path and not args.outfile_dir:
        raise InputError("arguments", "nothing to write: give -t TOKENISER_JSON, -o DATA_DIR or both")
    alphabet = Alphabet.PROTEIN if args.protein else Alphabet.DNA
    kmer_config = KmerConfig(k=args.kmer_size, stride=args.stride, alphabet=alphabet)
    dataset_config = config_from_args(DatasetConfig, args, alphabet=alphabet) if args.outfile_dir else None
    for path in filter(None, [args.tokeniser_path, args.outfile_dir]):
        ensure_absent(path, args.overwrite)
    tokenizer = make_kmer_tokenizer(args.infile_paths, kmer_config)
    if args.tokeniser_path:
        write_text_atomic(args.tokeniser_path, tokenizer.to_json(), overwrite=args.overwrite)
        print(f"k-mer tokeniser (k={kmer_config.k}, stride={kmer_config.stride}, "
              f"{tokenizer.tokenizer.get_vocab_size()} tokens) written to {args.tokeniser_path}")
    if dataset_config is not None:
        manifest = create_dataset(
            args.infile_paths, tokenizer, dataset_config, args.outfile_dir, args.overwrite, not args.no_progress
        )
        print_dataset_summary(manifest, args.outfile_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kmerise_bio``."""
    return run_command(_body, argv, "kmerise_bio")


if __name__ == "__main__":
    sys.exit(main())
