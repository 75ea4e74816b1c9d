"""The comparison's summary as one self-contained HTML page (the table and the overlay figures)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from genomenlp.components.compare.powerlaw import HISTOGRAM_STEM, LAYER_PLOT_STEM

# Up to this many models, the summary is shown a column per model.
WIDE = 8


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
    # A row per figure and a column per model: a summary has some twenty figures, which as columns overflow
    # a 1280-px window; comparisons hold a handful of models. to_html escapes every cell (model names
    # come from user-chosen references).
    def text(value):
        if isinstance(value, float):
            return "" if value != value else f"{value:.3f}"  # NaN: no figure (a model without metrics.json)
        return value

    shown = summary.map(text)
    by_model = "model" in shown.columns and len(shown) <= WIDE
    table = (shown.set_index("model").T if by_model else shown).to_html(index=by_model, escape=True)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Weight-spectrum comparison</title>'
            f"<style>body {{ font-family: system-ui, sans-serif; margin: 2rem; }} img {{ max-width: 100%; }}"
            f"td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }} table {{ border-collapse: collapse; }}"
            f"td {{ text-align: right; }} .scroll {{ overflow-x: auto; }}"
            f'</style></head><body><h1>Weight-spectrum comparison</h1><div class="scroll">{table}</div>{figures}'
            "</body></html>")
