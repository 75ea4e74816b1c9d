"""``genomenlp-pipeline``: run a ZenML pipeline on the active stack from its YAML configuration.

One sub-command per pipeline; every pipeline parameter lives in the YAML (ZenML's own schema), so
the command has no flags that repeat them. With no stack set up, ZenML's embedded default stack
(local orchestrator, local artifact store, SQLite) is used.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genomenlp.components.cli.common import HelpFormatter, run_command
from genomenlp.components.errors import InputError
from genomenlp.components.names import Artifacts, Models
from genomenlp.platform import cluster

CONFIG_DIR = Path(__file__).resolve().parents[1] / "pipelines" / "configs"


def project_root() -> Path:
    """The checkout this package runs from, or, installed from a wheel, the working folder.

    Installed without ``-e`` (the image's ``pip install .``), the folder above the ``genomenlp`` package is
    site-packages; the working folder (the image's ``/app``, where ``data/`` and relative outputs
    live) is then where ``.zen`` belongs.
    """
    package_parent = Path(__file__).resolve().parents[2]
    return package_parent if (package_parent / "pyproject.toml").is_file() else Path.cwd()


# Where `zenml init` records the repository (ZenML's source root for a checkout).
PROJECT_ROOT = project_root()


@dataclass(frozen=True)
class PipelineCommand:
    """A sub-command: which pipeline it runs, its default YAML and how to report the run."""

    pipeline: str
    default_config: Path
    help: str
    report: Callable[[object], None]


def _output(run, name: str):
    """The artifact version ``name`` produced by any step of ``run``."""
    for step in run.steps.values():
        if name in step.outputs:
            return step.outputs[name][0]
    raise KeyError(f"run {run.name} has no output artifact {name!r}")


def _report_dataset(run) -> None:
    from genomenlp.components.cli.dataset_options import print_dataset_summary

    print_dataset_summary(_output(run, Artifacts.DATASET_MANIFEST).load(), _exported(run)["dataset"])
    stored = _output(run, Artifacts.DATASET_DIR).uri
    print(f"ZenML run: {run.name} (stored copy of the folder: {stored})")


def _exported(run) -> dict[str, str]:
    """Where the run's export step put each folder (``dataset``, ``train``…), absolute or ``s3://``."""
    return _output(run, Artifacts.EXPORTED_FOLDERS).load()


def _step_folder(run, name: str, *parts: str) -> str:
    """The user-facing folder ``name`` of ``run`` (absolute, or ``s3://``), or a file in it."""
    from genomenlp.components.storage import join

    return join(_exported(run)[name], *parts)


# Figures shown for the model and its 1–4-mer baseline, with their display names.
SHOWN_METRICS = {"test_mcc": "MCC", "test_roc_auc": "ROC-AUC", "test_f1": "F1"}


def lead_over_baseline(metrics: dict, cv_summary: dict) -> str:
    """One line: by how much MCC the model leads (or trails) the 1–4-mer baseline, on test and in cross-validation."""
    parts = []
    test_base = (metrics.get("baselines") or {}).get("kmer_1_4", {}).get("test_mcc")
    if test_base is not None:
        parts.append(("test", metrics["test_mcc"] - test_base))
    cv_base = cv_summary.get("kmer_1_4_test_mcc")
    if cv_base is not None:
        parts.append(("cross-validated", cv_summary["test_mcc"]["mean"] - cv_base["mean"]))
    if not parts:
        return "Lead over the 1–4-mer baseline: no baseline recorded"
    shown = ", ".join(f"{where} MCC {lead:+.3f} ({'beats' if lead > 0 else 'does NOT beat'} it)"
                      for where, lead in parts)
    return f"Lead over the 1–4-mer baseline: {shown}"


def _report_training(run) -> None:
    from genomenlp.components.inference.interpret import INDEX_FILE
    from genomenlp.components.search.local import BEST_FILE
    from genomenlp.components.training.cross_validation import CV_METRICS_FILE
    from genomenlp.components.training.ensemble import ensemble_description
    from genomenlp.components.training.epoch_choice import checkpoint_choice
    from genomenlp.components.training.run import MODEL_DIR, REPORT_FILE

    best = _output(run, Artifacts.BEST_HYPERPARAMETERS).load()
    served = "ensemble" in _exported(run)
    # The served model's figures: the ensemble's, with the final model's alone under `final_model`.
    metrics = _output(run, Artifacts.SERVED_METRICS if served else Artifacts.TRAINING_METRICS).load()
    summary = _output(run, Artifacts.CV_METRICS).load()["summary"]
    baseline = metrics["baselines"].get("kmer_1_4", {})
    settings = ", ".join(f"{key}={value}" for key, value in best.items())
    print(f"Sweep: best {settings} ({_step_folder(run, 'sweep', BEST_FILE)})")
    if served:
        print(f"Model: {_step_folder(run, 'ensemble', MODEL_DIR)} ({ensemble_description(metrics)})")
    if "final_model" in metrics:
        print(f"Reports: {_step_folder(run, 'ensemble', REPORT_FILE)} (served model), "
              f"{_step_folder(run, 'train', REPORT_FILE)} (final model)")
    elif served:
        print(f"Report: {_step_folder(run, 'train', REPORT_FILE)}")
    else:
        print(f"Model: {_step_folder(run, 'train', MODEL_DIR)}")
        print(f"Report: {_step_folder(run, 'train', REPORT_FILE)}")
    final = metrics.get("final_model") or {}
    alone = "; the final model alone after the 1–4-mer baseline" if final else ""
    print(f"Test split (final model's {checkpoint_choice(metrics)}; 1–4-mer baseline in brackets{alone}):")
    for key, label in SHOWN_METRICS.items():
        beside = f"   ({baseline[key]:.3f})" if key in baseline else ""
        beside += f"   final model alone {final[key]:.3f}" if key in final else ""
        print(f"  {label:8} {metrics[key]:.3f}{beside}")
    cv_file = _step_folder(run, "cv", CV_METRICS_FILE)
    print(f"Cross-validation, mean ± sd over folds ({cv_file}):")
    for key, label in SHOWN_METRICS.items():
        figures, base = summary[key], summary.get(f"kmer_1_4_{key}")
        beside = f"   (1–4-mer baseline {base['mean']:.3f} ± {base['sd']:.3f})" if base else ""
        print(f"  {label:8} {figures['mean']:.3f} ± {figures['sd']:.3f}{beside}")
    print(lead_over_baseline(metrics, summary))
    promoted = _output(run, Artifacts.PRODUCTION_VERSION).load()
    if run.model_version is not None:
        name = run.model_version.model.name
        verdict = f"production is registry:{name}@{promoted}" if promoted else "no version beats its baseline yet"
        if metrics.get("collapsed"):
            verdict = f"archived, never a candidate: {metrics['collapsed']}"
        print(f"Registry: registry:{name}@{run.model_version.number} ({verdict})")
    if "interpret" in _exported(run):
        print(f"Interpretation: {_step_folder(run, 'interpret', INDEX_FILE)}")
    print(f"ZenML run: {run.name}")


def _report_comparison(run) -> None:
    summary = _output(run, Artifacts.POWERLAW_SUMMARY).load()
    print(summary.to_string(index=False, max_colwidth=40))
    print(f"Figures and tables: {_step_folder(run, 'comparison')}")
    print(f"ZenML run: {run.name}")


def _report_pretraining(run) -> None:
    from genomenlp.components.pretraining.mlm import ENCODER_DIR, METRICS_FILE

    metrics = _output(run, Artifacts.PRETRAINING_METRICS).load()
    exclusion = metrics["exclusion"]
    print(f"Pre-trained {metrics['steps']} steps ({metrics['tokens_seen']:,} tokens, "
          f"{metrics['tokens_per_second']:,.0f} tokens/s on {metrics['device']}): "
          f"mlm_loss {metrics['mlm_loss']:.4f}, mlm_accuracy {metrics['mlm_accuracy']:.4f}")
    # The step read the dataset from ZenML's copy (a temporary folder); name the one the run wrote.
    others = len(exclusion["datasets"]) - 1
    also = f" and {others} more dataset(s)" if others else ""
    print(f"Held out: {exclusion['bases_removed']:,} bases removed at {exclusion['occurrences']:,} occurrences of "
          f"{exclusion['held_out_found']:,}/{exclusion['held_out_sequences']:,} valid and test sequences of "
          f"{_step_folder(run, 'dataset')}{also}, on either strand")
    encoder, metrics_file = _step_folder(run, "pretrain", ENCODER_DIR), _step_folder(run, "pretrain", METRICS_FILE)
    print(f"Encoder: {encoder}  (metrics: {metrics_file})")
    if run.model_version is None:
        print("Registry: not registered (the configuration has no `model:`)")
    else:
        reference = f"registry:{run.model_version.model.name}@{run.model_version.number}"
        print(f"Registry: {reference}  (fine-tune from it with training.init_from: {reference})")
    print(f"ZenML run: {run.name}")


COMMANDS = {
    "dataset": PipelineCommand(
        "genomenlp.pipelines.dataset_pipeline.dataset_pipeline",
        CONFIG_DIR / "dataset_pipeline.yaml",
        "tokeniser (Unigram, or k-mer with dataset_pipeline_kmer.yaml) → leakage-free dataset",
        _report_dataset,
    ),
    "training": PipelineCommand(
        "genomenlp.pipelines.training_pipeline.training_pipeline",
        CONFIG_DIR / "training_pipeline.yaml",
        "dataset → hyperparameter sweep → classifier with the best settings → cross-validation",
        _report_training,
    ),
    "quick": PipelineCommand(
        "genomenlp.pipelines.training_pipeline.training_pipeline",
        CONFIG_DIR / "training_pipeline_quick.yaml",
        "the training pipeline with a small sweep and few epochs: minutes on a laptop CPU",
        _report_training,
    ),
    "pretraining": PipelineCommand(
        "genomenlp.pipelines.pretraining_pipeline.pretraining_pipeline",
        CONFIG_DIR / "pretraining_pipeline.yaml",
        "corpus tokeniser → the task's split → masked-LM encoder without its valid/test sequences, registered "
        "(fine-tune from it: training --config genomenlp/pipelines/configs/training_pipeline_pretrained.yaml)",
        _report_pretraining,
    ),
    "compare": PipelineCommand(
        "genomenlp.pipelines.comparison_pipeline.comparison_pipeline",
        CONFIG_DIR / "comparison_pipeline.yaml",
        "registered model versions → weight-spectrum comparison (fit_powerlaw) beside their metrics",
        _report_comparison,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """Sub-commands of ``genomenlp-pipeline``, each with a ``--config`` defaulting to its YAML."""
    parser = argparse.ArgumentParser(
        prog="genomenlp-pipeline",
        description=(
            "Run a pipeline with ZenML. Parameters come from a ZenML run-configuration YAML whose\n"
            f"keys are the pipeline's parameter names (defaults in {CONFIG_DIR}).\n\n"
            "examples:\n"
            "  genomenlp-pipeline dataset\n"
            "  genomenlp-pipeline dataset --config genomenlp/pipelines/configs/dataset_pipeline_kmer.yaml\n"
            "  genomenlp-pipeline quick\n"
            "  genomenlp-pipeline training\n"
            "  genomenlp-pipeline pretraining\n"
            "  genomenlp-pipeline training --config genomenlp/pipelines/configs/training_pipeline_pretrained.yaml\n"
            "  genomenlp-pipeline models list genomic_bert\n"
            "  genomenlp-pipeline models promote genomic_bert 3\n\n"
            "on Kubeflow (genomenlp/pipelines/configs/*_kubeflow*.yaml):\n"
            "  genomenlp-pipeline stack register-kubeflow --config genomenlp/pipelines/configs/stacks/kubeflow.yaml\n"
            "  genomenlp-pipeline compile\n"
            "  genomenlp-pipeline submit training --stack kubeflow"
        ),
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="PIPELINE")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        sub.add_argument(
            "--config",
            type=Path,
            default=command.default_config,
            help=f"ZenML run configuration YAML (default: {command.default_config})",
        )
    # compile, submit and stack: the same pipelines on the Kubeflow stack (genomenlp/platform/cluster.py).
    cluster.add_commands(commands, COMMANDS)
    _add_model_commands(commands)
    return parser


def _add_model_commands(commands) -> None:
    """``models list NAME`` and ``models promote NAME VERSION``: the registry by hand."""
    models = commands.add_parser("models", help="list the versions of a registered model, or promote one by hand",
                                 description="The model registry (ZenML's model control plane) by hand.")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every version: number, stage, and why it does or does not qualify")
    listing.add_argument("name", nargs="?", default=Models.GENOMIC_BERT, help="registered model (default: %(default)s)")
    promote = actions.add_parser("promote", help="give a version the production stage (the holder loses it)")
    promote.add_argument("name", help="registered model, e.g. genomic_bert")
    promote.add_argument("version", type=int, help="version number")


def _models(args) -> int:
    from genomenlp.steps.support.registry import describe_versions, promote_version

    if args.action == "promote":
        print(promote_version(args.name, args.version))
        return 0
    print("version\tstage\twhy")
    for line in describe_versions(args.name):
        print(line)
    return 0


class _HideInputErrorTraceback(logging.Filter):
    """Drop the traceback ZenML logs for a failed step when the cause is bad user input.

    Such errors are reported once, as one line, by :func:`run_command`; bugs keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], InputError):
            record.exc_info = None
            record.exc_text = None
        return True


def ensure_zenml_repository(root: Path | None = None) -> None:
    """Run the equivalent of ``zenml init`` at ``root`` unless it already holds a ``.zen`` folder.

    Found from the working directory (the repository root, which the bundled configs' relative
    paths assume), the repository makes ``root`` ZenML's source root: ``steps``, ``pipelines`` and
    ``components`` then resolve as they do for ``zenml pipeline run`` and in images built for
    remote stacks. ``.zen`` records only this checkout's active stack and project (git-ignored).

    Args:
        root: Where to look for or create ``.zen`` (default: the folder above ``genomenlp/pipelines/``).
    """
    from zenml.client import Client

    root = root or PROJECT_ROOT
    if not Client.is_repository_directory(root):
        Client.initialize(root=root)
        print(f"Initialised a ZenML repository at {root}", file=sys.stderr)


def _body(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "models":
        return _models(args)
    if args.command in cluster.CLUSTER_COMMANDS:
        ensure_zenml_repository()
        return cluster.run(args, COMMANDS)
    command = COMMANDS[args.command]
    # Imported late: ZenML takes seconds to import, which --help and argument errors should not pay.
    from zenml.orchestrators.local import local_orchestrator

    from genomenlp.platform.config_overlay import zenml_config_file
    from genomenlp.platform.run_config import check_run_config
    from genomenlp.steps.support.registry import install_registry_resolver

    module, _, name = command.pipeline.rpartition(".")
    pipeline = getattr(importlib.import_module(module), name)
    # ZenML ignores unknown keys and reports bad values as a long traceback: check first.
    check_run_config(pipeline, args.config)
    ensure_zenml_repository()
    # The local orchestrator logs each failed step's traceback under its module's logger.
    logging.getLogger(local_orchestrator.__name__).addFilter(_HideInputErrorTraceback())
    # Steps run in this process on the local orchestrator: `training.init_from: registry:…` resolves here.
    install_registry_resolver()
    with zenml_config_file(args.config) as config_file:
        run = pipeline.with_options(config_path=str(config_file))()
    command.report(run)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``genomenlp-pipeline``."""
    return run_command(_body, argv, "genomenlp-pipeline")


if __name__ == "__main__":
    sys.exit(main())
