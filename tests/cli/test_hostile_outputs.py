"""Outputs are never silently replaced, --overwrite is safe, leftovers of killed runs are cleaned; conflicts."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from genomenlp.components.cli import create_dataset
from genomenlp.components.storage import COMMIT_MARKER

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def inputs(tmp_path):
    from genomenlp.components.tokenisers import build_kmer_tokenizer

    rng = random.Random(0)
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.fa"
        path.write_text("".join(f">{name}{i}\n{''.join(rng.choices('ACGT', k=60))}\n" for i in range(30)))
        paths.append(str(path))
    tokens = tmp_path / "k3.json"
    tokens.write_text(build_kmer_tokenizer(3).to_json())
    return [*paths, str(tokens)]


def run(inputs, out, capsys, *extra) -> tuple[int, str]:
    code = create_dataset.main([*inputs, "-o", str(out), "--no_progress", *extra])
    return code, capsys.readouterr().err


def one_line(error: str) -> bool:
    return "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_existing_output_kept_without_overwrite_and_empty_folder_accepted(inputs, tmp_path, capsys):
    out = tmp_path / "ds"
    out.mkdir()
    assert run(inputs, out, capsys)[0] == 0  # an empty folder is not the user's data
    assert (out / COMMIT_MARKER).exists() and (out / "manifest.json").exists()
    before = (out / "manifest.json").read_text()
    code, error = run(inputs, out, capsys, "--seed", "3")
    assert code == 2 and one_line(error) and "--overwrite" in error
    assert (out / "manifest.json").read_text() == before


@pytest.mark.parametrize("kind", ["file", "symlink", "dot"])
def test_overwrite_of_file_symlink_or_current_folder_is_refused_with_a_reason(inputs, tmp_path, capsys, monkeypatch,
                                                                               kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("precious")
        reason = "is a file"
    elif kind == "symlink":
        (tmp_path / "real").mkdir()
        (tmp_path / "real" / "x").write_text("precious")
        target.symlink_to(tmp_path / "real")
        reason = "symbolic link"
    else:
        target.mkdir()
        (target / "x").write_text("precious")
        monkeypatch.chdir(target)
        target = Path(".")
        reason = "current folder"
    code, error = run(inputs, target, capsys, "--overwrite")
    assert code == 2 and one_line(error) and reason in error, error
    assert not [p for p in tmp_path.rglob(".*") if p.name.endswith((".old", ".tmp"))]
    if kind == "file":
        assert (tmp_path / "target").read_text() == "precious"
    else:
        assert (tmp_path / "real" / "x" if kind == "symlink" else tmp_path / "target" / "x").read_text() == "precious"


def test_overwrite_replaces_a_folder_without_leftovers(inputs, tmp_path, capsys):
    out = tmp_path / "ds"
    assert run(inputs, out, capsys)[0] == 0
    assert run(inputs, out, capsys, "--overwrite", "--seed", "5")[0] == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_leftovers_of_a_killed_run_are_cleaned_by_the_next(inputs, tmp_path, capsys):
    out = tmp_path / "ds"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    leftovers = [tmp_path / ".ds.1a2b3c4d.tmp", tmp_path / f".ds.{dead}.5e6f7a8b.tmp",
                 tmp_path / f".ds.{dead}.0badcafe.old"]
    for folder in leftovers:
        folder.mkdir()
        (folder / "train.parquet").write_bytes(b"x" * 1000)
    unrelated = tmp_path / ".other.1a2b3c4d.tmp"
    unrelated.mkdir()
    assert run(inputs, out, capsys)[0] == 0
    assert not any(folder.exists() for folder in leftovers)
    assert unrelated.exists()


def test_sigkill_during_creation_leaves_a_hidden_folder_that_the_next_run_removes(inputs, tmp_path, capsys):
    out = tmp_path / "ds"
    script = ("import os, signal, sys\n"
              "import genomenlp.components.dataset.build as build\n"
              "original = build.finalise_split_formats\n"
              "def killed(*args, **kwargs):\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "build.finalise_split_formats = killed\n"
              "from genomenlp.components.cli import create_dataset\n"
              "create_dataset.main(sys.argv[1:])\n")
    done = subprocess.run([sys.executable, "-c", script, *inputs, "-o", str(out), "--no_progress"], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == -9, done.stderr
    assert [p.name for p in tmp_path.glob(".ds.*.tmp")]
    assert not out.exists()
    assert run(inputs, out, capsys)[0] == 0
    assert not list(tmp_path.glob(".ds.*"))


def test_sequences_under_two_labels_refused_unless_allowed(inputs, tmp_path, capsys):
    same = [inputs[0], inputs[0], inputs[2]]
    code, error = run(same, tmp_path / "ds", capsys, "--labels", "x", "y")
    assert code == 2 and one_line(error) and "30 records" not in error and "--allow_conflicts" in error
    assert "60 records" in error and "record 1 of" in error
    code = create_dataset.main([*same, "-o", str(tmp_path / "ds"), "--no_progress", "--labels", "x", "y",
                                "--allow_conflicts"])
    assert code == 0
    assert "kept 60 records" in capsys.readouterr().out
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["conflicting_records"] == 60


def test_efbig_is_one_line(inputs, tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    done = subprocess.run([sys.executable, "-m", "genomenlp.components.cli.create_dataset", *inputs, "-o",
                           str(tmp_path / "ds"), "--no_progress"], cwd=REPO, capture_output=True, text=True,
                          preexec_fn=limit)
    assert done.returncode == 2, done.stderr
    assert one_line(done.stderr) and "ulimit -f" in done.stderr
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds.*"))


def test_sigterm_unwinds_and_removes_the_staging_folder(inputs, tmp_path):
    out = tmp_path / "ds"
    script = ("import os, signal, sys\n"
              "import genomenlp.components.dataset.build as build\n"
              "def terminated(*args, **kwargs):\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "build.finalise_split_formats = terminated\n"
              "from genomenlp.components.cli import create_dataset\n"
              "sys.exit(create_dataset.main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, *inputs, "-o", str(out), "--no_progress"], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 143, done.stderr
    assert "interrupted" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".ds.*"))
