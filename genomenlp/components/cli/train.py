"""``train``: a genomicBERT classifier from a dataset, chosen on valid, reported on test."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from genomenlp.components.cli.common import HelpFormatter, add_config_arguments, run_command
from genomenlp.components.cli.tracking import (
    TRACKING_KEY,
    add_tracker_arguments,
    send_result,
    tracking_notes,
    tracking_tags,
)
from genomenlp.components.errors import InputError
from genomenlp.components.registry import version_metadata
from genomenlp.components.training.config import (
    ModelConfig,
    TrainConfig,
    model_config_from_mapping,
    read_hyperparams,
    training_config_from_mapping,
)
from genomenlp.components.training.data import FORMATS
from genomenlp.components.training.run import (
    CHECKPOINT_DIR,
    METRICS_FILE,
    MODEL_DIR,
    REPORT_FILE,
    TrainingData,
    train_classifier,
)
from genomenlp.components.training.state import STATE_FILE, is_main_process

TRIAL_FLAGS = ("learning_rate", "per_device_train_batch_size", "num_train_epochs", "weight_decay", "seed")


# Called with (model folder, metrics summary, registry name) after a successful run, when the
# ZenML layer is loaded (see genomenlp/platform/commands.py); plain components usage registers nothing.
ModelRegistrar = Callable[[Path, dict, str], int]

# The exit status of a collapsed run under --fail_on_collapse (2 is bad input, 130 Ctrl-C).
COLLAPSED_EXIT = 3


def add_register_arguments(parser: argparse.ArgumentParser) -> None:
    """``--register NAME`` / ``--no_register``: record the model in the model registry."""
    parser.add_argument("--register", default="genomic_bert", metavar="NAME",
                        help="register the model as a new version of NAME in ZenML's model registry "
                             "(default: genomic_bert)")
    parser.add_argument("--no_register", action="store_true", help="do not register the model")


def register_if_asked(args: argparse.Namespace, registrar: ModelRegistrar | None, model_dir: Path,
                      summary: dict) -> None:
    """Register the run's model unless ``--no_register`` or it collapsed; say where it went."""
    if args.no_register:
        return
    if summary.get("collapsed"):
        print("model not registered: it collapsed (a constant predictor is never a candidate)")
        return
    if registrar is None:
        print("model not registered: run the installed command (with ZenML) to register it")
        return
    version = registrar(model_dir, summary, args.register)
    tags = "".join(f" {name}={value}" for name, value in (summary.get(TRACKING_KEY) or {}).items())
    print(f"registered as registry:{args.register}@{version}" + (f" (tagged{tags})" if tags else ""))


def settings_of(model_config: ModelConfig, train_config: TrainConfig) -> dict:
    """The settings a run used, flat (what a tracker shows as the run's config)."""
    return {**model_config.model_dump(mode="json"), **train_config.model_dump(mode="json", exclude={"device"})}


def add_label_argument(parser: argparse.ArgumentParser) -> None:
    """``-l/--label_names COLUMN``: the label column, as HF ``TrainingArguments.label_names`` names it."""
    parser.add_argument("-l", "--label_names", nargs="+", default=["labels"], metavar="COLUMN",
                        help="column holding the class ids (default: labels, as create_dataset_bio writes it)")


def label_column(args: argparse.Namespace) -> str:
    """The one label column ``-l`` names (the classifiers here predict one label per sequence)."""
    if len(args.label_names) != 1:
        raise InputError("-l/--label_names", f"give one label column, got {len(args.label_names)}: "
                         f"{' '.join(args.label_names)}")
    return args.label_names[0]


def interrupted_run(out_dir: str) -> str:
    """What Ctrl-C left of a training run in ``out_dir``: its last finished epoch, or nothing."""
    state = Path(out_dir) / CHECKPOINT_DIR / STATE_FILE
    if not state.is_file():
        return "no epoch had finished, nothing to keep"
    epoch = json.loads(state.read_text())["epoch"]
    return (f"kept the checkpoint of epoch {epoch} in {state.parent}; run the same command again to resume "
            "from it")


def print_notes(notes: list[str]) -> None:
    """Notes about accepted flags that have no effect here, one line each, on stderr."""
    for note in notes:
        print(note, file=sys.stderr)


