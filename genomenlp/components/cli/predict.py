"""``predict``: class probabilities of sequences from a trained genomicBERT classifier."""

from __future__ import annotations

import argparse
import sys

from genomenlp.components.cli.common import HelpFormatter, add_config_arguments, config_from_args, run_command
from genomenlp.components.fasta import Alphabet
from genomenlp.components.inference.config import PredictConfig
from genomenlp.components.inference.predict import write_predictions
from genomenlp.components.model_io import load_model
from genomenlp.components.storage import ensure_absent


def add_model_input_arguments(parser: argparse.ArgumentParser) -> None:
    """``MODEL SEQS…``, ``-d/--device`` and ``--protein``: what ``predict`` and ``interpret`` share."""
    parser.add_argument("model", metavar="MODEL",
                        help="model folder written by train (OUT/model_files) or registry:NAME[@VERSION|@STAGE]")
    parser.add_argument("inputs", nargs="+", metavar="SEQS",
                        help="FASTA files (plain or gzip, local or s3://) and/or raw sequences, e.g. ACGTTGCA")
    parser.add_argument("-d", "--device", choices=["auto", "cpu", "cuda"], default=argparse.SUPPRESS,
                        help="where to run the model (default: auto = CUDA when present)")
    parser.add_argument("--protein", dest="alphabet", action="store_const", const=Alphabet.PROTEIN.value,
                        default=argparse.SUPPRESS,
                        help="sequences are proteins (default: the model's training alphabet, else DNA)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``predict``."""
    parser = argparse.ArgumentParser(
        prog="predict",
        description=(
            "Classify sequences with a trained model. Inputs are FASTA files or raw sequences (an argument that\n"
            "is not a file and holds only sequence letters; its id is seq_1, seq_2, …). Records are read and\n"
            "written as they go, in batches, so memory does not grow with the input files.\n\n"
            "A sequence longer than the model's window (its max positions − 2 tokens; for a k-mer model\n"
            "(max positions − 3) × stride + k bases) is cut into windows overlapping by --window_overlap, and\n"
            "its class probabilities are the mean over its windows.\n\n"
            "Writes a TSV with one row per record: id, predicted_label, p_<class> for every class, length\n"
            "(bases) and chunks (model windows read). The file appears only once complete.\n\n"
            "example: predict train_out/model_files reads.fasta.gz ACGTACGTTTGACA -o predictions.tsv"
        ),
        formatter_class=HelpFormatter,
    )
    add_model_input_arguments(parser)
    parser.add_argument("-o", "--output", default="predictions.tsv",
                        help="TSV to write, local or s3:// (default: predictions.tsv)")
    add_config_arguments(parser, PredictConfig, skip=("device", "alphabet"))
    return parser


def _body(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(PredictConfig, args)
    ensure_absent(args.output, args.overwrite, folder=False)
    loaded = load_model(args.model)
    counts = write_predictions(loaded, args.inputs, args.output, config, args.overwrite)
    per_label = ", ".join(f"{name} {count}" for name, count in counts["per_label"].items())
    print(f"{counts['records']} records ({counts['windows']} model windows) predicted: {per_label}")
    print(f"predictions: {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``predict``."""
    return run_command(_body, argv, "predict")


if __name__ == "__main__":
    sys.exit(main())
