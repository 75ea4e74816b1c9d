"""Multi-node training on the Kubeflow Training Operator: a PyTorchJob per training or pre-training run."""
