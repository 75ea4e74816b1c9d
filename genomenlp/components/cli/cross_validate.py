"""``cross_validate``: k-fold cross-validation of the chosen hyperparameters."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from genomenlp.components.cli.common import HelpFormatter, add_config_arguments, run_command
from genomenlp.components.cli.tracking import add_tracker_arguments, send_result, tracking_notes, tracking_tags
from genomenlp.components.cli.train import (
    add_data_arguments,
    add_label_argument,
    configs_from_args,
    interrupted_run,
    label_column,
    print_notes,
    settings_of,
)
from genomenlp.components.errors import InputError
from genomenlp.components.registry import cv_metadata
from genomenlp.components.search.runs import DEFAULT_SWEEP_DIR, resolve_run
from genomenlp.components.training.config import ModelConfig, TrainConfig, read_hyperparams
from genomenlp.components.training.cross_validation import CV_METRICS_FILE, CV_STATE_FILE, FOLDS_FILE, cross_validate
from genomenlp.components.training.report import cv_warnings
from genomenlp.components.training.run import CHECKPOINT_DIR, METRICS_FILE, TrainingData
from genomenlp.components.training.state import STATE_FILE


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``cross_validate`` (the original's positional ``TRAIN FORMAT``)."""
    parser = argparse.ArgumentParser(
        prog="cross_validate",
        description=(
            "Stratified, shuffled, seeded k-fold cross-validation over the training split. Reverse complements,\n"
            "duplicates and chunks of one record stay in one fold; every fold trains a freshly initialised model\n"
            "and predicts its held-out fold after every epoch. The latest epoch whose mean held-out\n"
            "metric_for_best_model is within one standard error of the best is chosen, and every fold is scored\n"
            "there (train --stop_at_epoch E stops a final model at it). Writes OUT/folds.csv,\n"
            "OUT/cv_metrics.json (per fold, mean and sd, the epoch choice), OUT/report.html with its figures,\n"
            "and one run folder per fold, with its model at the chosen epoch in fold_K/model_at_chosen_epoch\n"
            "(ensemble --cross_validation OUT averages them with a final model).\n"
            "A fold whose model collapsed (one class, or chance F1, on validation) is printed and reported as such.\n\n"
            "Hyperparameters come from -w FILE, or --config_from_run RUN: a trial id that sweep printed ('Best run\n"
            "trial_0002 with eval_f1=...') of the sweep folder -m SWEEP_DIR, a sweep or run folder, or\n"
            "registry:NAME@VERSION. Flags override them.\n\n"
            "examples:\n"
            "  cross_validate data/train.parquet parquet -t test -v valid -w hyperparams.json -k 5 -o cv\n"
            "  cross_validate data/train.parquet parquet --config_from_run trial_0002 -m sweep_out -k 5 -o cv"
        ),
        formatter_class=HelpFormatter,
    )
    add_data_arguments(parser, with_tokeniser=False)
    parser.add_argument("--tokeniser_path", metavar="JSON",
                        help="tokeniser the data was encoded with (default: tokenizer.json beside TRAIN)")
    parser.add_argument("-w", "--hyperparameters", metavar="JSON", help="HF TrainingArguments-style JSON")
    parser.add_argument("-c", "--config_from_run", metavar="RUN",
                        help="take hyperparameters from a recorded run: a trial id printed by sweep (looked up in -m), "
                             "a sweep or run folder, a model folder, or registry:NAME@VERSION")
    parser.add_argument("-m", "--model_path", metavar="SWEEP_DIR",
                        help=f"the sweep folder whose trial --config_from_run names (default: {DEFAULT_SWEEP_DIR}); "
                             "alone, a sweep, run or model folder whose settings to use. Every fold still trains "
                             "from a fresh initialisation")
    parser.add_argument("-k", "--folds", type=int, default=5, help="number of folds (default: 5)")
    parser.add_argument("-o", "--output_dir", default="cv_out", help="output folder (default: cv_out)")
    parser.add_argument("-d", "--device", choices=["auto", "cpu", "cuda"], default=argparse.SUPPRESS,
                        help="where to train (default: auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished cross-validation in OUT")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    add_label_argument(parser)
    add_tracker_arguments(parser, default_group="crossval")
    add_config_arguments(parser, TrainConfig, skip=("device",))
    add_config_arguments(parser, ModelConfig)
    return parser


