"""A compiled task's results as Kubeflow Pipelines output artifacts, so its dashboard shows them.

KFP renders output artifacts of types ``system.Metrics`` (scalars, compared across runs),
``system.ClassificationMetrics`` (confusion matrix and ROC curve), ``system.HTML`` and
``system.Markdown``. ZenML's step entrypoint knows nothing of KFP's executor protocol, so the
tasks of steps with results run this thin wrapper instead: it runs ZenML's entrypoint unchanged,
then loads the step's output artifacts from the ZenML server (the source of truth), builds the
views (:mod:`genomenlp.components.dashboard_views`) and writes them where KFP's launcher collects them:
files at each output artifact's local path (``s3://…`` → ``/s3/…``, as KFP's own Python executor
maps them) and metadata in the executor output file, which the launcher uploads and records.

Usage (compiled into the task): ``python -m genomenlp.platform.kubeflow_outputs --executor_input '{{$}}'
--step_name STEP -- python -m zenml.entrypoints.entrypoint …``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kfp import dsl

from genomenlp.components import dashboard_views as views
from genomenlp.components.names import Artifacts

# Output artifacts each step declares: name → KFP artifact type. The names are what the run
# comparison view lines up across runs, so they never change.
STEP_OUTPUTS: dict[str, dict[str, type[dsl.Artifact]]] = {
    "train_classifier": {"test_metrics": dsl.Metrics, "test_classification": dsl.ClassificationMetrics,
                         "test_summary": dsl.HTML},
    "cross_validate_model": {"cv_metrics": dsl.Metrics, "cv_summary": dsl.HTML},
    "ensemble_models": {"served_metrics": dsl.Metrics, "served_classification": dsl.ClassificationMetrics,
                        "served_summary": dsl.HTML},
    "sweep_hyperparameters": {"sweep_summary": dsl.Markdown},
    "promote_model": {"promotion": dsl.Markdown},
    "compare_models": {"powerlaw_summary": dsl.Markdown},
    "pretrain_encoder": {"pretraining_metrics": dsl.Metrics},
    "interpret_sequences": {"interpretation_summary": dsl.Markdown},
}


def output_component(name: str, image: str, command: list[str], arguments: list[str]):
    """A KFP container component that runs a step through this wrapper and declares its outputs.

    Args:
        name: The step's name (a key of :data:`STEP_OUTPUTS`).
        image: The image the task runs.
        command: ZenML's step entrypoint command.
        arguments: Its arguments.
    """
    outputs = STEP_OUTPUTS[name]

    def task(*placeholders) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(
            image=image, command=["python", "-m", __name__],
            args=["--executor_input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER, "--step_name", name, "--",
                  *command, *arguments])

    # KFP reads a container component's outputs from its signature.
    task.__signature__ = inspect.Signature([
        inspect.Parameter(output, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dsl.Output[kind])
        for output, kind in outputs.items()])
    task.__name__ = name
    return dsl.container_component(task)


def step_views(step: str, outputs: dict[str, Any]) -> dict[str, Any]:
    """Each declared output's content, from the step's loaded ZenML outputs (artifact name → value)."""
    if step == "train_classifier":
        metrics = outputs[Artifacts.TRAINING_METRICS]
        return {"test_metrics": views.training_scalars(metrics),
                "test_classification": views.classification_view(metrics),
                "test_summary": views.training_html(metrics)}
    if step == "ensemble_models":
        metrics = outputs[Artifacts.SERVED_METRICS]
        return {"served_metrics": views.training_scalars(metrics),
                "served_classification": views.classification_view(metrics),
                "served_summary": views.training_html(metrics)}
    if step == "cross_validate_model":
        result = outputs[Artifacts.CV_METRICS]
        return {"cv_metrics": views.cross_validation_scalars(result), "cv_summary": views.cross_validation_html(result)}
    if step == "sweep_hyperparameters":
        return {"sweep_summary": views.sweep_markdown(outputs[Artifacts.BEST_HYPERPARAMETERS],
                                                      outputs[Artifacts.SWEEP_TRIALS])}
    if step == "promote_model":
        return {"promotion": views.promotion_markdown(outputs[Artifacts.PRODUCTION_VERSION])}
    if step == "compare_models":
        table = outputs[Artifacts.POWERLAW_SUMMARY]
        return {"powerlaw_summary": views.table_markdown("Weight quality (WeightWatcher)", table.to_dict("records"))}
    if step == "pretrain_encoder":
        return {"pretraining_metrics": views.pretraining_scalars(outputs[Artifacts.PRETRAINING_METRICS])}
    if step == "interpret_sequences":
        result = outputs[Artifacts.INTERPRETATION]
        return {"interpretation_summary": views.table_markdown(
            "Interpretation", [{k: v for k, v in result.items() if not isinstance(v, list | dict)}])}
    raise KeyError(f"no dashboard views for step {step}")


def write_outputs(executor_input: dict, contents: dict[str, Any]) -> dict:
    """Write each output where the launcher collects it; returns the executor output written.

    Raises:
        KeyError: A declared output has no content (it would silently show nothing).
    """
    declared = executor_input["outputs"].get("artifacts", {})
    artifacts = {}
    for name, entry in declared.items():
        (spec,) = entry["artifacts"]
        kind = STEP_OUTPUTS_BY_SCHEMA[spec["type"]["schemaTitle"]]
        artifact = kind(name=name, uri=spec["uri"], metadata={})
        content = contents[name]
        if isinstance(artifact, dsl.Metrics):
            for metric, value in content.items():
                artifact.log_metric(metric, value)
        elif isinstance(artifact, dsl.ClassificationMetrics):
            artifact.log_confusion_matrix(content["labels"], content["matrix"])
            roc = content["roc"]
            if roc:
                artifact.log_roc_curve([p["fpr"] for p in roc], [p["tpr"] for p in roc], [p["threshold"] for p in roc])
        path = Path(artifact.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(artifact.metadata, indent=1)
        path.write_text(text, encoding="utf-8")
        artifacts[name] = {"artifacts": [{"name": name, "uri": artifact.uri, "metadata": artifact.metadata}]}
    output = {"artifacts": artifacts}
    output_file = Path(executor_input["outputs"]["outputFile"])
    output_file.parent.mkdir(parents=True, exist_ok=True)
    output_file.write_text(json.dumps(output), encoding="utf-8")
    return output


STEP_OUTPUTS_BY_SCHEMA = {kind.schema_title: kind for kind in (dsl.Metrics, dsl.ClassificationMetrics, dsl.HTML,
                                                                dsl.Markdown)}


def _step_outputs(step: str, snapshot_id: str) -> dict[str, Any]:
    """The outputs the step just stored, loaded from the ZenML server (this pod's run, by KFP job)."""
    from zenml.client import Client
    from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import ENV_KFP_RUN_ID

    runs = Client().list_pipeline_runs(orchestrator_run_id=os.environ[ENV_KFP_RUN_ID], snapshot_id=snapshot_id,
                                       size=1, hydrate=True)
    if not runs.items:
        raise RuntimeError(f"no ZenML run of snapshot {snapshot_id} for this Kubeflow run")
    step_run = runs.items[0].steps[step]
    return {name: versions[0].load() for name, versions in step_run.outputs.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the step's entrypoint, then write its dashboard outputs; the step's exit status wins."""
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.splitlines()[0])
    parser.add_argument("--executor_input", required=True, help="KFP's executor input JSON ({{$}})")
    parser.add_argument("--step_name", required=True, choices=sorted(STEP_OUTPUTS))
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then ZenML's step entrypoint command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    status = subprocess.call(command)
    if status:
        return status
    snapshot_id = command[command.index("--snapshot_id") + 1]
    outputs = _step_outputs(args.step_name, snapshot_id)
    write_outputs(json.loads(args.executor_input), step_views(args.step_name, outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
