"""WeightWatcher power-law fits of trained encoders: per-layer exponents and one summary row per model.

WeightWatcher fits a power law to the tail of each weight matrix's eigenvalue spectrum (the
eigenvalues of WᵀW); the exponent ``alpha`` says, without any data, how well a layer is trained:
2 ≤ alpha ≤ 6 is the well-trained range, larger values suggest under-training, smaller ones
over-fitting. As in the original ``fit_powerlaw`` (which loaded ``AutoModel``), only the encoder is
analysed: ``model.base_model`` (``model.bert`` with its pooler, or ``model.distilbert``); the
classification head is a small, task-shaped matrix whose spectrum says little.

Speed: the original called ``analyze(randomize=True, min_evals=50)`` per model (and for models it
downloaded, once more with ``plot=True``). Randomisation (a shuffled copy of every matrix is
decomposed and fitted again, to look for correlation traps) and WeightWatcher's own per-layer
figures are nearly all of that cost: on the default 2×128 encoder ``randomize=True`` took 13 s
against 0.16 s without it. Here ``analyze()`` runs once per model with ``randomize=False`` (opt in
with ``randomize``) and ``plot=False`` (our two figures are drawn from the fitted values), keeping
the original's ``min_evals=50``. What remains is one SVD per weight matrix (SciPy on the CPU), run
on one BLAS thread: the matrices are at most a few thousand wide, and on a shared two-core machine
OpenBLAS's default of two threads made a 512×128 SVD take 0.6-2.8 s instead of 0.006 s. Measured
there (``benchmarks/weightwatcher_speed.py``): 0.1-0.2 s per default 2×128 encoder (0.5 s with a
32,000-token vocabulary) and 15-17 s for the original's 6×768 DistilBERT shape.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from genomenlp.components.compare.plots import plot_alpha_histogram, plot_alpha_per_layer
from genomenlp.components.compare.spectra import ALPHA_BAND, fitted  # noqa: F401 - importers take them from here
from genomenlp.components.errors import InputError
from genomenlp.components.filenames import METRICS_FILE, MODEL_DIR
from genomenlp.components.model_io import MODEL_RESOLVERS, load_model, resolve_model_path
from genomenlp.components.storage import atomic_output_dir, ensure_absent
from genomenlp.components.training.ensemble_model import is_ensemble

METRIC_KEYS = ("test_mcc", "test_roc_auc", "test_f1")
# weightwatcher's get_summary figures reported beside the alpha statistics (its "alpha" mean is ours).
SUMMARY_FIGURES = ("log_norm", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank")
LAYER_FILE = "alpha.tsv"
SUMMARY_FILE = "summary.tsv"
HISTOGRAM_STEM = "alpha_hist"
LAYER_PLOT_STEM = "alpha_plot"
FIGURE_FORMATS = ("pdf", "png")
MAX_NAME_LENGTH = 60
# Top-level outputs: a model folder of the same name would collide with them.
RESERVED_NAMES = frozenset({SUMMARY_FILE, *(f"{stem}.{ext}" for stem in (HISTOGRAM_STEM, LAYER_PLOT_STEM)
                                             for ext in FIGURE_FORMATS)})
# alpha.tsv starts with these columns (when weightwatcher gives them); the others follow alphabetically.
LEADING_COLUMNS = ("layer_id", "longname", "name", "layer_type", "N", "M", "num_evals", "alpha", "alpha_weighted",
                   "log_norm", "log_spectral_norm", "stable_rank", "xmin", "xmax", "num_pl_spikes", "sigma",
                   "status", "warning")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_WW_LOGGER = "weightwatcher"

# Reference as the user gave it → its registered metrics (None: not known there). The ZenML layer
# passes one that reads the model version's metadata; without it metrics.json files are read.
MetricsLookup = Callable[[str], dict | None]


class PowerlawConfig(BaseModel):
    """Settings of the WeightWatcher analysis and its figures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_evals: int = Field(50, ge=2, description="Skip weight matrices with fewer eigenvalues than this "
                           "(power-law fits on fewer are noise; the original's value).")
    randomize: bool = Field(False, description="Also fit a shuffled copy of every matrix (correlation-trap "
                            "columns in alpha.tsv); about 80x slower.")
    blas_threads: int = Field(1, ge=1, description="BLAS threads for the SVDs (1: the matrices are small "
                              "and extra threads mostly wait on each other).")
    alpha_max: float = Field(8.0, gt=ALPHA_BAND[1], description="Right edge of the plots: larger alphas are "
                             "drawn at this edge (alpha.tsv keeps every value).")


@dataclass
class ModelAnalysis:
    """The analysis of one model.

    Attributes:
        name: Output folder name under OUT (sanitised, unique).
        reference: The model as the user named it (folder or ``scheme:…``).
        layers: WeightWatcher's per-matrix table (one row per analysed weight matrix).
        summary: The model's row of ``summary.tsv``.
    """

    name: str
    reference: str
    layers: pd.DataFrame
    summary: dict


