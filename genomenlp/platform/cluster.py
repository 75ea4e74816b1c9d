"""``genomenlp-pipeline compile | submit | stack``: the same pipelines and YAML, on Kubeflow.

* ``stack register-kubeflow`` / ``stack register-local``: the project's two stacks
  (:mod:`genomenlp.platform.stacks`).
* ``compile``: a ZenML snapshot of each pipeline rendered as a KFP v2 pipeline YAML by the
  ``genomenlp_kubeflow`` orchestrator; nothing is uploaded, so it needs no cluster, no Docker
  and no ZenML server.
* ``submit``: a normal ZenML run on the Kubeflow stack: the orchestrator compiles the same YAML
  and creates a Kubeflow run, or a recurring run when the YAML has a ``schedule:``.

The pipeline YAMLs for the cluster are ``genomenlp/pipelines/configs/<pipeline>_kubeflow*.yaml``: overlays
that ``extends:`` the local config and add each step's placement under ``settings:``
(:mod:`genomenlp.platform.config_overlay`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

from genomenlp.components.cli.common import HelpFormatter
from genomenlp.components.errors import InputError

# Shipped with the package (package data), so an installed image has it too.
DEFAULT_STACK_CONFIG = Path(__file__).resolve().parents[1] / "pipelines" / "configs" / "stacks" / "kubeflow.yaml"
DEFAULT_OUTPUT = Path("build") / "kubeflow"
CLUSTER_COMMANDS = ("compile", "submit", "stack")


def kubeflow_config(default_config: Path) -> Path:
    """The cluster variant of a pipeline's default YAML: ``<stem>_kubeflow.yaml`` beside it."""
    return default_config.with_name(f"{default_config.stem}_kubeflow.yaml")


def _kubeflow_pipelines(commands: Mapping) -> dict[str, object]:
    """Pipeline sub-commands that have a cluster variant of their YAML."""
    return {name: command for name, command in commands.items() if kubeflow_config(command.default_config).is_file()}


def _one_of(names: list[str]):
    """An argparse type accepting ``names`` (``choices`` breaks on an empty ``nargs="*"`` list in 3.11)."""

    def check(value: str) -> str:
        if value not in names:
            raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(names)})")
        return value

    return check


