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


def collapse_banner(text: str) -> str:
    """A red banner at the top of a page saying the model collapsed (``text`` is escaped here)."""
    return (f'<p class="flag banner">⚠ COLLAPSED: {html.escape(text)}. A collapsed model predicts one class or '
            "no better than chance: it is never selected or registered.</p>")


def write_report(path: Path, title: str, test_metrics: dict, baselines: dict[str, dict], figures: list[Path],
                 facts: dict[str, str], banner: str | None = None, members: dict[str, dict] | None = None) -> Path:
    """Write the report: test figures beside the baselines, a flag when the model does not beat them.

    Args:
        path: The HTML file.
        title: Page title (escaped).
        test_metrics: The model's ``test_`` metrics.
        baselines: Baseline name → its ``test_`` metrics.
        figures: PNG files to inline.
        facts: Short key → value lines (data, model size, epochs, time), escaped.
        banner: Why the run collapsed, shown above everything (``None``: it did not).
        members: An ensemble's members by name → their ``test_`` metrics alone, rows under the model's.
    """
    flag = (
        '<p class="ok">The model beats the k-mer baseline on test MCC.</p>'
        if beats_baseline(test_metrics, baselines)
        else '<p class="flag banner">⚠ The model does not beat the 1–4-mer logistic regression on test MCC: '
        "it has learnt nothing a k-mer count could not tell.</p>"
    )
    header = "".join(f"<th>{html.escape(key)}</th>" for key in SHOWN)
    rows = _row("model", test_metrics, "test_", emphasis=True) + "".join(
        _row(f"member: {name}", metrics, "test_") for name, metrics in (members or {}).items()
    ) + "".join(_row(f"baseline: {name}", metrics, "test_") for name, metrics in baselines.items())
    body = f"""{collapse_banner(banner) if banner else ""}<h2>Test split</h2>
{flag}
<table><tr><th></th>{header}</tr>{rows}</table>
<h2>Figures</h2>
{''.join(_image(figure) for figure in figures)}"""
    return write_page(path, title, facts, body)


def write_page(path: Path, title: str, facts: dict[str, str], body: str) -> Path:
    """Write a self-contained page (title and facts escaped here; ``body`` must be escaped HTML)."""
    fact_rows = "".join(f'<tr><th>{html.escape(k)}</th><td class="text">{html.escape(str(v))}</td></tr>'
                        for k, v in facts.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} \