@contextlib.contextmanager
def _quiet_weightwatcher() -> Iterator[None]:
    """Silence weightwatcher: its log lines, its ``print`` calls and numpy warnings from its fits.

    Its logger stays at ERROR afterwards: weightwatcher resets it to WARNING on import, and its
    warnings (no CUDA, small-sample fits) are about its own choices, not the user's input.
    """
    logging.getLogger(_WW_LOGGER).setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _weightwatcher():
    """Import weightwatcher without its side effects on this process's logging and plotting."""
    import matplotlib

    # weightwatcher imports pyplot: pin the file-only backend first so no display is ever needed.
    matplotlib.use("Agg")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with _quiet_weightwatcher():
        import weightwatcher
    # Its import calls logging.basicConfig(level=INFO), which would print every library's INFO lines
    # from then on; undo that so importing it changes nobody else's logging.
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger(_WW_LOGGER).setLevel(logging.ERROR)
    return weightwatcher


def analyze_encoder(model, config: PowerlawConfig) -> tuple[pd.DataFrame, dict]:
    """Fit every weight matrix of a classifier's encoder.

    Args:
        model: A ``*ForSequenceClassification`` module; its ``base_model`` (the encoder) is analysed.
        config: Analysis settings.

    Returns:
        The per-matrix table (``alpha.tsv`` column order) and weightwatcher's ``get_summary`` over
        the matrices whose fit succeeded (empty when none did).
    """
    from threadpoolctl import threadpool_limits

    ww = _weightwatcher()
    with _quiet_weightwatcher(), threadpool_limits(limits=config.blas_threads, user_api="blas"):
        watcher = ww.WeightWatcher(model=model.base_model)
        layers = watcher.analyze(min_evals=config.min_evals, randomize=config.randomize, plot=False)
        good = fitted(layers)
        figures = watcher.get_summary(good) if not good.empty else {}
    if layers.empty:
        return layers, {}
    layers = layers.sort_values("layer_id", kind="stable").reset_index(drop=True)
    leading = [column for column in LEADING_COLUMNS if column in layers.columns]
    layers = layers[leading + sorted(set(layers.columns) - set(leading))]
    return layers, {key: float(value) for key, value in figures.items()}


def analyze_model(model, config: PowerlawConfig) -> tuple[pd.DataFrame, dict]:
    """:func:`analyze_encoder` of a classifier, or of every member of an ensemble.

    An ensemble's table holds every member's matrices, numbered in a ``member`` column, and its summary
    figures are the members' means: an ensemble is as well trained as the networks it averages.
    """
    if not is_ensemble(model):
        return analyze_encoder(model, config)
    tables, summaries = [], []
    for number, member in enumerate(model.members):
        layers, figures = analyze_encoder(member, config)
        tables.append(layers.assign(member=number))
        summaries.append(figures)
    shared = set.intersection(*(set(figures) for figures in summaries))
    return (pd.concat(tables, ignore_index=True),
            {key: float(np.mean([figures[key] for figures in summaries])) for key in sorted(shared)})


def summarise(layers: pd.DataFrame, figures: dict) -> dict:
    """Alpha statistics over the fitted matrices, weightwatcher's summary figures and counts."""
    alpha = pd.to_numeric(fitted(layers)["alpha"], errors="coerce").to_numpy(dtype=float) if not layers.empty \
        else np.array([])
    low, high = ALPHA_BAND
    return {
        "layers": int(len(layers)),
        "layers_fitted": int(alpha.size),
        "alpha_mean": float(alpha.mean()) if alpha.size else math.nan,
        "alpha_median": float(np.median(alpha)) if alpha.size else math.nan,
        "share_alpha_2_6": float(((alpha >= low) & (alpha <= high)).mean()) if alpha.size else math.nan,
        **{key: figures.get(key, math.nan) for key in SUMMARY_FIGURES},
    }