def add_commands(subparsers, commands: Mapping) -> None:
    """Add ``compile``, ``submit`` and ``stack`` to ``genomenlp-pipeline``'s sub-commands.

    Args:
        subparsers: The parser's sub-command action.
        commands: The pipeline sub-commands (name → PipelineCommand), whose pipelines these run.
    """
    pipelines = sorted(_kubeflow_pipelines(commands))
    compile_help = "write the Kubeflow (KFP v2) pipeline YAML of pipelines; no cluster, Docker or server needed"
    parser = subparsers.add_parser("compile", help=compile_help, description=compile_help + (
        "\n\nexamples:\n  genomenlp-pipeline compile\n"
        "  genomenlp-pipeline compile training --config genomenlp/pipelines/configs/training_pipeline_kubeflow.yaml"
    ), formatter_class=HelpFormatter)
    parser.add_argument("pipelines", nargs="*", type=_one_of(pipelines), metavar="PIPELINE",
                        help=f"pipelines to compile: {', '.join(pipelines)} (default: all)")
    parser.add_argument("--config", type=Path,
                        help="run configuration YAML (one pipeline only; default: its _kubeflow.yaml)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"folder for <pipeline>.yaml (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--stack", help="ZenML stack with the genomenlp_kubeflow orchestrator (default: active)")

    submit_help = "run a pipeline on the Kubeflow stack (a recurring run when its YAML has a schedule)"
    parser = subparsers.add_parser("submit", help=submit_help, description=submit_help + (
        "\n\nexamples:\n  genomenlp-pipeline submit training --stack kubeflow\n"
        "  genomenlp-pipeline submit training \\\n"
        "      --config genomenlp/pipelines/configs/training_pipeline_kubeflow_nightly.yaml"
    ), formatter_class=HelpFormatter)
    parser.add_argument("pipeline", choices=pipelines, metavar="PIPELINE", help=f"one of {', '.join(pipelines)}")
    parser.add_argument("--config", type=Path, help="run configuration YAML (default: the pipeline's _kubeflow.yaml)")
    parser.add_argument("--stack", help="ZenML stack with the genomenlp_kubeflow orchestrator (default: active)")

    stack_help = "register the project's ZenML stacks: kubeflow (from a YAML) and local"
    parser = subparsers.add_parser("stack", help=stack_help, description=stack_help, formatter_class=HelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    kubeflow = actions.add_parser("register-kubeflow", help="register or update the kubeflow stack from a YAML")
    kubeflow.add_argument("--config", type=Path, default=DEFAULT_STACK_CONFIG,
                          help=f"stack YAML (default: {DEFAULT_STACK_CONFIG})")
    kubeflow.add_argument("--activate", action="store_true", help="make it the active stack")
    local = actions.add_parser("register-local", help="register `local`: the embedded default stack's components")
    local.add_argument("--activate", action="store_true", help="make it the active stack")


@contextlib.contextmanager
def using_stack(name: str | None) -> Iterator[None]:
    """Run the block on stack ``name`` (None: the active one) without changing the active stack."""
    if name is None:
        yield
        return
    from zenml.client import Client
    from zenml.constants import ENV_ZENML_ACTIVE_STACK_ID

    try:
        stack_id = Client().get_stack(name, allow_name_prefix_match=False).id
    except KeyError:
        raise InputError(f"--stack {name}", "no such ZenML stack (see `zenml stack list`)") from None
    saved = os.environ.get(ENV_ZENML_ACTIVE_STACK_ID)
    os.environ[ENV_ZENML_ACTIVE_STACK_ID] = str(stack_id)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ENV_ZENML_ACTIVE_STACK_ID, None)
        else:
            os.environ[ENV_ZENML_ACTIVE_STACK_ID] = saved


def _kubeflow_stack():
    """The active stack, which must use the genomenlp_kubeflow orchestrator."""
    from zenml.client import Client

    from genomenlp.platform.kubeflow_flavor import FLAVOR_NAME, GenomeKubeflowOrchestrator

    stack = Client().active_stack
    if not isinstance(stack.orchestrator, GenomeKubeflowOrchestrator):
        raise InputError(
            f"stack {stack.name}",
            f"its orchestrator is {stack.orchestrator.flavor}, not {FLAVOR_NAME}; register one with "
            "`genomenlp-pipeline stack register-kubeflow` and pass --stack",
        )
    return stack


def _pipeline(command):
    module, _, name = command.pipeline.rpartition(".")
    return getattr(importlib.import_module(module), name)


def compile_pipeline(pipeline, config: Path, output_dir: Path) -> Path:
    """Snapshot ``pipeline`` with ``config`` on the active Kubeflow stack and write its KFP YAML.

    Args:
        pipeline: The ZenML pipeline.
        config: Its run configuration YAML (checked first).
        output_dir: Folder for ``<pipeline name>.yaml``.

    Returns:
        The written YAML.
    """
    from genomenlp.platform.config_overlay import zenml_config_file
    from genomenlp.platform.kubeflow_flavor import workload_environments
    from genomenlp.platform.run_config import check_run_config

    check_run_config(pipeline, config)
    stack = _kubeflow_stack()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    # A named snapshot is ZenML's record of "this pipeline, configured, not yet run": the YAML's
    # tasks refer to it by id, so it can be uploaded to Kubeflow later.
    # ZenML reads the file again when it compiles: it must exist until the snapshot is made.
    with zenml_config_file(config) as config_file:
        configured = pipeline.with_options(config_path=str(config_file))
        # with_options copies the pipeline as it is, including the wiring of an earlier call in this
        # process: prepare again so the snapshot follows this YAML's parameters alone.
        configured.prepare()
        snapshot = configured.create_snapshot(name=f"{pipeline.name}-{stamp}")
    try:
        return stack.orchestrator.compile_snapshot(
            snapshot,
            workload_environments(snapshot, stack),
            Path(output_dir) / f"{pipeline.name}.yaml",
            run_name=pipeline.name.replace("_", "-"),
        )
    except ValueError as error:
        raise InputError(str(config), str(error)) from None


def submit_pipeline(pipeline, config: Path):
    """Run ``pipeline`` with ``config`` on the active Kubeflow stack (a ZenML run, compiled and uploaded).

    Returns:
        The ZenML run, or None for a scheduled (recurring) submission.
    """
    from zenml.exceptions import EntityExistsError

    from genomenlp.platform.config_overlay import zenml_config_file
    from genomenlp.platform.kubeflow_environment import KubeflowUnreachable
    from genomenlp.platform.run_config import check_run_config

    check_run_config(pipeline, config)
    stack = _kubeflow_stack()
    try:
        stack.orchestrator.preflight()
        with zenml_config_file(config) as config_file:
            return pipeline.with_options(config_path=str(config_file))()
    except KubeflowUnreachable as error:
        raise InputError(f"stack {stack.name}", str(error)) from None
    except EntityExistsError as error:
        # A second submit of a scheduled config: ZenML keeps one schedule per name.
        raise InputError(str(config), f"{error}; delete the old one first (`zenml pipeline schedule delete NAME`)"
                         ) from None
    except ValueError as error:
        # Settings the orchestrator refuses (credentials, placement) before anything is uploaded.
        raise InputError(f"stack {stack.name}", str(error)) from None


def _register(args: argparse.Namespace) -> int:
    from zenml.client import Client

    from genomenlp.platform.stacks import load_stack_config, register_kubeflow_stack, register_local_stack

    if args.action == "register-kubeflow":
        stack = register_kubeflow_stack(load_stack_config(args.config))
    else:
        stack = register_local_stack()
    if args.activate:
        Client().activate_stack(stack.id)
    components = ", ".join(f"{kind.value}: {models[0].name}" for kind, models in stack.components.items())
    print(f"Stack {stack.name} registered ({components}){' and active' if args.activate else ''}")
    return 0


def run(args: argparse.Namespace, commands: Mapping) -> int:
    """Carry out ``compile``, ``submit`` or ``stack`` (the caller has set up the ZenML repository).

    Args:
        args: Parsed arguments of one of :data:`CLUSTER_COMMANDS`.
        commands: The pipeline sub-commands (name → PipelineCommand).

    Returns:
        The exit status.
    """
    if args.command == "stack":
        return _register(args)
    available = _kubeflow_pipelines(commands)
    if args.command == "compile":
        names = args.pipelines or sorted(available)
        if args.config and len(names) != 1:
            raise InputError("--config", "name exactly one PIPELINE to compile with a given configuration")
        with using_stack(args.stack):
            for name in names:
                config = args.config or kubeflow_config(commands[name].default_config)
                path = compile_pipeline(_pipeline(commands[name]), config, args.output)
                print(f"{name}: {path}")
        return 0
    config = args.config or kubeflow_config(commands[args.pipeline].default_config)
    with using_stack(args.stack):
        submitted = submit_pipeline(_pipeline(commands[args.pipeline]), config)
    if submitted is None:
        print(f"{args.pipeline}: recurring run created (schedule from {config}); see Recurring Runs in Kubeflow")
    else:
        print(f"{args.pipeline}: submitted as ZenML run {submitted.name}; follow it in the Kubeflow dashboard")
    return 0
