"""The package installed from a wheel, as the Dockerfile's ``pip install .`` does: nothing from the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_an_installed_wheel_ships_its_configs_and_never_points_into_site_packages(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources it builds.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md", "components", "steps", "pipelines"):
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy
        copy(REPO_ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                                 if (REPO_ROOT / name).is_dir() else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("genomenlp-*.whl")
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    workdir = tmp_path / "app"
    workdir.mkdir()
    probe = (
        "import pipelines, pipelines.cli as cli, pipelines.cluster as cluster\n"
        "from pipelines.stacks import load_stack_config\n"
        "print(pipelines.__file__); print(cli.PROJECT_ROOT)\n"
        "print(load_stack_config(cluster.DEFAULT_STACK_CONFIG).name)\n"
        "print(sorted(p.name for p in cli.CONFIG_DIR.glob('*_kubeflow.yaml')))\n"
    )
    # The installed copy comes first on the path, ahead of the checkout's editable install.
    result = subprocess.run([sys.executable, "-c", probe], cwd=workdir, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(target)})
    assert result.returncode == 0, result.stderr
    module, root, stack, configs = result.stdout.splitlines()[-4:]
    assert module.startswith(str(target))
    assert root == str(workdir)
    assert stack == "kubeflow"
    assert "comparison_pipeline_kubeflow.yaml" in configs and "training_pipeline_kubeflow.yaml" in configs
