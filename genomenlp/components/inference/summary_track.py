"""The index page's summary tracks: mean attribution per base position over the sequences predicted as each class.

Sequences are aligned at their first base (position 0), as promoter sets cut at a fixed offset from
the transcription start are: a motif at a fixed position (the −10 and −35 boxes) shows as a peak.
"""

from __future__ import annotations

import math

import numpy as np

from genomenlp.components.inference.html_report import escape

# Bars drawn per track at most; longer tracks are averaged over bins of consecutive positions.
MAX_BARS = 1_000
_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP = 1_000, 170, 64, 30, 12


class ClassTracks:
    """Running sums of per-base scores (NaN where no token covers a base) by predicted class."""

    def __init__(self) -> None:
        """No sequence yet."""
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, np.ndarray] = {}
        self.sequences: dict[str, int] = {}
        self.floors: dict[str, float] = {}

    def add(self, predicted: str, base_scores: np.ndarray, floor: float = 0.0) -> None:
        """Add one explained sequence's per-base scores (and its completeness error) to its predicted class."""
        scores = np.asarray(base_scores, dtype=np.float64)
        sums = self.sums.setdefault(predicted, np.zeros(0))
        counts = self.counts.setdefault(predicted, np.zeros(0, dtype=np.int64))
        if len(scores) > len(sums):
            sums = self.sums[predicted] = np.concatenate([sums, np.zeros(len(scores) - len(sums))])
            counts = self.counts[predicted] = np.concatenate([counts, np.zeros(len(scores) - len(counts), np.int64)])
        finite = np.isfinite(scores)
        sums[: len(scores)][finite] += scores[finite]
        counts[: len(scores)][finite] += 1
        self.sequences[predicted] = self.sequences.get(predicted, 0) + 1
        self.floors[predicted] = self.floors.get(predicted, 0.0) + floor

    def floor(self, predicted: str) -> float:
        """The mean completeness error of the class's sequences: a mean score below it is noise."""
        return self.floors[predicted] / self.sequences[predicted]

    def means(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Class → (mean score per position, NaN where no sequence reaches it; sequences per position)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return {name: (np.where(self.counts[name] > 0, self.sums[name] / np.maximum(self.counts[name], 1),
                                    np.nan), self.counts[name]) for name in sorted(self.sums)}


def _binned(means: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Means over bins of consecutive positions (weighted by sequences) so at most MAX_BARS remain."""
    width = max(1, math.ceil(len(means) / MAX_BARS))
    if width == 1:
        return means, 1
    padded = math.ceil(len(means) / width) * width
    weights = np.zeros(padded)
    totals = np.zeros(padded)
    weights[: len(counts)] = counts
    totals[: len(means)] = np.nan_to_num(means) * counts
    weights, totals = weights.reshape(-1, width).sum(axis=1), totals.reshape(-1, width).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weights > 0, totals / np.maximum(weights, 1), np.nan), width


def _tick_step(positions: int) -> int:
    """A round step giving about ten ticks."""
    raw = max(1, positions / 10)
    power = 10 ** math.floor(math.log10(raw))
    return int(next(step * power for step in (1, 2, 5, 10) if step * power >= raw))


def render_track(name: str, sequences: int, means: np.ndarray, counts: np.ndarray, explained: str,
                 floor: float = 0.0) -> str:
    """One class's track as inline SVG: a bar per position (green up, red down), numbered axes.

    The axis spans at least ±``floor`` (the completeness error), drawn as a grey band; bars inside it
    are grey, so a model whose attributions are noise shows flat grey, not a motif.
    """
    values, width = _binned(means, counts)
    finite = np.abs(values[np.isfinite(values)])
    top = max(float(finite.max()) if finite.size else 0.0, floor) or 1.0
    plot_width, plot_height = _WIDTH - _LEFT - 10, _HEIGHT - _BOTTOM - _TOP
    zero = _TOP + plot_height / 2
    step = plot_width / max(1, len(values))
    band = floor / top * plot_height / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" role="img">',
             f"<title>{escape(f'Mean attribution per position, predicted {name}')}</title>",
             f'<rect x="{_LEFT}" y="{zero - band:.2f}" width="{plot_width}" height="{2 * band:.2f}" fill="#e8e8e8"/>']
    for index, value in enumerate(values.tolist()):
        if not np.isfinite(value) or value == 0:
            continue
        height = abs(value) / top * plot_height / 2
        colour = "#9a9a9a" if abs(value) < floor else "#1a9641" if value > 0 else "#d73027"
        parts.append(f'<rect x="{_LEFT + index * step:.2f}" y="{zero - height if value > 0 else zero:.2f}" '
                     f'width="{max(step * 0.9, 0.5):.2f}" height="{height:.2f}" fill="{colour}"/>')
    parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_width}" y1="{zero}" y2="{zero}" stroke="#555"/>')
    parts.append(f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_TOP + plot_height}" stroke="#555"/>')
    for value, y in ((top, _TOP), (0.0, zero), (-top, _TOP + plot_height)):
        parts.append(f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{value:+.2g}</text>')
    positions = len(means)
    tick = _tick_step(positions)
    for position in range(0, positions, tick):
        x = _LEFT + position / width * step
        parts.append(f'<line x1="{x:.2f}" x2="{x:.2f}" y1="{_TOP + plot_height}" y2="{_TOP + plot_height + 4}" '
                     'stroke="#555"/>')
        parts.append(f'<text x="{x:.2f}" y="{_TOP + plot_height + 16}" text-anchor="middle">{position}</text>')
    parts.append(f'<text x="{_LEFT + plot_width}" y="{_HEIGHT - 2}" text-anchor="end">base position (0-based)'
                 f'{escape(f", bins of {width}" if width > 1 else "")}</text></svg>')
    caption = (f"Predicted {name}: {sequences} sequence(s); mean attribution toward {explained} per position "
               "(sequences aligned at their first base; attribution units, axis numbered). Grey band: ±"
               f"{floor:.2g}, their mean completeness error; bars inside it are grey, no signal.")
    return f"<figure><figcaption>{escape(caption)}</figcaption>{''.join(parts)}</figure>"


def render_tracks(tracks: ClassTracks, explained: dict[str, set[str]]) -> str:
    """Every predicted class's track; ``explained`` maps a class to the classes its sequences were explained as."""
    if not tracks.sums:
        return ""
    figures = [render_track(name, tracks.sequences[name], means, counts, " / ".join(sorted(explained[name])),
                            tracks.floor(name)) for name, (means, counts) in tracks.means().items()]
    return "<h2>Summary tracks</h2>\n" + "\n".join(figures)
