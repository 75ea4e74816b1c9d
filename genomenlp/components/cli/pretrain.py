"""``pretrain``: masked-language-model pre-training of the genomicBERT encoder on unlabelled genomes."""

from __future__ import annotations

import argparse
import logging
import sys

from genomenlp.components.cli.common import HelpFormatter, add_config_arguments, config_from_args, run_command
from genomenlp.components.errors import InputError
from genomenlp.components.pretraining.config import PretrainConfig
from genomenlp.components.pretraining.mlm import ENCODER_DIR, METRICS_FILE, pretrain_encoder
from genomenlp.components.training.config import ModelConfig
from genomenlp.components.training.run import print_metric_lines


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``pretrain``."""
    parser = argparse.ArgumentParser(
        prog="pretrain",
        usage="pretrain GENOME.fa[.gz]… TOKENS.json [-o OUT] [--exclude DATASET_DIR…] [options]",
        description=(
            "Pre-train a BERT-family encoder (the classifier's architecture) by masked-language modelling on\n"
            "unlabelled FASTA (whole genomes or any sequences), streamed in windows of the model's length on both\n"
            "strands. --exclude masks with N every genome position covered, on either strand, by a sequence of the\n"
            "datasets' valid and test splits, so fine-tuning on them is never evaluated on sequences seen here.\n"
            "Prints mlm_loss/mlm_accuracy lines; writes OUT/encoder (safetensors, tokeniser, genomenlp.json),\n"
            "OUT/history.csv and OUT/metrics.json. Re-running the same command after an interruption resumes from\n"
            "the last checkpoint. Fine-tune from it with train --init_from OUT/encoder.\n\n"
            "example: pretrain data/ecoli_genome/GCF_000005845.2_ASM584v2_genomic.fna.gz tokens.json -o pretrain_out\n"
            "           --exclude runs/training/dataset --max_steps 2000"
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="FASTA files to pre-train on (local or s3://), then the tokeniser JSON "
                             "(tokenise_bio / kmerise_bio)")
    parser.add_argument("-o", "--output_dir", default="pretrain_out", help="output folder (default: pretrain_out)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="DATASET_DIR",
                        help="dataset folders whose valid and test sequences are masked out of the corpus "
                             "(give it after the inputs)")
    parser.add_argument("--kmer_stride", type=int, default=1,
                        help="step between k-mer starts the k-mer tokeniser was built with "
                             "(kmerise_bio -s; default: 1)")
    parser.add_argument("-d", "--device", choices=["auto", "cpu", "cuda"], default=argparse.SUPPRESS,
                        help="where to train (default: auto = CUDA when present)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run in OUT")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    add_config_arguments(parser, PretrainConfig, skip=("device",))
    add_config_arguments(parser, ModelConfig)
    return parser


def _body(argv: list[str] | None) -> int:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    args = build_parser().parse_args(argv)
    if len(args.inputs) < 2:
        raise InputError(args.inputs[0], "give one or more FASTA files and then the tokeniser JSON")
    *genomes, tokens = args.inputs
    if tokens.lower().endswith((".fa", ".fasta", ".fna", ".gz")):
        raise InputError(tokens, "the last input must be the tokeniser JSON (tokenise_bio / kmerise_bio), not FASTA")
    config = config_from_args(PretrainConfig, args)
    model_config = config_from_args(ModelConfig, args)
    summary = pretrain_encoder(genomes, tokens, args.output_dir, model_config, config, args.exclude, args.kmer_stride,
                               args.overwrite, not args.no_progress, print_metric_lines, print)
    resumed = f", resumed from step {summary['resumed_from_step']}" if summary["resumed_from_step"] else ""
    print(f"pre-trained {summary['steps']} steps ({summary['tokens_seen']:,} tokens, "
          f"{summary['tokens_per_second']:,.0f} tokens/s on {summary['device']}{resumed}): "
          f"mlm_loss {summary['mlm_loss']:.4f}, mlm_accuracy {summary['mlm_accuracy']:.4f}")
    print(f"encoder: {args.output_dir}/{ENCODER_DIR}  metrics: {args.output_dir}/{METRICS_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pretrain``."""
    return run_command(_body, argv, "pretrain")


if __name__ == "__main__":
    sys.exit(main())
