"""The Dockerfile without a Docker engine: variants, non-root user, and the Makefile's install steps."""

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from components.katib.experiment import IMAGE_UID

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.strip().startswith("#") and not current:
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def pip_steps(commands: list[str]) -> list[list[str]]:
    """Each ``pip install`` with what differs by design removed: quietness, editable mode, test
    extras, and the variant's index (a shell variable)."""
    steps = []
    for command in commands:
        words = shlex.split(command)
        if len(words) < 2 or Path(words[0]).name != "pip" or words[1] != "install":
            continue
        kept = ["pip"] + [w for w in words[1:] if w not in ("--quiet", "-q", "-e") and not w.startswith("$")]
        steps.append(["." if w == ".[test]" else w for w in kept])
    return steps


def docker_install_run() -> str:
    return next(args for kind, args in instructions() if kind == "RUN" and "pip install" in args)


def test_install_steps_are_the_makefiles():
    makefile = (ROOT / "Makefile").read_text()
    recipe = [line.strip() for line in makefile.split("$(STAMP):", 1)[1].splitlines()[1:] if line.startswith("\t")]
    docker = [part.strip() for part in docker_install_run().split("&&")]
    assert pip_steps(docker) == pip_steps(recipe)
    assert ["pip", "install", "torch==2.13.0"] in pip_steps(docker)
    assert ["pip", "install", "-c", "constraints.txt", "."] in pip_steps(docker)


def test_torch_pin_matches_the_project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    assert re.search(r"^torch==2\.13\.0$", (ROOT / "constraints.txt").read_text(), re.M)


@pytest.mark.parametrize("variant, index",
                         [("cpu", "--index-url https://download.pytorch.org/whl/cpu"), ("cuda", None)])
def test_variant_argument_picks_where_torch_comes_from(variant, index):
    args = dict(re.match(r"(\w+)=(\S+)", a).groups() for kind, a in instructions() if kind == "ARG" and "=" in a)
    assert args["VARIANT"] == "cpu"
    # Run the RUN line's shell with pip replaced by echo: the case statement is exercised as written.
    script = docker_install_run().replace("pip install", "echo pip install")
    env = {"PATH": os.environ["PATH"], "VARIANT": variant, "TORCH_CPU_INDEX": args["TORCH_CPU_INDEX"]}
    out = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    torch_line = next(line for line in out.splitlines() if "torch==" in line)
    assert torch_line == " ".join(filter(None, ["pip install", index, "torch==2.13.0"]))


def test_unknown_variant_fails_the_build():
    script = docker_install_run().replace("pip install", "echo pip install")
    result = subprocess.run(["sh", "-c", script], env={"PATH": os.environ["PATH"], "VARIANT": "rocm"},
                            capture_output=True, text=True)
    assert result.returncode != 0 and "VARIANT must be cpu or cuda" in result.stderr


def test_runs_as_a_numeric_non_root_user():
    users = [args for kind, args in instructions() if kind == "USER"]
    assert users, "no USER instruction: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert int(uid) == IMAGE_UID  # what the Katib trial template asks for
    assert f"--uid {IMAGE_UID}" in next(args for kind, args in instructions() if kind == "RUN" and "useradd" in args)


def test_base_image_and_entry_points():
    kinds = [kind for kind, _ in instructions()]
    assert kinds[0] == "FROM" and instructions()[0][1].startswith("python:3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=3.11")
    # Katib and Kubeflow set the container command; an ENTRYPOINT would swallow it.
    assert "ENTRYPOINT" not in kinds
    assert {"train", "sweep"} <= set(project["scripts"])
    copied = " ".join(args for kind, args in instructions() if kind == "COPY")
    for package in ("components", "steps", "pipelines", "constraints.txt", "pyproject.toml"):
        assert package in copied
