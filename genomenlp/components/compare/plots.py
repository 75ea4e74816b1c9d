"""Figures of a WeightWatcher comparison: alpha histograms and alpha per weight matrix, one colour per model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genomenlp.components.compare.spectra import ALPHA_BAND, fitted

BIN_WIDTH = 0.25
# Encoder prefixes dropped from tick labels: the layer number and the matrix name are what tell them apart.
_PREFIXES = ("encoder.layer.", "transformer.layer.")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works on a machine without a display
    import matplotlib.pyplot as plt

    return plt


def _colours(count: int) -> list:
    """Distinct colours: the qualitative tab10/tab20 palettes, a sampled colour map beyond 20 models."""
    import matplotlib

    if count <= 10:
        return list(matplotlib.colormaps["tab10"].colors[:count])
    if count <= 20:
        return list(matplotlib.colormaps["tab20"].colors[:count])
    return [matplotlib.colormaps["turbo"](value) for value in np.linspace(0.05, 0.95, count)]


def _alphas(layers: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(fitted(layers)["alpha"], errors="coerce").to_numpy(dtype=float) if not layers.empty \
        else np.array([])


def _short_name(longname: str) -> str:
    for prefix in _PREFIXES:
        if longname.startswith(prefix):
            return longname[len(prefix):]
    return longname


def _band(axes, vertical: bool) -> None:
    low, high = ALPHA_BAND
    label = f"well-trained band ({low:g} ≤ α ≤ {high:g})"
    span = axes.axvspan if vertical else axes.axhspan
    span(low, high, color="tab:green", alpha=0.12, linewidth=0, label=label, zorder=0)


def plot_alpha_histogram(layers_by_model: dict[str, pd.DataFrame], stem: Path, alpha_max: float,
                         formats: Sequence[str] = ("pdf", "png")) -> list[Path]:
    """Histogram of the fitted alphas of each model on shared bins, the 2–6 band shaded.

    Args:
        layers_by_model: Model name → WeightWatcher's per-matrix table.
        stem: Output path without extension; one file per format is written.
        alpha_max: Right edge; larger alphas are counted in the last bin (the x label says so).
        formats: File extensions to write.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(7, 4.5))
    _band(axes, vertical=True)
    bins = np.arange(0, alpha_max + BIN_WIDTH / 2, BIN_WIDTH)
    clipped = False
    single = len(layers_by_model) == 1
    for (name, layers), colour in zip(layers_by_model.items(), _colours(len(layers_by_model)), strict=True):
        alpha = _alphas(layers)
        clipped |= bool((alpha > alpha_max).any())
        values = np.clip(alpha, 0, alpha_max)
        # Filled bars fade so overlapping models stay visible; the outline keeps each model's shape.
        axes.hist(values, bins=bins, histtype="stepfilled", color=colour, alpha=0.6 if single else 0.25)
        axes.hist(values, bins=bins, histtype="step", color=colour, linewidth=1.5,
                  label=f"{name} ({alpha.size} matrices)")
    note = f"; values above {alpha_max:g} counted at {alpha_max:g}" if clipped else ""
    axes.set_xlabel(f"α (power-law exponent of a weight matrix's eigenvalue spectrum{note})")
    axes.set_ylabel("weight matrices")
    axes.set_xlim(0, alpha_max)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"{next(iter(layers_by_model))}: α per weight matrix" if single else "α per weight matrix, by model")
    axes.legend(fontsize="small")
    return _save(figure, stem, formats)


def plot_alpha_per_layer(layers_by_model: dict[str, pd.DataFrame], stem: Path, alpha_max: float,
                         formats: Sequence[str] = ("pdf", "png")) -> list[Path]:
    """Alpha of each weight matrix in encoder order (embeddings first), one line per model.

    A single model's plot names every matrix on the x axis; overlays number them, since different
    architectures name their matrices differently. Failed fits leave gaps; alphas above
    ``alpha_max`` are drawn at the top edge as triangles.

    Args:
        layers_by_model: Model name → WeightWatcher's per-matrix table (in encoder order).
        stem: Output path without extension; one file per format is written.
        alpha_max: Top edge of the plot.
        formats: File extensions to write.
    """
    plt = _pyplot()
    single = len(layers_by_model) == 1
    longest = max((len(layers) for layers in layers_by_model.values()), default=0)
    width = min(24.0, max(7.0, 0.28 * longest)) if single else 8.0
    figure, axes = plt.subplots(figsize=(width, 5.5 if single else 4.5))
    _band(axes, vertical=False)
    for (name, layers), colour in zip(layers_by_model.items(), _colours(len(layers_by_model)), strict=True):
        if layers.empty:
            axes.plot([], [], color=colour, label=f"{name} (no matrix analysed)")
            continue
        alpha = pd.to_numeric(layers["alpha"], errors="coerce").to_numpy(dtype=float)
        alpha = np.where(np.isfinite(alpha) & (alpha > 0), alpha, np.nan)
        position = np.arange(len(alpha))
        axes.plot(position, np.minimum(alpha, alpha_max), marker="o", markersize=4, color=colour, label=name)
        over = alpha > alpha_max
        if over.any():
            axes.plot(position[over], np.full(over.sum(), alpha_max), linestyle="none", marker="^", markersize=8,
                      color=colour)
    if single and longest:
        layers = next(iter(layers_by_model.values()))
        names = layers["longname"] if "longname" in layers else layers.get("name", pd.Series(range(len(layers))))
        axes.set_xticks(range(len(layers)), [_short_name(str(name)) for name in names], rotation=90, fontsize=7)
        axes.set_xlabel("weight matrix (encoder order; layer number first)")
    else:
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("weight matrix index (encoder order: embeddings, then layer by layer)")
    axes.set_ylabel(f"α (above {alpha_max:g} drawn at the edge as ▲)")
    axes.set_ylim(0, alpha_max * 1.04)
    axes.set_title(f"{next(iter(layers_by_model))}: α per weight matrix" if single else "α per weight matrix, by model")
    axes.legend(fontsize="small")
    return _save(figure, stem, formats)


def _save(figure, stem: Path, formats: Sequence[str]) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    paths = []
    for extension in formats:
        path = stem.parent / f"{stem.name}.{extension}"
        figure.savefig(path, dpi=110)
        paths.append(path)
    _pyplot().close(figure)
    return paths
