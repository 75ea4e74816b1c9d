"""What a compiled step pod and the submitting client need: pod environment, endpoint check, cron.

Kept apart from the orchestrator (:mod:`genomenlp.platform.kubeflow_orchestrator`), which compiles and
uploads, so each stays small enough to read whole.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zenml.models import PipelineSnapshotResponse
    from zenml.stack import Stack

# Environment variables that carry credentials: a compiled or uploaded YAML never holds them.
_CREDENTIAL_NAME = re.compile(r"(^|_)(API_KEY|API_TOKEN|TOKEN|PASSWORD|SECRET)(_|$)", re.IGNORECASE)
# The variable a pod authenticates to the ZenML server with: a service-account API key from a Secret.
ZENML_API_KEY_VARIABLE = "ZENML_STORE_API_KEY"


def pod_environment(environment: dict[str, str], pod_zenml_url: str | None = None) -> dict[str, str]:
    """A step pod's environment as this client would give it, made fit for a cluster.

    Credentials are dropped (the pods take theirs from Kubernetes Secrets, ``secret_env``), and
    the ZenML server URL becomes the one the pods reach when that differs from the client's.

    Args:
        environment: Variables ZenML would set in the pod.
        pod_zenml_url: The ZenML server as the pods reach it (None: keep the client's URL).

    Returns:
        The variables to compile into the pod.

    Raises:
        ValueError: The client's ZenML store is a local database that no pod can reach.
    """
    environment = {key: value for key, value in environment.items() if not _CREDENTIAL_NAME.search(key)}
    store_type, store_url = environment.get("ZENML_STORE_TYPE"), environment.get("ZENML_STORE_URL", "")
    if store_type != "rest":
        raise ValueError(
            f"the ZenML store is {store_url or 'the local default'}, which pods on a cluster cannot reach, and "
            "the compiled steps load their snapshot from it; log in to the ZenML server the cluster reaches "
            "(`zenml login https://zenml.example.com`) and compile again (k8s/README.md, step 2)"
        )
    if pod_zenml_url:
        environment["ZENML_STORE_URL"] = pod_zenml_url.rstrip("/")
    return environment


def server_needs_credentials() -> bool:
    """Whether the connected ZenML server authenticates its clients (every real deployment does)."""
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import AuthScheme

    return GlobalConfiguration().zen_store.get_store_info().auth_scheme != AuthScheme.NO_AUTH


def kfp_cron(expression: str) -> str:
    """A ZenML (standard, five-field) cron expression in Kubeflow's six-field form.

    Kubeflow's scheduler reads a leading seconds field and an optional day-of-week, so a
    five-field ``0 2 * * *`` handed over unchanged means "minute 2 of every hour", not 02:00.
    ZenML passes it through as written; here a five-field expression gets ``0`` seconds in front.

    Args:
        expression: Five fields (minute hour day month weekday), or six with seconds first.

    Returns:
        The six-field expression.

    Raises:
        ValueError: Neither five nor six fields.
    """
    fields = expression.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise ValueError(f"cron expression {expression!r} must have 5 fields (or 6 with seconds first)")


class KubeflowUnreachable(ConnectionError):
    """The Kubeflow Pipelines endpoint did not answer."""


def probe_endpoint(hostname: str, token: str | None = None, ca_cert: str | None = None, timeout_s: float = 10) -> None:
    """Ask Kubeflow Pipelines' health endpoint once, so a wrong or down endpoint fails in seconds.

    kfp.Client retries its own health check for minutes and prints a traceback for each attempt.
    Any HTTP answer (even 401/403, which login handles) proves the endpoint is there.

    Raises:
        KubeflowUnreachable: No answer within ``timeout_s`` (names the endpoint and what to check).
    """
    import ssl
    import urllib.error
    import urllib.request

    url = f"{hostname.rstrip('/')}/apis/v2beta1/healthz"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    context = ssl.create_default_context(cafile=ca_cert) if ca_cert else None
    try:
        urllib.request.urlopen(request, timeout=timeout_s, context=context).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise KubeflowUnreachable(
            f"Kubeflow Pipelines at {hostname} did not answer within {timeout_s:g} s ({reason}); check "
            "kubeflow_hostname in the stack YAML, your network or VPN, and that the pipelines API is up"
        ) from None


def workload_environments(snapshot: PipelineSnapshotResponse, stack: Stack) -> dict[str, dict[str, str]]:
    """Environment of each step's pod for a compiled YAML, as ZenML's run path would make it.

    ZenML's run path adds a workload API token scoped to one run; a YAML compiled for later use
    gets none, and :meth:`GenomeKubeflowOrchestrator.compile_snapshot` drops any credential that is
    left (the pods read theirs from ``secret_env``), so nothing secret is written.

    Args:
        snapshot: The snapshot being compiled.
        stack: The stack it is compiled for.

    Returns:
        Environment variables per step name.
    """
    from zenml.orchestrators.utils import get_config_environment_vars
    from zenml.utils.env_utils import get_runtime_environment

    base, _credentials = get_config_environment_vars()
    return {
        name: {**base, **get_runtime_environment(config=step.config, stack=stack)}
        for name, step in snapshot.step_configurations.items()
    }