td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} \
.flag {{ color: #a40000; font-weight: bold; }} .ok {{ color: #1b6e1b; }}
.banner {{ border: 2px solid #a40000; padding: .6rem; background: #fff0f0; }}
figure {{ display: inline-block; margin: .5rem; }} img {{ max-width: 100%; }}
.folds {{ font-size: .85rem; }} .folds th {{ white-space: normal; min-width: 3.2rem; }} \
.baseline {{ background: #f3f3f3; }} td.text {{ text-align: left; }} td.flag {{ background: #fff0f0; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{fact_rows}</table>
{body}
</body></html>
"""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    return path


def table(rows: list[dict], digits: int = 3) -> str:
    """An escaped HTML table of dictionaries (numbers rounded)."""
    if not rows:
        return "<p>no rows</p>"
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value) -> str:
        text = f"{value:.{digits}f}" if isinstance(value, float) else ("" if value is None else str(value))
        return f"<td>{html.escape(text)}</td>"

    header = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(cell(row.get(column)) for column in columns) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def warning_banner(headline: str, text: str) -> str:
    """A red banner at the top of a page (both parts escaped here)."""
    return f'<p class="flag banner">⚠ {html.escape(headline)}: {html.escape(text)}.</p>'


def cv_warnings(result: dict, reference: str = "kmer_1_4") -> list[tuple[str, str]]:
    """(headline, text) of every reason the cross-validated model is not to be trusted; empty when none.

    A model that does not beat the baseline's mean MCC over folds, one no better than chance, and
    collapsed folds are each named: a page that shows bars and tables and no verdict reads as a win.
    """
    summary, warnings = result["summary"], []
    model, baseline = summary["test_mcc"], summary.get(f"{reference}_test_mcc")
    figure = f"mean MCC {model['mean']:.3f} ± {model['sd']:.3f}"
    if baseline is None:
        warnings.append(("NO BASELINE", f"{figure}, with no 1–4-mer baseline to compare against (the data has "
                                        "no 'feature' column)"))
    elif not model["mean"] > baseline["mean"]:
        warnings.append(("DOES NOT BEAT THE BASELINE",
                         f"{figure} against the 1–4-mer logistic regression's {baseline['mean']:.3f} ± "
                         f"{baseline['sd']:.3f}: it has learnt nothing a k-mer count could not tell"))
    if not model["mean"] > 0:
        warnings.append(("NO BETTER THAN CHANCE", f"{figure}; MCC 0 is a constant or random predictor"))
    collapsed = result.get("collapsed_folds") or []
    if collapsed:
        reasons = sorted({row["collapsed"] for row in result["folds"] if row["collapsed"]})
        warnings.append(("COLLAPSED", f"{len(collapsed)} of {result['k']} folds ({', '.join(map(str, collapsed))}): "
                         + "; ".join(reasons)))
    return warnings


def _epoch_choice(result: dict) -> str:
    """The epoch choice: which epoch, on what, and the mean held-out figure after every epoch."""
    from genomenlp.components.training.epoch_choice import describe_choice

    choice = result.get("epoch_choice")
    if not choice:
        return ("<h2>Epoch</h2><p>No epoch was validated in every fold: each fold's figures are those of the "
                "weights it kept.</p>")
    rows = [{"epoch": f"{epoch} (chosen)" if epoch == choice["chosen_epoch"] else str(epoch),
             f"held-out {choice['metric']} mean": mean, "sd": sd}
            for epoch, mean, sd in zip(choice["epochs"], choice["mean"], choice["sd"], strict=True)]
    chosen = html.escape(describe_choice(choice, result.get("held_out_rows")))
    return (f"<h2>Epoch</h2><p>The figures above and per fold are after {chosen}; the final model trains on all "
            f"training rows with the same schedule and stops there.</p>{table(rows)}")


def _fold_table(rows: list[dict], reference: str = "kmer_1_4") -> str:
    """One compact row per fold: the model's figures, then each baseline's, so all fit a 1280-px window."""
    baselines = [name for name in ("kmer_1_4", "gc_content") if f"{name}_test_mcc" in rows[0]]
    short = {"kmer_1_4": "1–4-mer", "gc_content": "GC"}
    columns = [("fold", "fold", None), ("rows train / test", None, None), ("epoch", "epoch", None),
               *((f"model {label}", f"test_{key}", None) for key, label in
                 (("mcc", "MCC"), ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("f1", "F1"), ("accuracy", "acc."))),
               *((f"{short[name]} {label}", f"{name}_test_{key}", "baseline") for name in baselines
                 for key, label in (("mcc", "MCC"), ("roc_auc", "ROC-AUC"), ("f1", "F1"))),
               ("collapsed", "collapsed", None)]
    header = "".join(f'<th{" class=baseline" if kind else ""}>{html.escape(title)}</th>'
                     for title, _, kind in columns)

    def cell(row: dict, title: str, key: str | None, kind: str | None) -> str:
        if key is None:
            text = f"{row['train_rows']} / {row['test_rows']}"
        elif key == "collapsed":
            text = "yes" if row.get("collapsed") else ""
        else:
            value = row.get(key)
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
        flagged = ' class="flag"' if key == "test_mcc" and reference and row.get(f"{reference}_test_mcc") is not None \
            and not row["test_mcc"] > row[f"{reference}_test_mcc"] else (" class=baseline" if kind else "")
        return f"<td{flagged}>{html.escape(text)}</td>"

    body = "".join("<tr>" + "".join(cell(row, *column) for column in columns) + "</tr>" for row in rows)
    return f'<table class="folds"><tr>{header}</tr>{body}</table>'


def write_cv_report(path: Path, result: dict, figures: list[Path]) -> Path:
    """Cross-validation page: a verdict against the k-mer baseline, mean ± sd, per-fold table, figures.

    Args:
        path: The HTML file.
        result: The content of ``cv_metrics.json``.
        figures: The fold plot, the pooled confusion matrix.
    """
    summary = result["summary"]
    lines = []
    for key in ("test_mcc", "test_roc_auc", "test_f1"):
        model, baseline = summary[key], summary.get(f"kmer_1_4_{key}")
        line = {"metric": key.removeprefix("test_"), "model mean": model["mean"], "model sd": model["sd"]}
        if baseline:
            line.update({"1–4-mer baseline mean": baseline["mean"], "baseline sd": baseline["sd"],
                         "lead": model["mean"] - baseline["mean"]})
        lines.append(line)
    warnings = cv_warnings(result)
    verdict = "".join(warning_banner(*warning) for warning in warnings)
    if not warnings:
        leads = [row["test_mcc"] - row["kmer_1_4_test_mcc"] for row in result["folds"]]
        verdict = (f'<p class="ok">The model beats the 1–4-mer baseline on mean MCC over {result["k"]} folds, '
                   f"by {sum(leads) / len(leads):.3f} (ahead in {sum(lead > 0 for lead in leads)} of "
                   f"{len(leads)} folds).</p>")
    body = (f"{verdict}<h2>Mean ± sd over folds</h2>{table(lines)}{_epoch_choice(result)}"
            f"<h2>Per fold</h2>{_fold_table(result['folds'])}"
            f"<h2>Figures</h2>{''.join(_image(figure) for figure in figures)}")
    facts = {"folds": result["k"], "seed": result["seed"], "model": result["model"], "training": result["training"],
             **{name.removesuffix("_name"): value for name, value in (result.get("tracking") or {}).items()}}
    return write_page(path, f"Cross-validation, {result['k']} folds", facts, body)


def write_sweep_report(path: Path, result: dict, figure: Path | None) -> Path:
    """Sweep page: every trial's state, parameters and metric; the best trial's settings."""
    best = table([{"setting": k, "value": v} for k, v in result["best_values"].items()])
    body = f"<h2>Best trial</h2>{best}<h2>Trials</h2>{table(result['trials'], digits=6)}"
    if result.get("collapse_advice"):
        body = f'<p class="flag">⚠ {html.escape(result["collapse_advice"])}.</p>' + body
    if figure is not None:
        body += f"<h2>Figure</h2>{_image(figure)}"
    facts = {"best trial": result.get("best_id", result["best_trial"]),
             result["metric"]: f"{result['best_value']:.4f}", "trials": len(result["trials"]),
             "collapsed trials (never chosen)": result.get("collapsed", 0),
             **{name.removesuffix("_name"): value for name, value in (result["summary"].get("tracking") or {}).items()}}
    return write_page(path, "Hyperparameter search", facts, body)
