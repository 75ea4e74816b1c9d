"""``tokenise_bio``: learn an empirical (Unigram) tokeniser from FASTA files."""

from __future__ import annotations

import argparse
import logging
import sys

from genomenlp.components.cli.common import HelpFormatter, add_config_arguments, config_from_args, run_command
from genomenlp.components.configs import TokeniseConfig
from genomenlp.components.fasta import Alphabet
from genomenlp.components.stages import learn_tokenizer
from genomenlp.components.storage import ensure_absent, write_text_atomic


def _int_or_none(text: str) -> int | None:
    """An integer flag value, or ``none`` for the config's None (no bound)."""
    return None if text.lower() == "none" else int(text)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``tokenise_bio`` (the original's ``-i``, ``-t``, ``-v``, ``-b`` kept)."""
    parser = argparse.ArgumentParser(
        prog="tokenise_bio",
        description=(
            "Learn a SentencePiece-style Unigram vocabulary from DNA (or protein) FASTA files and save it as\n"
            "a Hugging Face tokenizers JSON with <s> </s> <unk> <pad> <mask>; every encoding is wrapped as\n"
            "<s> … </s> so a classifier pools a real summary token.\n\n"
            "Training time grows faster than the input, so the trainer learns from an evenly spread, seeded\n"
            "sample of at most --max_train_bases bases (reported when it samples).\n\n"
            "example: tokenise_bio -i promoter.fasta.gz non_promoter.fasta.gz -t tokens.json"
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-i", "--infile_paths", nargs="+", required=True, metavar="FASTA",
                        help="FASTA files, plain or gzip, local or s3://")
    parser.add_argument("-t", "--tokeniser_path", required=True, metavar="JSON", help="where to write the tokeniser")
    parser.add_argument("-v", "--vocab_size", type=int, default=argparse.SUPPRESS,
                        help="target vocabulary size (default: 32000)")
    parser.add_argument("-b", "--break_size", type=int, default=argparse.SUPPRESS,
                        help="cut sequences into pieces of at most this many bases for training (default: 512)")
    parser.add_argument("--protein", action="store_true", help="sequences are proteins, not nucleotides")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing tokeniser file")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    bound = TokeniseConfig.model_fields["max_train_bases"]
    # Declared here rather than generated: the generated flag could not say None (learn from everything).
    parser.add_argument("--max_train_bases", type=_int_or_none, default=argparse.SUPPRESS, metavar="BASES",
                        help=f"{bound.description} Give 'none' for no bound. (default: {bound.default})")
    add_config_arguments(parser, TokeniseConfig, skip=("vocab_size", "break_size", "alphabet", "max_train_bases"))
    return parser


def _body(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # The trainer reports through logging when it learns from a sample of the input.
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    alphabet = Alphabet.PROTEIN if args.protein else Alphabet.DNA
    config = config_from_args(TokeniseConfig, args, alphabet=alphabet)
    ensure_absent(args.tokeniser_path, args.overwrite)
    tokenizer = learn_tokenizer(args.infile_paths, config, show_progress=not args.no_progress)
    write_text_atomic(args.tokeniser_path, tokenizer.to_json(), overwrite=args.overwrite)
    print(f"Learnt {tokenizer.tokenizer.get_vocab_size()} tokens; tokeniser written to {args.tokeniser_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tokenise_bio``."""
    return run_command(_body, argv, "tokenise_bio")


if __name__ == "__main__":
    sys.exit(main())
