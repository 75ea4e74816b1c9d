"""One self-contained HTML page per run (figures inlined) that a browser opens offline."""

from __future__ import annotations

import base64
import html
from pathlib import Path

SHOWN = ("mcc", "roc_auc", "pr_auc", "f1", "f1_macro", "accuracy", "precision_weighted", "recall_weighted")


def beats_baseline(model_metrics: dict, baselines: dict[str, dict], reference: str = "kmer_1_4") -> bool:
    """Whether the model's test MCC is above the k-mer baseline's."""
    return model_metrics["test_mcc"] > baselines[reference]["test_mcc"]


def _row(name: str, metrics: dict, prefix: str, emphasis: bool = False) -> str:
    cells = "".join(f"<td>{metrics.get(prefix + key, float('nan')):.3f}</td>" for key in SHOWN)
    tag = "th" if emphasis else "td"
    return f"<tr><{tag}>{html.escape(name)}</{tag}>{cells}</tr>"


def _image(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}"></figure>'


def write_report(path: Path, title: str, test_metrics: dict, baselines: dict[str, dict], figures: list[Path],
                 facts: dict[str, str]) -> Path:
    """Write the report: test figures beside the baselines, a flag when the model does not beat them.

    Args:
        path: The HTML file.
        title: Page title (escaped).
        test_metrics: The model's ``test_`` metrics.
        baselines: Baseline name → its ``test_`` metrics.
        figures: PNG files to inline.
        facts: Short key → value lines (data, model size, epochs, time), escaped.
    """
    flag = (
        '<p class="ok">The model beats the k-mer baseline on test MCC.</p>'
        if beats_baseline(test_metrics, baselines)
        else '<p class="flag">⚠ The model does not beat the 1–4-mer logistic regression on test MCC: '
        "it has learnt nothing a k-mer count could not tell.</p>"
    )
    header = "".join(f"<th>{html.escape(key)}</th>" for key in SHOWN)
    rows = _row("model", test_metrics, "test_", emphasis=True) + "".join(
        _row(f"baseline: {name}", metrics, "test_") for name, metrics in baselines.items()
    )
    fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} .flag {{ color: #a40000; font-weight: bold; }} .ok {{ color: #1b6e1b; }}
figure {{ display: inline-block; margin: .5rem; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{fact_rows}</table>
<h2>Test split</h2>
{flag}
<table><tr><th></th>{header}</tr>{rows}</table>
<h2>Figures</h2>
{''.join(_image(figure) for figure in figures)}
</body></html>
"""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    return path
