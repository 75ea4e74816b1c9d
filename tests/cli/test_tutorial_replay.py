"""The original tutorial's command lines, replayed in order on tiny data with the tutorial's own JSON files.

Only two kinds of change are made to a line (both listed in SUBSTITUTIONS and APPENDED below):
paths (the tutorial's placeholders for files this project names differently or makes later), and
flags appended to keep the run small (a tiny model, no progress bars, fewer integration steps).
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from genomenlp.components.cli import create_dataset, cross_validate, fit_powerlaw, interpret, sweep, tokenise, train

REPO = Path(__file__).resolve().parents[2]
COMMANDS = REPO / "tests" / "data" / "tutorial_commands.txt"
TUTORIAL = REPO / "data" / "tutorial"
MAINS = {"tokenise_bio": tokenise.main, "create_dataset_bio": create_dataset.main, "sweep": sweep.main,
         "train": train.main, "cross_validate": cross_validate.main, "fit_powerlaw": fit_powerlaw.main,
         "interpret": interpret.main}
TINY_MODEL = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
              "--max_positions", "64"]
APPENDED = {
    "tokenise_bio": ["--no_progress"],
    "create_dataset_bio": ["--no_progress"],
    "sweep": [*TINY_MODEL, "--no_progress"],
    "train": [*TINY_MODEL, "--no_progress"],
    "cross_validate": [*TINY_MODEL, "--no_progress"],
    # The tiny model's weight matrices have 16 eigenvalues, below the default minimum for a fit.
    "fit_powerlaw": ["--min_evals", "8"],
    "interpret": ["--no_progress", "-n", "8"],
}
EXPECTED_PROGRAMS = ["tokenise_bio", "create_dataset_bio", "sweep", "train", "cross_validate", "fit_powerlaw",
                     "interpret", "gzip", "interpret"]


def tutorial_lines() -> list[str]:
    """The command lines of the copied tutorial: comments dropped, backslash continuations joined."""
    lines, current = [], ""
    for raw in COMMANDS.read_text().splitlines():
        if raw.startswith("#") or (not raw.strip() and not current):
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return lines


def write_gc_at_fasta(path: Path, rich: str, count: int, seed: int) -> None:
    """``count`` 60-bp records, 70% drawn from ``rich`` (AT or GC): a signal a tiny model learns in two epochs."""
    other = "GC" if rich == "AT" else "AT"
    rng = random.Random(seed)
    with gzip.open(path, "wt") as handle:
        for index in range(count):
            sequence = "".join(rng.choice(rich if rng.random() < 0.7 else other) for _ in range(60))
            handle.write(f">{path.name.split('.')[0]}_{index}\n{sequence}\n")


@pytest.fixture
def tutorial_dir(tmp_path, monkeypatch):
    """A working folder as the tutorial expects: its two FASTA files (tiny here) and its hyperparams.json."""
    write_gc_at_fasta(tmp_path / "promoter.fasta.gz", "AT", 100, seed=1)
    write_gc_at_fasta(tmp_path / "non_promoter.fasta.gz", "GC", 100, seed=2)
    shutil.copy(TUTORIAL / "hyperparams.json", tmp_path / "hyperparams.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_copy_holds_the_tutorial_in_order():
    assert COMMANDS.read_text().startswith("# Source: ../shared/data/tutorial/commands.txt")
    assert [shlex.split(line)[0] for line in tutorial_lines()] == EXPECTED_PROGRAMS


def substitutions(program: str, index: int, best_run: str | None, prepared_subset: Path) -> dict[str, str]:
    """Path substitutions for one line (``index`` counts lines of the same program)."""
    if program == "sweep":
        # The tutorial's header: the spec it passes to `sweep -w` is sweep.json (its hyperparams.json is train's).
        return {"hyperparams.json": str(TUTORIAL / "sweep.json")}
    if program == "cross_validate":
        # "p9do3gzl" was the hosted tracker's id of the best sweep run; here it is the id `sweep` printed.
        return {"p9do3gzl": best_run}
    if program == "interpret" and index == 0:
        # The tutorial runs this line before the one that makes subset.fasta: give it the same records.
        return {"subset.fasta": str(prepared_subset)}
    if program == "interpret" and index == 1:
        # The first interpret line wrote model_interpret; outputs are never replaced unless asked.
        return {"model_interpret": "model_interpret_2"}
    return {}


def test_tutorial_replays_line_by_line(tutorial_dir, capsys, one_torch_thread):
    prepared_subset = tutorial_dir / "prepared_subset.fasta"
    with gzip.open(tutorial_dir / "promoter.fasta.gz", "rt") as handle:
        prepared_subset.write_text("".join(handle.readlines()[:10]))
    seen: dict[str, int] = {}
    best_run = None
    outputs = {}
    for line in tutorial_lines():
        program = shlex.split(line)[0]
        index = seen.get(program, 0)
        seen[program] = index + 1
        if program == "gzip":
            subprocess.run(line, shell=True, check=True, cwd=tutorial_dir)
            continue
        if program == "cross_validate":
            # As printed, the hosted tracker's id names nothing here: one line says what RUN could be.
            capsys.readouterr()
            assert MAINS[program](shlex.split(line)[1:] + APPENDED[program]) == 2
            error = capsys.readouterr().err
            assert "'p9do3gzl' is not a trial of sweep_out" in error and f"best {best_run}" in error
        swap = substitutions(program, index, best_run, prepared_subset)
        argv = [swap.get(word, word) for word in shlex.split(line)[1:]] + APPENDED[program]
        capsys.readouterr()
        code = MAINS[program](argv)
        printed = capsys.readouterr()
        assert code == 0, f"{line}\n{printed.err}"
        outputs[f"{program}{index}"] = printed
        if program == "sweep":
            best_line = next(text for text in printed.out.splitlines() if text.startswith("Best run "))
            best_run = best_line.split()[2]
            assert best_line.startswith(f"Best run {best_run} with eval_f1=")

    # sweep: the tutorial's learning-rate range (up to 0.1) collapses trials; they are reported and never chosen.
    sweep_out = tutorial_dir / "sweep_out"
    with open(sweep_out / "trials.csv") as handle:
        trials = {row["id"]: row for row in csv.DictReader(handle)}
    collapsed = [row for row in trials.values() if row["collapsed"]]
    assert len(trials) == 3 and collapsed and all(row["state"] == "PRUNED" for row in collapsed)
    assert trials[best_run]["state"] == "COMPLETE" and not trials[best_run]["collapsed"]
    assert f"{len(collapsed)} of 3 trials collapsed" in outputs["sweep0"].out
    assert "narrow the learning-rate range" in outputs["sweep0"].out
    assert "collapsed trials (never chosen)" in (sweep_out / "report.html").read_text()
    tags = {"entity_name": "tyagilab", "project_name": "testm3"}
    assert json.loads((sweep_out / "metrics.json").read_text())["tracking"] == {**tags, "group_name": "sweep"}

    # train: -n is noted and ignored; the tutorial's hyperparameters (lr 7.8e-5, 2 epochs) collapse on tiny data.
    assert "-n 3 is ignored" in outputs["train0"].err
    metrics = json.loads((tutorial_dir / "train_out" / "metrics.json").read_text())
    assert metrics["tracking"] == {**tags, "group_name": "train"}
    assert metrics["collapsed"] and "COLLAPSED:" in outputs["train0"].out
    assert "COLLAPSED:" in (tutorial_dir / "train_out" / "report.html").read_text()

    # cross_validate: --config_from_run resolved the printed trial id in -m sweep_out.
    assert f"hyperparameters from sweep_out/trials.json {best_run}" in outputs["cross_validate0"].out
    cv = json.loads((tutorial_dir / "cv" / "cv_metrics.json").read_text())
    assert cv["k"] == 3 and cv["tracking"] == {**tags, "group_name": "crossval"}
    best_settings = json.loads((sweep_out / "hyperparams.json").read_text())
    assert cv["training"]["learning_rate"] == pytest.approx(best_settings["learning_rate"])

    # fit_powerlaw -m, and interpret -l as display names in label-index order.
    assert (tutorial_dir / "fit" / "summary.tsv").exists()
    header = (tutorial_dir / "model_interpret" / "summary.tsv").read_text().splitlines()[0].split("\t")
    assert "p_PROMOTER" in header and "p_NON-PROMOTER" in header
    assert (tutorial_dir / "model_interpret_2" / "index.html").exists()
    assert (tutorial_dir / "subset.fasta").read_text() == prepared_subset.read_text()
