"""``ensemble``: one model from several trained ones (mean of their logits), scored on a test split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genomenlp.components.cli.common import HelpFormatter, run_command
from genomenlp.components.errors import InputError
from genomenlp.components.filenames import METRICS_FILE, MODEL_DIR, REPORT_FILE, TOKENIZER_FILE


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``ensemble``."""
    parser = argparse.ArgumentParser(
        prog="ensemble",
        description=(
            "Average several classifiers trained with one tokeniser and the same classes into one model: its\n"
            "logits are the mean of theirs. predict, interpret and the registry take OUT/model_files like any\n"
            "model. --cross_validation adds every fold model of a cross_validate folder at the epoch its folds\n"
            "chose. With --dataset, the ensemble and each member are scored on its test split beside the\n"
            "1-4-mer baseline (OUT/metrics.json, OUT/report.html).\n\n"
            "examples:\n"
            "  ensemble train_out/model_files --cross_validation cv_out --dataset data -o ensemble_out\n"
            "  ensemble run_a/model_files run_b/model_files run_c/model_files -o ensemble_out"
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="model folder (train's OUT/model_files) or registry:NAME[@VERSION|@STAGE]")
    parser.add_argument("--cross_validation", metavar="CV_DIR",
                        help="a cross_validate output folder: its fold models at the chosen epoch become members")
    parser.add_argument("--dataset", metavar="DIR",
                        help="dataset folder (train/valid/test.parquet and tokenizer.json) whose test split scores "
                             "the ensemble and its members")
    parser.add_argument("--tokeniser_path", metavar="JSON",
                        help="tokeniser the dataset was encoded with (default: DIR/tokenizer.json)")
    parser.add_argument("--positive_label", help="class of the ROC and PR curves (default: the first class)")
    parser.add_argument("-o", "--output_dir", default="ensemble_out", help="output folder (default: ensemble_out)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    return parser


def _members(args) -> list[tuple[str, str]]:
    from genomenlp.components.model_io import resolve_model_path
    from genomenlp.components.training.cross_validation import CV_METRICS_FILE
    from genomenlp.components.training.ensemble import fold_model_dirs

    members = [(str(reference), resolve_model_path(reference)) for reference in args.models]
    if args.cross_validation:
        metrics = Path(args.cross_validation) / CV_METRICS_FILE
        if not metrics.is_file():
            raise InputError(args.cross_validation, f"has no {CV_METRICS_FILE}: give a finished cross_validate folder")
        result = json.loads(metrics.read_text(encoding="utf-8"))
        folds = fold_model_dirs(args.cross_validation, result)
        if not folds:
            raise InputError(str(metrics), "names no fold model at a chosen epoch (cross-validated before fold "
                             "weights were kept per epoch, or every fold collapsed): run cross_validate again")
        members += [(name, str(path)) for name, path in folds]
    return members


def _body(argv: list[str] | None) -> int:
    from genomenlp.components.training.ensemble import build_ensemble_folder
    from genomenlp.components.training.run import TrainingData, load_training_data

    args = build_parser().parse_args(argv)
    members = _members(args)
    data = None
    if args.dataset:
        tokeniser = args.tokeniser_path or str(Path(args.dataset) / TOKENIZER_FILE)
        data = load_training_data(TrainingData(str(Path(args.dataset) / "train.parquet"), "parquet", tokeniser))
    summary = build_ensemble_folder(members, args.output_dir, data, args.positive_label, overwrite=args.overwrite)
    print(f"ensemble of {len(members)} models: {args.output_dir}/{MODEL_DIR}")
    if "test_mcc" not in summary:
        return 0
    baseline = summary["baselines"].get("kmer_1_4", {})
    rows = [(row["name"], row) for row in summary["members"]] + [("ensemble", summary)]
    if baseline:
        rows.append(("1–4-mer baseline", baseline))
    width = max(len(name) for name, _ in rows)
    print(f"test split ({summary['roc_positive_label']} positive):\n  {'':{width}}    MCC  ROC-AUC     F1")
    for name, figures in rows:
        print(f"  {name:{width}}  {figures['test_mcc']:.3f}    {figures['test_roc_auc']:.3f}  "
              f"{figures['test_f1']:.3f}")
    if baseline:
        lead = summary["test_mcc"] - baseline["test_mcc"]
        print(f"ensemble MCC {lead:+.3f} against the 1–4-mer baseline: {'beats' if lead > 0 else 'does NOT beat'} it")
        print(f"metrics: {args.output_dir}/{METRICS_FILE}  report: {args.output_dir}/{REPORT_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ensemble``."""
    return run_command(_body, argv, "ensemble")
