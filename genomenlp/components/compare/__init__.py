"""Comparing trained models by their weights: WeightWatcher power-law fits of each encoder."""

from genomenlp.components.compare.powerlaw import PowerlawConfig, fit_powerlaw

__all__ = ["PowerlawConfig", "fit_powerlaw"]
