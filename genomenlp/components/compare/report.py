"""The comparison's summary as one self-contained HTML page (the table and the overlay figures)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from genomenlp.components.compare.powerlaw import HISTOGRAM_STEM, LAYER_PLOT_STEM


def comparison_page(folder: Path, summary: pd.DataFrame) -> str:
    """HTML of ``summary.tsv`` beside the overlays of all models that ``fit_powerlaw`` drew in ``folder``.

    Args:
        folder: The comparison folder (``alpha_hist.png`` and ``alpha_plot.png`` at its top).
        summary: Its summary table, one row per model.
    """
    figures = ""
    for stem in (HISTOGRAM_STEM, LAYER_PLOT_STEM):
        image = folder / f"{stem}.png"
        if image.is_file():
            encoded = base64.b64encode(image.read_bytes()).decode("ascii")
            figures += f'<figure><img alt="{html.escape(stem)}" src="data:image/png;base64,{encoded}"></figure>'
    # to_html escapes every cell; model names come from user-chosen references.
    table = summary.to_html(index=False, escape=True, float_format=lambda value: f"{value:.3f}", na_rep="")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Weight-spectrum comparison</title>'
            f"<style>body {{ font-family: system-ui, sans-serif; margin: 2rem; }} img {{ max-width: 100%; }}"
            f"td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }} table {{ border-collapse: collapse; }}"
            f"</style></head><body><h1>Weight-spectrum comparison</h1>{table}{figures}</body></html>")
