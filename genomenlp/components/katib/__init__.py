"""Hyperparameter search on Kubernetes with Katib, from the same sweep JSON the local search reads.

* :mod:`genomenlp.components.katib.config`: :class:`KatibConfig`, where and how trials run (image, GPU
  placement, data paths inside the pod, budgets).
* :mod:`genomenlp.components.katib.experiment`: the sweep → a Katib ``Experiment`` built from SDK models.
* :mod:`genomenlp.components.katib.launcher`: submit, wait, read the best trial, delete.
* :mod:`genomenlp.components.katib.cli_support`: what ``sweep --backend katib [--dry_run]`` calls.

The submodules are imported on demand: the Katib SDK imports gRPC and the Kubernetes client,
which commands that never touch a cluster should not pay for.
"""
