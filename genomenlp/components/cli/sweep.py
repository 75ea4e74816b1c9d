"""``sweep``: hyperparameter search from a sweep JSON, locally with Optuna."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from genomenlp.components.cli.common import HelpFormatter, add_config_arguments, run_command
from genomenlp.components.cli.tracking import add_tracker_arguments, tracking_notes, tracking_tags
from genomenlp.components.cli.train import (
    ModelRegistrar,
    add_data_arguments,
    add_label_argument,
    add_register_arguments,
    configs_from_args,
    label_column,
    print_notes,
    register_if_asked,
)
from genomenlp.components.search.local import BEST_FILE, TRIALS_FILE, SweepInterrupted, run_sweep
from genomenlp.components.search.spec import load_sweep
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.run import MODEL_DIR, TrainingData


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``sweep``."""
    parser = argparse.ArgumentParser(
        prog="sweep",
        description=(
            "Search hyperparameters with the hosted-dashboard sweep format (method random, grid or bayes; metric;\n"
            "parameters as values, value or min/max with a distribution; early_terminate hyperband). Runs offline\n"
            "with Optuna; the study is kept in OUT/study.db, so running the command again continues it up to -n\n"
            "trials. A trial whose loss diverges is recorded as failed and the search goes on; a trial whose\n"
            "validation predictions collapse to one class (or chance F1) is stopped after --collapse_epochs epochs,\n"
            "pruned and never chosen. Writes OUT/trials.csv, OUT/trials.json (every trial's settings, by the id\n"
            "printed as 'Best run <id>'), OUT/hyperparams.json (ready for train -w) and the best trial's model in\n"
            "OUT/model_files.\n"
            "Ctrl-C keeps the study and every finished trial; the same command continues it.\n\n"
            "example: sweep data/train.parquet parquet tokens.json -t test -v valid -w sweep.json -n 8 -o sweep_out"
        ),
        formatter_class=HelpFormatter,
    )
    add_data_arguments(parser)
    parser.add_argument("-w", "--sweep_config", required=True, metavar="JSON", help="sweep specification")
    parser.add_argument("-n", "--sweep_count", type=int, default=8, help="number of trials (default: 8)")
    add_label_argument(parser)
    parser.add_argument("-o", "--output_dir", default="sweep_out", help="output folder (default: sweep_out)")
    parser.add_argument("--hyperparameters", metavar="JSON",
                        help="fixed settings under the search (TrainingArguments-style)")
    parser.add_argument("-d", "--device", choices=["auto", "cpu", "cuda"], default=argparse.SUPPRESS,
                        help="where to train (default: auto)")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    parser.add_argument("--backend", choices=["local", "katib"], default="local",
                        help="local: Optuna here (default); katib: an Experiment on the cluster (TRAIN, TOKENISER, "
                             "-t, -v as the trial pods see them, usually s3://)")
    parser.add_argument("--dry_run", "--dry-run", action="store_true",
                        help="with --backend katib: only write the Experiment YAML")
    parser.add_argument("--katib_config", metavar="YAML",
                        help="KatibConfig fields: namespace, image, gpus, node_selector, tolerations, budgets, "
                             "timeout_s")
    parser.add_argument("--experiment_yaml", metavar="PATH",
                        help="where to write the Experiment (default: OUT/experiment.yaml)")
    parser.add_argument("--katib_host", metavar="URL", help="Kubernetes API server URL instead of the kubeconfig")
    parser.add_argument("--keep_experiment", action="store_true", help="leave the Experiment on the cluster afterwards")
    add_tracker_arguments(parser, default_group="sweep", sweep=True)
    add_register_arguments(parser)
    add_config_arguments(parser, TrainConfig, skip=("device",))
    add_config_arguments(parser, ModelConfig)
    return parser


def _body(argv: list[str] | None, registrar: ModelRegistrar | None = None) -> int:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.dry_run and args.backend != "katib":
        parser.error("--dry_run only applies with --backend katib")
    print_notes(tracking_notes(args, "sweep"))
    spec = load_sweep(args.sweep_config)
    if args.backend == "katib":
        from genomenlp.components.katib.cli_support import katib_sweep

        fixed = {n: getattr(args, n) for n in (*TrainConfig.model_fields, *ModelConfig.model_fields)
                 if hasattr(args, n) and n != "device"}
        return katib_sweep(spec, katib_config=args.katib_config, train=args.train, file_format=args.format,
                           tokeniser=args.tokeniser_path, test=args.test, valid=args.valid, trials=args.sweep_count,
                           output_dir=args.output_dir, fixed=fixed, dry_run=args.dry_run,
                           experiment_yaml=args.experiment_yaml, host=args.katib_host, keep=args.keep_experiment)
    model, training = configs_from_args(args)
    data = TrainingData(args.train, args.format, args.tokeniser_path, args.test, args.valid, label_column(args))
    try:
        result = run_sweep(spec, data, model, training, args.sweep_count, args.output_dir, not args.no_progress,
                           tracking=tracking_tags(args))
    except SweepInterrupted as interrupted:
        print(f"sweep: interrupted; {interrupted.kept}", file=sys.stderr)
        return 130
    failed = sum(row["state"] == "FAIL" for row in result["trials"])
    pruned = sum(row["state"] == "PRUNED" for row in result["trials"]) - result["collapsed"]
    print(f"{len(result['trials'])} trials ({failed} failed, {result['collapsed']} collapsed, {pruned} pruned): "
          f"{args.output_dir}/{TRIALS_FILE}")
    if result["collapse_advice"]:
        print(f"{result['collapse_advice']}; collapsed trials are never chosen")
    # The original's line: its id is what `cross_validate --config_from_run ID -m OUT` takes.
    print(f"Best run {result['best_id']} with {spec.metric.key}={result['best_value']:.4f}")
    print(f"hyperparameters: {args.output_dir}/{BEST_FILE}  model: {args.output_dir}/{MODEL_DIR}")
    register_if_asked(args, registrar, Path(args.output_dir) / MODEL_DIR, result["summary"])
    return 0


def main(argv: list[str] | None = None, registrar: ModelRegistrar | None = None) -> int:
    """Entry point of ``sweep`` (the installed command passes a registrar)."""
    return run_command(lambda args: _body(args, registrar), argv, "sweep")


if __name__ == "__main__":
    sys.exit(main())
