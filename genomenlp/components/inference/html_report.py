"""HTML pages of attributions: one page per sequence and an index.

Every piece of text that reaches the HTML (record ids, file names, labels, tokens) goes through
:func:`escape`; the pages also carry a Content-Security-Policy that forbids scripts, so a hostile
FASTA header can neither inject markup nor run code.

All pages of one run share one colour scale in attribution units (the explained class's logit),
printed as a numeric legend on each, so a page of noise never looks like a page of signal; a
score smaller than its sequence's completeness error is drawn neutral.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

# Beyond this many tokens (or bases) a page shows the beginning only; the TSVs hold everything.
MAX_SHOWN = 50_000
# Bases per line of the base track; the ruler above each line marks every tenth position.
LINE = 60
# Share of a run's |token scores| below the colour scale's limit: a few outliers must not wash out the rest.
SCALE_PERCENTILE = 99.0
_POSITIVE = (26, 150, 65)  # green: toward the target class
_NEGATIVE = (215, 48, 39)  # red: away from it
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.tokens { font-family: ui-monospace, monospace; line-height: 2.4; }
.tokens .t { display: inline-block; white-space: nowrap; margin: 0 2px 2px 0; padding: 0 2px;
  border: 1px solid #ddd; border-radius: 3px; }
.tokens .at { font-size: .7em; color: #666; margin: 0 2px 0 6px; }
.bases { font-family: ui-monospace, monospace; }
.bases .line { white-space: nowrap; }
.bases .c { display: inline-block; width: 1.3ch; text-align: center; }
.bases .n { display: inline-block; width: 8ch; text-align: right; padding-right: 1ch; color: #666; }
.bases .ruler { color: #888; font-size: .75em; height: 1.3em; margin-top: .4em; }
.bases .ruler .c { overflow: visible; text-align: left; border-left: 1px solid #999; }
.bases .ruler .c.blank { border-left: none; }
.legend { display: flex; align-items: stretch; margin: .5em 0; font-size: .8em; font-family: ui-monospace, monospace; }
.legend span { flex: 1; text-align: center; padding: 3px 0; border: 1px solid #eee; }
.note { font-size: .9em; color: #444; max-width: 60em; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
.wrong { background: #fdecea; }
dt { font-weight: bold; } dd { margin: 0 0 .5em 1em; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
"""
# No scripts, no remote content: the pages are static text, inline styles and inline SVG.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def escape(value) -> str:
    """Text made safe for HTML element content and quoted attributes."""
    text = html.escape(str(value), quote=True)
    # Undecodable command-line bytes arrive as lone surrogates, which UTF-8 cannot encode.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def noise_floor(delta: float, attribution_sum: float, tolerance: float) -> float:
    """A sequence's completeness error: its largest |convergence delta|, at least the error the integration accepts.

    That is ``tolerance`` × max(1, |sum of scores|); a score below it cannot be told from integration error.
    """
    return max(abs(delta), tolerance * max(1.0, abs(attribution_sum)))


@dataclass(frozen=True)
class ColourScale:
    """One colour scale for every page of a run, in attribution units.

    Attributes:
        limit: |score| drawn in full colour (and beyond it); 0 when the run has no non-zero score.
    """

    limit: float

    @classmethod
    def of_run(cls, scores: np.ndarray) -> ColourScale:
        """The scale of a run from all its token scores: their 99th percentile of |score|."""
        finite = np.abs(np.asarray(scores, dtype=np.float64))
        finite = finite[np.isfinite(finite)]
        return cls(float(np.percentile(finite, SCALE_PERCENTILE)) if finite.size else 0.0)

    def colour(self, score: float, floor: float = 0.0) -> str:
        """Green toward the target, red away, opacity |score| / limit; neutral below ``floor``."""
        if not np.isfinite(score) or self.limit <= 0 or abs(score) < floor:
            return "transparent"
        red, green, blue = _POSITIVE if score > 0 else _NEGATIVE
        return f"rgba({red}, {green}, {blue}, {min(1.0, abs(score) / self.limit):.3f})"

    def legend(self, floor: float | None = None) -> str:
        """A numeric colour bar from −limit to +limit, and what neutral means on this page."""
        if self.limit <= 0:
            return '<p class="note">Every attribution of this run is zero: nothing is coloured.</p>'
        steps = np.linspace(-self.limit, self.limit, 9)
        cells = "".join(f'<span style="background: {self.colour(value)}">{value:+.3g}</span>' for value in steps)
        where = (f"|score| below {floor:.2g}, this sequence's completeness error, is drawn neutral"
                 if floor is not None else "on each sequence's page, |score| below its completeness error is drawn "
                 "neutral")
        muted = (" <b>Every score of this sequence is below its completeness error: the colours show nothing.</b>"
                 if floor is not None and floor >= self.limit else "")
        return (f'<div class="legend">{cells}</div>\n<p class="note">One colour scale for every page of this run, in '
                "attribution units (contribution to the explained class's logit): full colour at |score| ≥ "
                f"{self.limit:.3g} and beyond; {where}.{muted}</p>")


@dataclass
class SequenceSummary:
    """What the index and a page say about one sequence.

    Attributes:
        record_id: The record id (any text).
        source: Input file, or ``command line``.
        length: Bases.
        chunks: Model windows it was read in.
        true_label: True class name, when known.
        predicted: Predicted class name.
        probability: Probability of the predicted class.
        target: Class the attributions explain.
        target_probability: Probability of that class.
        attribution_sum: Sum of the token scores (merged over windows).
        delta: Largest absolute convergence delta over the windows.
        page: Page path relative to the output folder.
        floor: The completeness error: |scores| below it are drawn neutral.
    """

    record_id: str
    source: str
    length: int
    chunks: int
    true_label: str | None
    predicted: str
    probability: float
    target: str
    target_probability: float
    attribution_sum: float
    delta: float
    page: str
    floor: float = 0.0


