"""The benchmark scripts run end to end on their tiniest settings and write their results (no timings checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Tiniest settings of each script: they check that it runs and reports, not what it measures.
SCRIPTS = {
    "data_scaling": ["--sizes", "1", "--long_mbp", "0", "--base_records", "30", "--vocab_size", "100"],
    "predict_speed": ["--sequences", "16", "--one_at_a_time", "4", "--repeats", "1", "--threads", "1"],
    "leaky_split": ["--records", "40", "--epochs", "1", "--layers", "1", "--hidden_size", "32", "--threads", "1"],
    "pipeline_overhead": ["--records", "10", "--repeats", "1"],
    "memory_bounds": ["--mbp", "0.01", "--bomb_gib", "0.1", "--commands", "read", "create_dataset"],
    "training_throughput": ["--smoke"],
}


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.Popen, Path]]:
    """Every script started at once (they are mostly start-up cost), each with its own ``--out``."""
    root = tmp_path_factory.mktemp("benchmarks")
    processes = {}
    for name, arguments in SCRIPTS.items():
        out = root / name
        command = [sys.executable, str(REPO_ROOT / "benchmarks" / f"{name}.py"), *arguments, "--out", str(out)]
        processes[name] = (subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True), out)
    yield processes
    for process, _ in processes.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_prints_a_table_and_writes_results(launched, name):
    process, out = launched[name]
    stdout, stderr = process.communicate(timeout=900)  # a guard against hangs, not a speed check
    assert process.returncode == 0, stderr[-3000:]
    table_rows = [line for line in stdout.splitlines() if line.startswith("|")]
    assert len(table_rows) >= 3 and set(table_rows[1]) <= set("|-"), stdout[-3000:]
    assert json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text().strip()
