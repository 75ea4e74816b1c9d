"""The folder a Katib sweep leaves: its best settings and a report page (the trials ran on the cluster)."""

from __future__ import annotations

import json
from pathlib import Path

from genomenlp.components.search.local import BEST_FILE
from genomenlp.components.training.report import table, write_page
from genomenlp.components.training.run import REPORT_FILE


def write_katib_summary(folder: Path, hyperparameters: dict, rows: list[dict]) -> Path:
    """Write ``hyperparams.json`` and ``report.html`` of a finished Katib Experiment into ``folder``.

    Args:
        folder: The sweep folder to create.
        hyperparameters: The best trial's settings.
        rows: The Experiment's summary rows (name, best trial, objective value, trial counts).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BEST_FILE).write_text(json.dumps(hyperparameters, indent=2) + "\n", encoding="utf-8")
    best = table([{"setting": key, "value": value} for key, value in hyperparameters.items()])
    facts = {"experiment": rows[0].get("experiment", "") if rows else ""}
    return write_page(folder / REPORT_FILE, "Hyperparameter search (Katib)", facts,
                      f"<h2>Best trial</h2>{best}<h2>Experiment</h2>{table(rows, digits=6)}")
