"""``interpret``: which tokens and bases drive a genomicBERT classifier's decision, as TSV and HTML."""

from __future__ import annotations

import argparse
import sys

from genomenlp.components.cli.common import HelpFormatter, add_config_arguments, config_from_args, run_command
from genomenlp.components.cli.predict import add_model_input_arguments
from genomenlp.components.errors import InputError
from genomenlp.components.inference.config import InterpretConfig
from genomenlp.components.inference.interpret import interpret_sequences
from genomenlp.components.model_io import load_model
from genomenlp.components.storage import ensure_absent


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``interpret``."""
    parser = argparse.ArgumentParser(
        prog="interpret",
        description=(
            "Explain a trained model's decisions with Layer Integrated Gradients on the embedding layer (Captum's\n"
            "method; baseline: <s> <pad>… </s> of the same length). Many sequences and integration steps share\n"
            "each forward pass, and the integration is adaptive: a few Gauss–Legendre steps (--min_steps), more\n"
            "only for windows whose completeness error exceeds --tolerance, up to --n_steps. The explained class\n"
            "is each sequence's predicted class unless --target is given.\n"
            "Inputs are FASTA files or raw sequences (ids seq_1, seq_2, …).\n\n"
            "Writes OUT/index.html (every sequence, its prediction and a link), OUT/sequences/<id>.html (tokens\n"
            "and bases coloured green toward the class, red away), OUT/attributions.tsv (per token: record_id,\n"
            "token_index, token, start, end, score), OUT/per_base.tsv (per base: the mean score of the tokens\n"
            "covering it) and OUT/summary.tsv. Positions are 0-based, ends exclusive. Page names are a\n"
            "sanitised, unique form of the record id: nothing is written outside OUT.\n\n"
            "Sequences longer than the model's window are cut into overlapping windows (--window_overlap); each\n"
            "is attributed and the tracks are merged (a token in several windows gets its mean score).\n\n"
            "Class names shown are the model's own, or those of -l in label-index order (as the original took\n"
            "them).\n\n"
            "examples:\n"
            "  interpret train_out/model_files seqs.fasta -l PROMOTER NON-PROMOTER -o why\n"
            "  interpret train_out/model_files promoters.fa others.fa --true_labels promoter non_promoter -o why"
        ),
        formatter_class=HelpFormatter,
    )
    add_model_input_arguments(parser)
    parser.add_argument("-o", "--output_dir", default="interpret_out",
                        help="output folder, local or s3:// (default: interpret_out)")
    parser.add_argument("-l", "--label_names", nargs="+", metavar="NAME",
                        help="display names of the model's classes in label-index order (default: the names it "
                             "was trained with)")
    parser.add_argument("--true_labels", nargs="+", metavar="NAME",
                        help="true class name of each input, in input order (shown beside the prediction)")
    parser.add_argument("-n", "--n_steps", type=int, default=argparse.SUPPRESS,
                        help="most Integrated Gradients steps per window (default: 50)")
    parser.add_argument("--target", default=argparse.SUPPRESS, metavar="CLASS",
                        help="class to explain for every sequence (default: each one's predicted class)")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    add_config_arguments(parser, InterpretConfig, skip=("device", "alphabet", "n_steps", "target"))
    return parser


def _body(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(InterpretConfig, args)
    ensure_absent(args.output_dir, args.overwrite)
    loaded = load_model(args.model)
    # Pages name the model as the user gave it (a registry reference, not the folder it was fetched to).
    loaded.path = str(args.model)
    if args.label_names:
        if len(args.label_names) != len(loaded.label_names):
            raise InputError("-l/--label_names", f"got {len(args.label_names)} names for the model's "
                             f"{len(loaded.label_names)} classes ({', '.join(loaded.label_names)}): give one per "
                             "class in label-index order (--true_labels takes one true label per input)")
        loaded.label_names = list(args.label_names)
    result = interpret_sequences(loaded, args.inputs, args.output_dir, config, args.true_labels, args.overwrite,
                                 not args.no_progress)
    print(f"{result['records']} sequences interpreted (largest |convergence delta| {result['max_abs_delta']:.2g})")
    print(f"index: {result['index']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``interpret``."""
    return run_command(_body, argv, "interpret")


if __name__ == "__main__":
    sys.exit(main())