def interrupted_cross_validation(out_dir: str) -> str:
    """What Ctrl-C left of a cross-validation: finished folds and the interrupted fold's checkpoint."""
    out = Path(out_dir)
    if not (out / CV_STATE_FILE).is_file():
        return "no fold had started, nothing to keep"
    folds = sorted(out.glob("fold_*"), key=lambda path: int(path.name.removeprefix("fold_")))
    finished = [str(path) for path in folds if (path / METRICS_FILE).is_file()]
    parts = [f"kept the finished folds {', '.join(finished)}" if finished else "no fold had finished"]
    running = [path for path in folds if not (path / METRICS_FILE).is_file()]
    if running and (running[0] / CHECKPOINT_DIR / STATE_FILE).is_file():
        parts.append(interrupted_run(str(running[0])).split(";")[0].replace("kept ", "and ", 1))
    return (f"{' '.join(parts)}; no summary was written; run the same command again to continue (finished folds "
            "are kept), or with --overwrite to start over")


def _body(argv: list[str] | None) -> int:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    args = build_parser().parse_args(argv)
    print_notes(tracking_notes(args, "cross_validate"))
    run = args.config_from_run or args.model_path
    settings = None
    if run:
        if args.hyperparameters:
            raise InputError("--config_from_run", "give either -w or --config_from_run/-m, not both")
        settings = resolve_run(run, args.model_path if args.config_from_run else None)
        print(f"hyperparameters from {settings.source}")
    tokeniser = args.tokeniser_path or str(Path(args.train).parent / "tokenizer.json")
    values = settings.values if settings else (read_hyperparams(args.hyperparameters) if args.hyperparameters else {})
    model_config, train_config = configs_from_args(args, values, settings.source if settings else
                                                   (args.hyperparameters or "flags"))
    data = TrainingData(args.train, args.format, tokeniser, args.test, args.valid, label_column(args))
    try:
        result = cross_validate(data, model_config, train_config, args.folds, args.output_dir, args.overwrite,
                                not args.no_progress, tracking=tracking_tags(args), training_arguments=values)
    except KeyboardInterrupt:
        print(f"cross_validate: interrupted; {interrupted_cross_validation(args.output_dir)}", file=sys.stderr)
        return 130
    for key in ("test_mcc", "test_roc_auc", "test_f1"):
        figures = result["summary"][key]
        baseline = result["summary"].get(f"kmer_1_4_{key}")
        beside = f"   (1–4-mer baseline {baseline['mean']:.3f} ± {baseline['sd']:.3f})" if baseline else ""
        print(f"{key.removeprefix('test_')}: {figures['mean']:.3f} ± {figures['sd']:.3f}{beside}")
    collapsed = result["collapsed_folds"]
    if collapsed:
        print(f"COLLAPSED: {len(collapsed)} of {args.folds} folds ({', '.join(map(str, collapsed))}) predicted one "
              f"class or no better than chance on validation; see {args.output_dir}/report.html")
    warnings = [(headline, text) for headline, text in cv_warnings(result) if headline != "COLLAPSED"]
    for headline, text in warnings:
        print(f"{headline}: {text}")
    if not warnings and not collapsed:
        lead = result["summary"]["test_mcc"]["mean"] - result["summary"]["kmer_1_4_test_mcc"]["mean"]
        print(f"the model beats the 1–4-mer baseline on mean MCC by {lead:.3f}")
    choice = result.get("epoch_choice")
    if choice:
        print(f"figures after epoch {choice['chosen_epoch']}: train with the same settings and --stop_at_epoch "
              f"{choice['chosen_epoch']} to stop the final model there")
    print(f"per fold: {args.output_dir}/{FOLDS_FILE}  summary: {args.output_dir}/{CV_METRICS_FILE}")
    send_result("cross_validate", {**cv_metadata(result), "collapsed_folds": len(collapsed)}, args,
                settings_of(model_config, train_config))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cross_validate``."""
    return run_command(_body, argv, "cross_validate")


if __name__ == "__main__":
    sys.exit(main())