def render_sequence_page(summary: SequenceSummary, tokens: list[str], spans: np.ndarray, token_scores: np.ndarray,
                         sequence: str, base_scores: np.ndarray, scale: ColourScale) -> str:
    """One sequence's page: its prediction, tokens and bases coloured by attribution on the run's scale.

    Args:
        summary: The sequence's prediction and attribution figures.
        tokens: Token texts.
        spans: ``(tokens, 2)`` bases of each token, 0-based, end exclusive.
        token_scores: Score of each token.
        sequence: The bases.
        base_scores: Score of each base (NaN where no token covers it).
        scale: The run's colour scale.
    """
    facts = [
        ("Source", summary.source),
        ("Length", f"{summary.length} bases in {summary.chunks} model window(s)"),
        ("True label", summary.true_label if summary.true_label is not None else "unknown"),
        ("Predicted", f"{summary.predicted} (p = {summary.probability:.4f})"),
        ("Attributions explain", f"{summary.target} (p = {summary.target_probability:.4f})"),
        ("Sum of token scores", f"{summary.attribution_sum:.4g} (largest |convergence delta| {summary.delta:.2g})"),
    ]
    parts = [f"<p><a href=\"../index.html\">all sequences</a></p>\n<h1>{escape(summary.record_id)}</h1>\n<dl>"]
    parts += [f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in facts]
    parts.append("</dl>\n<p>Green: pushes toward <b>" + escape(summary.target) + "</b>; red: pushes away. "
                 "Positions are 0-based.</p>")
    parts.append(scale.legend(summary.floor))
    shown = min(len(tokens), MAX_SHOWN)
    parts.append("<h2>Tokens</h2>")
    if shown < len(tokens):
        parts.append(f"<p>First {shown} of {len(tokens)} tokens; attributions.tsv holds all.</p>")
    cells = []
    for index, (token, (start, end), score) in enumerate(zip(tokens[:shown], spans[:shown].tolist(),
                                                             token_scores[:shown].tolist(), strict=True)):
        if index % 10 == 0:  # the ruler of the token track: the start base of every tenth token
            cells.append(f'<span class="at">{start}</span>')
        cells.append(f"<span class=\"t\" style=\"background: {scale.colour(score, summary.floor)}\" "
                     f"title=\"{escape(f'token {index}, bases {start}-{end}: {score:.4g}')}\">{escape(token)}</span>")
    parts.append("<div class=\"tokens\">" + "".join(cells) + "</div>")
    shown = min(len(sequence), MAX_SHOWN)
    parts.append("<h2>Bases</h2>")
    if shown < len(sequence):
        parts.append(f"<p>First {shown} of {len(sequence)} bases; per_base.tsv holds all.</p>")
    parts.append(_base_lines(sequence[:shown], base_scores[:shown], scale, summary.floor))
    return _page(summary.record_id, "\n".join(parts))


def _base_lines(sequence: str, scores: np.ndarray, scale: ColourScale, floor: float) -> str:
    """Bases in lines of :data:`LINE`, each under a ruler that numbers every tenth position."""
    lines = []
    for first in range(0, len(sequence), LINE):
        count = min(LINE, len(sequence) - first)
        ruler = "".join(f'<span class="c">{position}</span>' if position % 10 == 0 else '<span class="c blank"></span>'
                        for position in range(first, first + count))
        bases = "".join(
            f"<span class=\"c\" style=\"background: {scale.colour(score, floor)}\" "
            f"title=\"{escape(f'{position}: {score:.4g}')}\">{escape(base)}</span>"
            for position, base, score in zip(range(first, first + count), sequence[first:first + count],
                                             scores[first:first + count].tolist(), strict=True))
        lines.append(f'<div class="line ruler"><span class="n"></span>{ruler}</div>'
                     f'<div class="line"><span class="n">{first}</span>{bases}</div>')
    return '<div class="bases">' + "".join(lines) + "</div>"


def render_index(summaries: list[SequenceSummary], model: str, scale: ColourScale, tracks: str = "") -> str:
    """The index page: the run's colour legend, the summary tracks (escaped HTML), every sequence and its page."""
    header = ["#", "id", "source", "length", "chunks", "true label", "predicted", "p", "explained class", "|delta|"]
    rows = ["<tr>" + "".join(f"<th>{escape(name)}</th>" for name in header) + "</tr>"]
    for number, item in enumerate(summaries, start=1):
        wrong = item.true_label is not None and item.true_label != item.predicted
        cells = [
            str(number),
            f"<a href=\"{escape(item.page)}\">{escape(item.record_id)}</a>",
            escape(item.source),
            str(item.length),
            str(item.chunks),
            escape(item.true_label if item.true_label is not None else ""),
            escape(item.predicted),
            f"{item.probability:.4f}",
            escape(item.target),
            f"{item.delta:.2g}",
        ]
        row_class = " class=\"wrong\"" if wrong else ""
        rows.append(f"<tr{row_class}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    body = (f"<h1>Attributions</h1>\n<p>Model: {escape(model)}. {len(summaries)} sequence(s); rows shaded red "
            f"are predicted differently from their true label.</p>\n{scale.legend()}\n{tracks}\n<h2>Sequences</h2>\n"
            "<table>\n" + "\n".join(rows) + "\n</table>")
    return _page("Attributions", body)
