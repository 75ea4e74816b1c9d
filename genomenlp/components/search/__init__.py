"""Hyperparameter search from the hosted-dashboard sweep format: locally with Optuna (Katib on a cluster)."""
