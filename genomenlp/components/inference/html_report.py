"""HTML pages of attributions: one page per sequence and an index.

Every piece of text that reaches the HTML (record ids, file names, labels, tokens) goes through
:func:`escape`; the pages also carry a Content-Security-Policy that forbids scripts, so a hostile
FASTA header can neither inject markup nor run code.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

# Beyond this many tokens (or bases) a page shows the beginning only; the TSVs hold everything.
MAX_SHOWN = 50_000
_POSITIVE = (26, 150, 65)  # green: toward the target class
_NEGATIVE = (215, 48, 39)  # red: away from it
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.track { font-family: ui-monospace, monospace; line-height: 2; word-break: break-all; }
.track span { padding: 2px 1px; }
.tokens span { margin-right: 2px; border: 1px solid #ddd; border-radius: 3px; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
.wrong { background: #fdecea; }
dt { font-weight: bold; } dd { margin: 0 0 .5em 1em; }
"""
# No scripts, no remote content: the pages are static text and inline styles.
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


def colour(score: float, scale: float) -> str:
    """Background colour of a score: green when positive, red when negative, opacity by |score| / scale."""
    if not np.isfinite(score) or scale <= 0:
        return "transparent"
    red, green, blue = _POSITIVE if score > 0 else _NEGATIVE
    alpha = min(1.0, abs(score) / scale)
    return f"rgba({red}, {green}, {blue}, {alpha:.3f})"


def _scale(scores: np.ndarray) -> float:
    finite = np.abs(scores[np.isfinite(scores)])
    return float(finite.max()) if finite.size else 0.0


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


def render_sequence_page(summary: SequenceSummary, tokens: list[str], spans: np.ndarray, token_scores: np.ndarray,
                         sequence: str, base_scores: np.ndarray) -> str:
    """One sequence's page: its prediction, tokens and bases coloured by attribution.

    Args:
        summary: The sequence's prediction and attribution figures.
        tokens: Token texts.
        spans: ``(tokens, 2)`` bases of each token, 0-based, end exclusive.
        token_scores: Score of each token.
        sequence: The bases.
        base_scores: Score of each base (NaN where no token covers it).
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
    parts.append("</dl>\n<p>Green: pushes toward <b>" + escape(summary.target) + "</b>; red: pushes away; "
                 "stronger colour, larger |score|. Positions are 0-based.</p>")
    shown = min(len(tokens), MAX_SHOWN)
    scale = _scale(token_scores)
    parts.append("<h2>Tokens</h2>")
    if shown < len(tokens):
        parts.append(f"<p>First {shown} of {len(tokens)} tokens; attributions.tsv holds all.</p>")
    cells = [
        f"<span style=\"background: {colour(score, scale)}\" title=\"{escape(f'{start}-{end}: {score:.4g}')}\">"
        f"{escape(token)}</span>"
        for token, (start, end), score in zip(tokens[:shown], spans[:shown].tolist(), token_scores[:shown].tolist(),
                                              strict=True)
    ]
    parts.append("<div class=\"track tokens\">" + "".join(cells) + "</div>")
    shown = min(len(sequence), MAX_SHOWN)
    scale = _scale(base_scores)
    parts.append("<h2>Bases</h2>")
    if shown < len(sequence):
        parts.append(f"<p>First {shown} of {len(sequence)} bases; per_base.tsv holds all.</p>")
    cells = [
        f"<span style=\"background: {colour(score, scale)}\" title=\"{escape(f'{position}: {score:.4g}')}\">"
        f"{escape(base)}</span>"
        for position, (base, score) in enumerate(zip(sequence[:shown], base_scores[:shown].tolist(), strict=True))
    ]
    parts.append("<div class=\"track\">" + "".join(cells) + "</div>")
    return _page(summary.record_id, "\n".join(parts))


def render_index(summaries: list[SequenceSummary], model: str) -> str:
    """The index page: every sequence with its prediction and a link to its page."""
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
            "are predicted differently from their true label.</p>\n<table>\n" + "\n".join(rows) + "\n</table>")
    return _page("Attributions", body)