def read_metrics_file(model_path: str | os.PathLike) -> dict:
    """Test metrics from the ``metrics.json`` beside or one level above a model folder ({} when absent).

    ``train`` writes ``OUT/metrics.json`` next to ``OUT/model_files``, so the folder above is checked
    after the folder itself.
    """
    folder = Path(model_path)
    for candidate in (folder / METRICS_FILE, folder.parent / METRICS_FILE):
        if not candidate.is_file():
            continue
        try:
            values = json.loads(candidate.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(str(candidate), "is not valid JSON (expected the metrics train writes)") from None
        if not isinstance(values, dict):
            raise InputError(str(candidate), "expected a JSON object of metrics")
        return {key: float(values[key]) for key in METRIC_KEYS
                if isinstance(values.get(key), (int, float)) and not isinstance(values.get(key), bool)}
    return {}


def model_label(reference: str, path: str) -> str:
    """The unsanitised name of a model: the part after ``scheme:``, else the run folder's name.

    ``…/run_a/model_files`` is named ``run_a`` (the folder ``train`` was given), any other folder by
    its own name.
    """
    scheme, separator, rest = str(reference).partition(":")
    if separator and (scheme in MODEL_RESOLVERS or scheme == "registry"):
        return rest
    folder = Path(os.path.abspath(path))
    if folder.name == MODEL_DIR and folder.parent.name:
        return folder.parent.name
    return folder.name


def safe_name(label: str) -> str:
    """A file-system-safe, length-limited form of a label: letters, digits, ``_``, ``.``, ``-``.

    Separators and other characters become ``_``; leading and trailing dots are stripped so no
    name is ``..`` or hidden; an empty result becomes ``model``.
    """
    name = _UNSAFE.sub("_", label).strip("._-")[:MAX_NAME_LENGTH].rstrip("._-")
    return name or "model"


def output_names(labels: Sequence[str]) -> list[str]:
    """Safe names, unique even on case-insensitive file systems (``_2``, ``_3``… added)."""
    taken = {name.casefold() for name in RESERVED_NAMES}
    names = []
    for label in labels:
        base = name = safe_name(label)
        number = 2
        while name.casefold() in taken:
            suffix = f"_{number}"
            name = base[:MAX_NAME_LENGTH - len(suffix)] + suffix
            number += 1
        taken.add(name.casefold())
        names.append(name)
    return names


def _inside(root: Path, name: str) -> Path:
    """``root/name``, refusing anything that would not be a direct child of ``root``."""
    target = (root / name).resolve()
    if target.parent != root.resolve():
        raise ValueError(f"output name {name!r} leaves the output folder")
    return target


def fit_powerlaw(
    references: Sequence[str],
    config: PowerlawConfig | None = None,
    out_dir: str = "powerlaw_out",
    overwrite: bool = False,
    metrics_lookup: MetricsLookup | None = None,
    on_model: Callable[[ModelAnalysis], None] | None = None,
) -> pd.DataFrame:
    """Analyse each model's encoder and write per-model tables and figures, overlays and a summary.

    Writes ``OUT/<name>/alpha.tsv``, ``alpha_hist.{pdf,png}``, ``alpha_plot.{pdf,png}`` per model,
    ``OUT/alpha_hist.{pdf,png}`` and ``OUT/alpha_plot.{pdf,png}`` overlaying all models, and
    ``OUT/summary.tsv`` (one row per model, with its test metrics where known). OUT is built under a
    temporary name and appears only when complete.

    Args:
        references: Model folders (``train``'s ``OUT/model_files``) or references with a registered scheme.
        config: Analysis settings (defaults when omitted).
        out_dir: The output folder, local or ``s3://``.
        overwrite: Replace an existing OUT; otherwise an existing OUT is an error.
        metrics_lookup: Registered metrics of a reference; ``metrics.json`` files are read when it
            is absent or returns None.
        on_model: Called after each model is analysed (progress).

    Returns:
        The summary table, one row per model in the order given.
    """
    config = config or PowerlawConfig()
    if not references:
        raise InputError("MODEL", "give at least one model folder or reference")
    # Refuse before any model is loaded; atomic_output_dir checks again when it starts writing.
    ensure_absent(out_dir, overwrite)
    paths = [resolve_model_path(reference) for reference in references]
    names = output_names([model_label(reference, path) for reference, path in zip(references, paths, strict=True)])
    analyses: list[ModelAnalysis] = []
    with atomic_output_dir(out_dir, overwrite) as staging:
        for reference, path, name in zip(references, paths, names, strict=True):
            loaded = load_model(path)
            layers, figures = analyze_model(loaded.model, config)
            if fitted(layers).empty:
                width = getattr(loaded.model.config, "hidden_size", None) or getattr(loaded.model.config, "dim", "?")
                raise InputError(str(reference), f"no weight matrix of the encoder (width {width}) could be fitted "
                                 f"with --min_evals {config.min_evals}; lower it (fits on few eigenvalues are noisy)")
            metrics = (metrics_lookup(reference) if metrics_lookup else None) or read_metrics_file(path)
            summary = {"model": name, "architecture": loaded.model.config.model_type, **summarise(layers, figures),
                       **{key: metrics.get(key, math.nan) for key in METRIC_KEYS}, "reference": str(reference)}
            analysis = ModelAnalysis(name, str(reference), layers, summary)
            folder = _inside(staging, name)
            folder.mkdir()
            layers.to_csv(folder / LAYER_FILE, sep="\t", index=False, na_rep="")
            plot_alpha_histogram({name: layers}, folder / HISTOGRAM_STEM, config.alpha_max, FIGURE_FORMATS)
            plot_alpha_per_layer({name: layers}, folder / LAYER_PLOT_STEM, config.alpha_max, FIGURE_FORMATS)
            analyses.append(analysis)
            if on_model:
                on_model(analysis)
            del loaded  # free this model's weights before the next one loads
        every = {analysis.name: analysis.layers for analysis in analyses}
        plot_alpha_histogram(every, staging / HISTOGRAM_STEM, config.alpha_max, FIGURE_FORMATS)
        plot_alpha_per_layer(every, staging / LAYER_PLOT_STEM, config.alpha_max, FIGURE_FORMATS)
        table = pd.DataFrame([analysis.summary for analysis in analyses])
        table.to_csv(staging / SUMMARY_FILE, sep="\t", index=False, na_rep="")
    return table
