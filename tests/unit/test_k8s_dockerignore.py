""".dockerignore, read with Docker's own matching rules: no local state or credentials in the build context,
and everything the Dockerfile copies still in it.

The matcher follows moby/patternmatcher: patterns are cleaned paths relative to the context root, ``*`` and
``?`` stay within one path segment, ``**`` spans segments, a pattern that matches a parent folder matches
everything below it, ``!`` re-includes, and the last matching pattern wins.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


def patterns() -> list[tuple[bool, re.Pattern]]:
    """(re-include?, regex) per pattern line of .dockerignore, in order."""
    found = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        cleaned = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
        found.append((negated, _regex(cleaned)))
    return found


def excluded(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative to the repository root) out of the build context."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for negated, regex in patterns():
        if any(regex.match(candidate) for candidate in candidates):
            result = not negated
    return result


@pytest.mark.parametrize("path", [
    ".venv/bin/python", ".venv/lib/python3.11/site-packages/torch/__init__.py", "runs/quick/train/metrics.json",
    ".git/HEAD", ".git", ".zen/config.yaml", "build/kubeflow/training_pipeline.yaml", "dist/genomenlp-0.1.0.whl",
    "k8s/credentials/s3-credentials.env", "k8s/s3-credentials.env", ".env", "local.env",
    "genomenlp/pipelines/configs/a.env", "genomenlp/components/__pycache__/errors.cpython-311.pyc",
    "genomenlp/components/errors.pyc", ".pytest_cache/v/cache/nodeids",
    "tests/.pytest_cache/README.md", ".ruff_cache/content", "genomenlp.egg-info/PKG-INFO", "tests/conftest.py",
    "sweep_out/experiment.yaml", "data/.DS_Store",
])
def test_local_state_and_credentials_stay_out_of_the_build_context(path):
    assert excluded(path), f"{path} would enter the Docker build context"


def copied_sources() -> list[str]:
    """The source paths of every COPY in the Dockerfile."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            words = [w for w in shlex.split(line)[1:] if not w.startswith("--")]
            sources += [posixpath.normpath(w) for w in words[:-1]]
    return sources


def test_everything_the_dockerfile_copies_stays_in_the_build_context():
    sources = copied_sources()
    assert {"pyproject.toml", "constraints.txt", "genomenlp", "data"} <= set(sources)
    if shutil.which("git") and (ROOT / ".git").exists():
        files = subprocess.run(["git", "ls-files", "--", *sources], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split()
    else:
        files = [str(p.relative_to(ROOT)) for s in sources for p in [ROOT / s, *(ROOT / s).rglob("*")] if p.is_file()]
    assert len(files) > len(sources)
    # The packaged YAMLs, the bundled data and the code are all needed at build or run time.
    missing = [f for f in files if excluded(f)]
    assert not missing, f"the Dockerfile copies these but .dockerignore leaves them out: {missing}"


def test_matcher_follows_dockers_rules():
    # Last match wins; a folder's pattern covers its contents; * stays within a segment.
    assert _regex("*.env").match("a.env") and not _regex("*.env").match("k8s/a.env")
    assert _regex("**/*.env").match("a.env") and _regex("**/*.env").match("k8s/credentials/a.env")
    assert _regex("k8s/**").match("k8s/a/b")