def add_data_arguments(parser: argparse.ArgumentParser, with_tokeniser: bool = True) -> None:
    """The original's positional ``TRAIN FORMAT [TOKENISER]`` and ``-t``/``-v`` split arguments."""
    parser.add_argument("train", metavar="TRAIN", help="training split, e.g. data/train.parquet (local or s3://)")
    parser.add_argument("format", choices=FORMATS, metavar="FORMAT", help=f"file format: {', '.join(FORMATS)}")
    if with_tokeniser:
        parser.add_argument("tokeniser_path", metavar="TOKENISER", help="tokeniser JSON the data was encoded with")
    parser.add_argument("-t", "--test", default="test",
                        help="test split: a path or a name beside TRAIN (default: test)")
    parser.add_argument("-v", "--valid", default="valid", help="validation split, likewise (default: valid)")


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``train``."""
    parser = argparse.ArgumentParser(
        prog="train",
        description=(
            "Train a randomly initialised BERT-family classifier (genomicBERT) on a dataset from create_dataset_bio\n"
            "or kmerise_bio. The epoch is chosen on the validation split; test figures are reported beside a GC-\n"
            "content and a 1-4-mer logistic-regression baseline. Writes OUT/model_files (safetensors, tokeniser,\n"
            "label names), OUT/metrics.json, OUT/history.csv, OUT/plots/*.png and OUT/report.html. Re-running the\n"
            "same command after an interruption resumes from the last finished epoch.\n\n"
            "example: train data/train.parquet parquet tokens.json -t test -v valid -w hyperparams.json -o out"
        ),
        formatter_class=HelpFormatter,
    )
    add_data_arguments(parser)
    parser.add_argument("-w", "--hyperparameters", metavar="JSON",
                        help="HF TrainingArguments-style JSON (unused keys ignored, flags below win)")
    parser.add_argument("-o", "--output_dir", default="train_out", help="output folder (default: train_out)")
    parser.add_argument("-d", "--device", choices=["auto", "cpu", "cuda"], default=argparse.SUPPRESS,
                        help="where to train (default: auto = CUDA when present)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run in OUT")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    parser.add_argument("--fail_on_collapse", action="store_true",
                        help=f"exit with status {COLLAPSED_EXIT} when the run collapsed, so a search (a Katib "
                             "trial) counts it as failed and never chooses it")
    add_label_argument(parser)
    parser.add_argument("-n", "--sweep_count", type=int, metavar="N",
                        help="accepted for the original tutorial's command line and ignored: train runs once "
                             "(use sweep -n for a search)")
    add_tracker_arguments(parser, default_group="train")
    add_register_arguments(parser)
    add_config_arguments(parser, TrainConfig, skip=("device",))
    add_config_arguments(parser, ModelConfig)
    return parser


def configs_from_args(args: argparse.Namespace, values: dict | None = None,
                      source: str | None = None) -> tuple[ModelConfig, TrainConfig]:
    """The ``-w`` file's settings (or ``values`` from ``source``) with every flag given on the command line on top."""
    if values is None:
        values = read_hyperparams(args.hyperparameters) if args.hyperparameters else {}
        source = args.hyperparameters or "flags"
    init_from = getattr(args, "init_from", None) or values.get("init_from")
    if init_from:
        # Fine-tuning: the classifier takes the encoder's shape unless the file or flags say otherwise.
        from genomenlp.components.pretraining.transfer import encoder_model_config

        values = {**encoder_model_config(init_from).model_dump(mode="json"), **values}
    model_flags = {name: getattr(args, name) for name in ModelConfig.model_fields if hasattr(args, name)}
    train_flags = {name: getattr(args, name) for name in TrainConfig.model_fields if hasattr(args, name)}
    return (model_config_from_mapping(values, source, model_flags),
            training_config_from_mapping(values, source, train_flags))


def _body(argv: list[str] | None, registrar: ModelRegistrar | None = None) -> int:
    from genomenlp.components.training.epoch_choice import checkpoint_choice

    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    args = build_parser().parse_args(argv)
    notes = tracking_notes(args, "train")
    if args.sweep_count is not None:
        notes.append(f"train: note: -n {args.sweep_count} is ignored: train runs once "
                     "(sweep -n sets a search's trials)")
    print_notes(notes)
    data = TrainingData(args.train, args.format, args.tokeniser_path, args.test, args.valid, label_column(args))
    values = read_hyperparams(args.hyperparameters) if args.hyperparameters else {}
    model_config, train_config = configs_from_args(args, values, args.hyperparameters or "flags")
    try:
        summary = train_classifier(data, model_config, train_config, args.output_dir, args.overwrite,
                                   not args.no_progress, tracking=tracking_tags(args), training_arguments=values)
    except KeyboardInterrupt:
        print(f"train: interrupted; {interrupted_run(args.output_dir)}", file=sys.stderr)
        return 130
    if not is_main_process():
        # Under torchrun every process trains; the first reports and registers, once.
        return 0
    if summary.get("collapsed"):
        print(f"COLLAPSED: {summary['collapsed'].removeprefix('collapsed: ')}")
        if args.fail_on_collapse:
            print(f"train: error: {args.output_dir}: {summary['collapsed']}", file=sys.stderr)
            return COLLAPSED_EXIT
    elif summary.get("stopped_early"):
        print(summary["stopped_early"])
    flag = "beats" if summary["beats_kmer_baseline"] else "does NOT beat"
    print(f"test: MCC {summary['test_mcc']:.3f}  ROC-AUC {summary['test_roc_auc']:.3f}  F1 {summary['test_f1']:.3f} "
          f"({checkpoint_choice(summary)}); {flag} the k-mer baseline")
    print(f"model: {args.output_dir}/{MODEL_DIR}  metrics: {args.output_dir}/{METRICS_FILE}  "
          f"report: {args.output_dir}/{REPORT_FILE}")
    send_result("train", version_metadata(summary), args, settings_of(model_config, train_config))
    register_if_asked(args, registrar, Path(args.output_dir) / MODEL_DIR, summary)
    return 0


def main(argv: list[str] | None = None, registrar: ModelRegistrar | None = None) -> int:
    """Entry point of ``train`` (the installed command passes a registrar)."""
    return run_command(lambda args: _body(args, registrar), argv, "train")


if __name__ == "__main__":
    sys.exit(main())
