"""Platform code over the pipelines: commands, stacks, the cluster path and the Kubeflow orchestrator flavor."""
