"""Submit a PyTorchJob, wait for it, delete it: the Katib launcher's flow for the Training Operator.

Every way a job can end other than Succeeded raises (:class:`JobFailed`, :class:`JobTimeout`,
:class:`SubmissionError`), so a pipeline never continues without the outputs it waited for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from genomenlp.components.errors import InputError
from genomenlp.components.training_operator.job import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_API_ERRORS = 3


class TrainingJobError(RuntimeError):
    """A PyTorchJob could not be run to success."""


class SubmissionError(TrainingJobError):
    """The API server refused the job (or could not be reached)."""


class JobFailed(TrainingJobError):
    """The job ended Failed."""


class JobTimeout(TrainingJobError, TimeoutError):
    """The job was still running when the launcher stopped waiting."""


def custom_objects_api(host: str | None = None):
    """The Kubernetes API for custom resources: ``host`` (tests, ``kubectl proxy``), else in-cluster or kubeconfig."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    if host:
        return k8s.CustomObjectsApi(k8s.ApiClient(k8s.Configuration(host=host)))
    try:
        k8s_config.load_incluster_config()
    except ConfigException:
        try:
            k8s_config.load_kube_config()
        except (ConfigException, OSError) as error:
            raise InputError("distributed", f"no Kubernetes credentials ({error}); set distributed.host") from None
    return k8s.CustomObjectsApi()


def _condition(job: dict, kind: str) -> dict | None:
    conditions = (job.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind and c.get("status") == "True"), None)


def run_job(api, job: dict, timeout_s: float, poll_interval_s: float, delete: bool = True,
            clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Create ``job``, poll until it Succeeded, then delete it (whatever the outcome); returns its last state.

    Raises:
        SubmissionError: The API server refused it.
        JobFailed: It reached the Failed condition.
        JobTimeout: ``timeout_s`` passed first.
        TrainingJobError: The API server failed several polls in a row.
    """
    from kubernetes.client.exceptions import ApiException

    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
    except (ApiException, OSError) as error:
        raise SubmissionError(f"could not create PyTorchJob {namespace}/{name}: {error}") from error
    log.info("created PyTorchJob %s/%s", namespace, name)
    deadline, errors = clock() + timeout_s, 0
    try:
        while True:
            try:
                state = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
                errors = 0
            except (ApiException, OSError) as error:
                errors += 1
                if errors >= MAX_CONSECUTIVE_API_ERRORS:
                    raise TrainingJobError(f"lost PyTorchJob {namespace}/{name}: {error}") from error
            else:
                failed = _condition(state, "Failed")
                if failed is not None:
                    raise JobFailed(f"PyTorchJob {namespace}/{name} failed ({failed.get('reason')}): "
                                    f"{failed.get('message')}")
                if _condition(state, "Succeeded") is not None:
                    return state
            if clock() + poll_interval_s > deadline:
                raise JobTimeout(f"PyTorchJob {namespace}/{name} still running after {timeout_s:g} s")
            sleep(poll_interval_s)
    finally:
        if delete:
            try:
                api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            except (ApiException, OSError) as error:
                log.warning("could not delete PyTorchJob %s/%s: %s", namespace, name, error)
