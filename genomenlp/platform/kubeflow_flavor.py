"""``genomenlp_kubeflow``: ZenML's Kubeflow orchestrator with per-step placement and compile-only output.

ZenML 0.98's ``KubeflowOrchestrator`` loses the placement a pipeline's YAML asks for:

* its settings validator always rebuilds ``pod_settings`` from the legacy ``node_selectors`` key,
  so a step's own node selectors and tolerations are replaced by empty ones;
* it hands ``ResourceSettings(memory=...)`` to KFP as a float, which KFP rejects (``TypeError``);
* it emits a GPU only when a node selector is literally named ``accelerator``, uses that label's
  value as the resource name, and applies one step's constraint to every step;
* it hands a five-field cron expression to Kubeflow, whose parser takes seconds first, so
  ``0 2 * * *`` would run at minute 2 of every hour;
* it logs a failed upload as a warning and reports the run as submitted.

This flavor subclasses it, fixes those, and adds what a cluster run of this project needs:

* :meth:`GenomeKubeflowOrchestrator.compile_snapshot` writes the KFP v2 YAML of a ZenML snapshot
  without uploading it (``genomenlp-pipeline compile``; no cluster, no Docker, no ZenML server);
* ``image``: the project image built from the ``Dockerfile`` and pushed outside ZenML, so the
  client never builds one;
* ``secret_env``: Kubernetes Secrets whose keys become each step's environment, so S3 and ZenML
  credentials live in the cluster and never in a compiled YAML;
* ``service_account``: the Kubernetes identity of the run's pods (``k8s/kfp-task/rbac.yaml``).

Placement comes from each step's settings in the pipeline's YAML: ``resources`` (``cpu_count``
and ``memory`` become requests, ``gpu_count`` a limit of ``gpu_resource``) and
``orchestrator.genomenlp_kubeflow.pod_settings`` (node selectors, tolerations, CPU/memory limits,
labels, annotations, image pull secrets).

The flavor lives in five modules: :mod:`genomenlp.platform.kubeflow_settings` (settings and placement),
:mod:`genomenlp.platform.kubeflow_orchestrator` (the orchestrator, compile and upload),
:mod:`genomenlp.platform.kubeflow_environment` (the pods' environment, the endpoint check, cron),
:mod:`genomenlp.platform.kubeflow_outputs` (a task's results as KFP output artifacts for the dashboard) and
this one, which registers the flavor and keeps every name importable from here.
"""

from __future__ import annotations

from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import KubeflowOrchestratorFlavor

# The flavor's parts live in their own modules; their names stay importable from here, where the CLI,
# stacks, run-config checks and tests take them.
from genomenlp.platform.kubeflow_environment import kfp_cron, workload_environments  # noqa: F401
from genomenlp.platform.kubeflow_orchestrator import GenomeKubeflowOrchestrator  # noqa: F401
from genomenlp.platform.kubeflow_settings import (  # noqa: F401
    FLAVOR_NAME,
    SETTINGS_KEY,
    SUPPORTED_POD_FIELDS,
    GenomeKubeflowOrchestratorConfig,
    GenomeKubeflowOrchestratorSettings,
    place_task,
)

# What `zenml orchestrator flavor register` needs: the class path from the source root. ZenML stores
# it with the registered flavor and loads the class back by it, so the class stays in this module.
FLAVOR_SOURCE = f"{__name__}.GenomeKubeflowOrchestratorFlavor"


class GenomeKubeflowOrchestratorFlavor(KubeflowOrchestratorFlavor):
    """The ``genomenlp_kubeflow`` orchestrator flavor (register with ``genomenlp-pipeline stack``)."""

    @property
    def name(self) -> str:
        """The flavor's name."""
        return FLAVOR_NAME

    @property
    def config_class(self) -> type[GenomeKubeflowOrchestratorConfig]:
        """The component configuration class."""
        return GenomeKubeflowOrchestratorConfig

    @property
    def implementation_class(self) -> type[GenomeKubeflowOrchestrator]:
        """The orchestrator class."""
        return GenomeKubeflowOrchestrator
