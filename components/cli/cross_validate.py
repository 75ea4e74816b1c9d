"""``cross_validate``: k-fold cross-validation of the chosen hyperparameters."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from components.cli.common import HelpFormatter, add_config_arguments, run_command
from components.cli.train import add_data_arguments, configs_from_args
from components.errors import InputError
from components.search.local import BEST_FILE
from components.training.config import ModelConfig, TrainConfig
from components.training.cross_validation import CV_METRICS_FILE, FOLDS_FILE, cross_validate
from components.training.run import TrainingData


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``cross_validate`` (the original's positional ``TRAIN FORMAT``)."""
    parser = argparse.ArgumentParser(
        prog="cross_validate",
        description=(
            "Stratified, shuffled, seeded k-fold cross-validation over the training split. Reverse complements,\n"
            "duplicates and chunks of one record stay in one fold; every fold trains a freshly initialised model\n"
            "(epoch chosen on the validation split) and is scored on its held-out fold. Writes OUT/folds.csv,\n"
            "OUT/cv_metrics.json (per fold, mean and sd), OUT/cv_metrics.png and one run folder per fold.\n\n"
            "example: cross_validate data/train.parquet parquet -t test -v valid -w hyperparams.json -k 5 -o cv"
        ),
        formatter_class=HelpFormatter,
    )
    add_data_arguments(parser, with_tokeniser=False)
    parser.add_argument("--tokeniser_path", metavar="JSON",
                        help="tokeniser the data was encoded with (default: tokenizer.json beside TRAIN)")
    parser.add_argument("-w", "--hyperparameters", metavar="JSON", help="HF TrainingArguments-style JSON")
    parser.add_argument("--config_from_run", metavar="SWEEP_DIR",
                        help="take hyperparameters from a sweep's output folder (its hyperparams.json)")
    parser.add_argument("-k", "--folds", type=int, default=5, help="number of folds (default: 5)")
    parser.add_argument("-o", "--output_dir", default="cv_out", help="output folder (default: cv_out)")
    parser.add_argument("-d", "--device", choices=["auto", "cpu", "cuda"], default=argparse.SUPPRESS,
                        help="where to train (default: auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished cross-validation in OUT")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    add_config_arguments(parser, TrainConfig, skip=("device",))
    add_config_arguments(parser, ModelConfig)
    return parser


def _body(argv: list[str] | None) -> int:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    args = build_parser().parse_args(argv)
    if args.config_from_run:
        if args.hyperparameters:
            raise InputError("--config_from_run", "give either -w or --config_from_run, not both")
        args.hyperparameters = str(Path(args.config_from_run) / BEST_FILE)
    tokeniser = args.tokeniser_path or str(Path(args.train).parent / "tokenizer.json")
    model_config, train_config = configs_from_args(args)
    data = TrainingData(args.train, args.format, tokeniser, args.test, args.valid)
    result = cross_validate(data, model_config, train_config, args.folds, args.output_dir, args.overwrite,
                            not args.no_progress)
    for key in ("test_mcc", "test_roc_auc", "test_f1"):
        figures = result["summary"][key]
        baseline = result["summary"].get(f"kmer_1_4_{key}")
        beside = f"   (1–4-mer baseline {baseline['mean']:.3f} ± {baseline['sd']:.3f})" if baseline else ""
        print(f"{key.removeprefix('test_')}: {figures['mean']:.3f} ± {figures['sd']:.3f}{beside}")
    print(f"per fold: {args.output_dir}/{FOLDS_FILE}  summary: {args.output_dir}/{CV_METRICS_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cross_validate``."""
    return run_command(_body, argv, "cross_validate")


if __name__ == "__main__":
    sys.exit(main())
