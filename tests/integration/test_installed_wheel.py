"""The package installed from a wheel, as the Dockerfile's ``pip install .`` does: nothing from the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """A wheel built with ``pip wheel`` and installed into a fresh virtualenv: (wheel, venv)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources it builds.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for name in ("genomenlp", "data"):
        shutil.copytree(REPO_ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("genomenlp-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # The dependencies come from this environment's site-packages, read as a plain path: its .pth
    # files (the checkout's editable install among them) are not processed, so only the wheel's
    # genomenlp can be imported.
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                                "--no-deps", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    return wheel, venv


def test_the_wheel_holds_the_package_its_configs_and_the_bundled_data(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"genomenlp/platform/cli.py", "genomenlp/pipelines/configs/stacks/kubeflow.yaml",
            "genomenlp/pipelines/configs/dataset_pipeline.yaml", "genomenlp/data/ecoli_promoter/promoter.fasta.gz",
            "genomenlp/data/ecoli_genome/GCF_000005845.2_ASM584v2_genomic.fna.gz"} <= names
    # One namespace: nothing installs as a top-level components/steps/pipelines package.
    assert {name.split("/")[0] for name in names if not name.startswith("genomenlp-")} == {"genomenlp"}


def test_an_installed_wheel_ships_its_configs_and_never_points_into_site_packages(installed, tmp_path):
    _, venv = installed
    workdir = tmp_path / "app"
    workdir.mkdir()
    probe = (
        "import genomenlp.pipelines as pipelines, genomenlp.platform.cli as cli\n"
        "import genomenlp.platform.cluster as cluster\n"
        "from genomenlp.platform.stacks import load_stack_config\n"
        "print(pipelines.__file__); print(cli.PROJECT_ROOT)\n"
        "print(load_stack_config(cluster.DEFAULT_STACK_CONFIG).name)\n"
        "print(sorted(p.name for p in cli.CONFIG_DIR.glob('*_kubeflow.yaml')))\n"
    )
    result = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=workdir, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    module, root, stack, configs = result.stdout.splitlines()[-4:]
    assert module.startswith(str(venv))
    assert root == str(workdir)
    assert stack == "kubeflow"
    assert "comparison_pipeline_kubeflow.yaml" in configs and "training_pipeline_kubeflow.yaml" in configs


def test_the_installed_command_runs_the_dataset_pipeline_from_an_empty_folder(installed, tmp_path):
    _, venv = installed
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {**os.environ, "ZENML_CONFIG_PATH": str(tmp_path / "zenml"), "ZENML_ANALYTICS_OPT_IN": "false"}
    env.pop("ZENML_REPOSITORY_PATH", None)
    result = subprocess.run([str(venv / "bin" / "genomenlp-pipeline"), "dataset"], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # The default config's output folder, made from the bundled data shipped in the wheel.
    dataset = workdir / "runs" / "dataset"
    assert {"train.parquet", "valid.parquet", "test.parquet", "manifest.json"} <= {p.name for p in dataset.iterdir()}
    assert not (workdir / "data").exists()
