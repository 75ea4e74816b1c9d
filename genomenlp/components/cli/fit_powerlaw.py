"""``fit_powerlaw``: weight quality of trained models (WeightWatcher alpha) beside their test quality."""

from __future__ import annotations

import argparse
import logging
import math
import sys

from genomenlp.components.cli.common import HelpFormatter, add_config_arguments, config_from_args, run_command
from genomenlp.components.compare.powerlaw import (
    HISTOGRAM_STEM,
    LAYER_FILE,
    LAYER_PLOT_STEM,
    SUMMARY_FILE,
    MetricsLookup,
    PowerlawConfig,
    fit_powerlaw,
)
from genomenlp.components.errors import InputError
from genomenlp.components.storage import join


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``fit_powerlaw``."""
    parser = argparse.ArgumentParser(
        prog="fit_powerlaw",
        description=(
            "Fit a power law to the eigenvalue spectrum of every weight matrix of each model's encoder\n"
            "(WeightWatcher; the classification head is left out). The exponent alpha needs no data: 2-6 is the\n"
            "well-trained range, above 6 suggests under-training. Writes per model OUT/<model>/alpha.tsv,\n"
            "alpha_hist.pdf and alpha_plot.pdf; overlays of all models in OUT/alpha_hist.pdf and OUT/alpha_plot.pdf\n"
            "(PNG copies of every figure); and OUT/summary.tsv, one row per model with its test MCC, ROC-AUC and\n"
            "F1 where known (train's metrics.json beside or above the model folder).\n\n"
            "examples:\n"
            "  fit_powerlaw runs/a/model_files runs/b/model_files -o powerlaw_out\n"
            "  fit_powerlaw -m sweep_out/model_files -o fit          (the original's form; -m may repeat)"
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="model folder (train's OUT/model_files) or registry:NAME[@VERSION|@STAGE]")
    parser.add_argument("-m", "--model_path", dest="model_paths", action="extend", nargs="+", default=[],
                        metavar="MODEL", help="the same as MODEL, as the original took it (may repeat)")
    parser.add_argument("-o", "--output_dir", default="powerlaw_out", help="output folder (default: powerlaw_out)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    add_config_arguments(parser, PowerlawConfig)
    return parser


def _figure(value: float, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _body(argv: list[str] | None, metrics_lookup: MetricsLookup | None = None) -> int:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    args = build_parser().parse_args(argv)
    config = config_from_args(PowerlawConfig, args)
    models = [*args.models, *args.model_paths]
    if not models:
        raise InputError("MODEL", "give at least one model folder or registry reference (positional or -m)")
    table = fit_powerlaw(models, config, args.output_dir, args.overwrite, metrics_lookup)
    width = max(5, *(len(name) for name in table["model"]))
    print(f"{'model'.ljust(width)}  matrices  alpha mean  median  in 2-6  test MCC  ROC-AUC")
    for row in table.to_dict("records"):
        print(f"{row['model'].ljust(width)}  {row['layers_fitted']:>8}  {_figure(row['alpha_mean']):>10}  "
              f"{_figure(row['alpha_median']):>6}  {_figure(100 * row['share_alpha_2_6'], 0):>5}%  "
              f"{_figure(row['test_mcc'], 3):>8}  {_figure(row['test_roc_auc'], 3):>7}")
    out = args.output_dir
    print(f"summary: {join(out, SUMMARY_FILE)}  overlays: {join(out, HISTOGRAM_STEM)}.pdf, "
          f"{join(out, LAYER_PLOT_STEM)}.pdf (+ .png)  per model: {join(out, '<model>', LAYER_FILE)}")
    return 0


def main(argv: list[str] | None = None, metrics_lookup: MetricsLookup | None = None) -> int:
    """Entry point of ``fit_powerlaw`` (the installed command may pass a registry metrics lookup)."""
    return run_command(lambda args: _body(args, metrics_lookup), argv, "fit_powerlaw")


if __name__ == "__main__":
    sys.exit(main())
