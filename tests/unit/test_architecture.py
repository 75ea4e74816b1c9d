"""Layering: ``genomenlp/components/`` is free of ZenML; one step per ``genomenlp/steps/`` module, named as it."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest
from zenml.steps import BaseStep

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPONENT_FILES = sorted((REPO_ROOT / "genomenlp" / "components").rglob("*.py"))
STEP_FILES = sorted(p for p in (REPO_ROOT / "genomenlp" / "steps").glob("*.py") if p.name != "__init__.py")


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from … import`` names in the file, lazy imports included."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_components_exist():
    assert len(COMPONENT_FILES) > 5


@pytest.mark.parametrize("path", COMPONENT_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_components_never_import_zenml(path):
    offending = {m for m in _imported_modules(path) if m == "zenml" or m.startswith("zenml.")}
    assert not offending, f"{path.relative_to(REPO_ROOT)} imports {sorted(offending)}"


def test_import_finder_sees_lazy_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from zenml.client import Client\n    import zenml\n")
    assert _imported_modules(sample) == {"zenml.client", "zenml"}


@pytest.mark.parametrize("path", STEP_FILES, ids=lambda p: p.name)
def test_each_step_module_holds_one_step_named_as_the_module(path):
    module = importlib.import_module(f"genomenlp.steps.{path.stem}")
    defined_here = {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, BaseStep) and value.entrypoint.__module__ == module.__name__
    }
    assert list(defined_here) == [path.stem]
    assert defined_here[path.stem].name == path.stem


def test_steps_package_exports_no_steps():
    package = importlib.import_module("genomenlp.steps")
    assert not [name for name, value in vars(package).items() if isinstance(value, BaseStep)]


PIPELINE_FILES = sorted(
    p
    for p in (REPO_ROOT / "genomenlp" / "pipelines").glob("*.py")
    if "@pipeline" in p.read_text(encoding="utf-8")
)
# Pipelines are wiring: steps, configs and names only; no stores, randomness, I/O or error handling.
WIRING_IMPORTS = ("zenml", "genomenlp.components.configs", "genomenlp.components.names", "genomenlp.steps.",
                  "genomenlp.pipelines.")


def test_pipelines_exist():
    assert PIPELINE_FILES


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: p.name)
def test_pipeline_modules_are_pure_wiring(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    foreign = {m for m in _imported_modules(path) if not m.startswith(WIRING_IMPORTS)}
    assert not foreign, f"{path.name} imports {sorted(foreign)}"
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Try)], (
        f"{path.name} has try/except"
    )


# Layers from the bottom up: a module may import its own layer and those below, never one above.
LAYERS = ("components", "steps", "pipelines", "platform")
PROJECT_FILES = {
    ".".join(path.with_suffix("").parts).removesuffix(".__init__"): path
    for layer in LAYERS
    for path in (REPO_ROOT / "genomenlp" / layer).rglob("*.py")
    for path in [path.relative_to(REPO_ROOT)]
}


def _layer(module: str) -> int:
    """The layer of ``genomenlp.<layer>.…``."""
    return LAYERS.index(module.split(".")[1])


def _project_imports(name: str) -> set[str]:
    """Project modules that ``name`` imports (lazy imports and ``from package import module`` included)."""
    found = set()
    for module in _imported_modules(REPO_ROOT / PROJECT_FILES[name]):
        # `from a.b import c` names a.b, and a.b.c when c is a module.
        candidates = {module, *(f"{module}.{item}" for item in _imported_names(name, module))}
        found |= {candidate for candidate in candidates if candidate in PROJECT_FILES}
    return found - {name}


def _imported_names(name: str, module: str) -> set[str]:
    tree = ast.parse((REPO_ROOT / PROJECT_FILES[name]).read_text(encoding="utf-8"))
    return {alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == module for alias in node.names}


@pytest.mark.parametrize("name", sorted(PROJECT_FILES))
def test_imports_only_point_down(name):
    level = _layer(name)
    upward = {module for module in _project_imports(name) if _layer(module) > level}
    assert not upward, f"{name} imports a higher layer: {sorted(upward)}"


def test_no_import_cycle_even_through_lazy_imports():
    graph = {name: _project_imports(name) for name in PROJECT_FILES}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" → ".join(cycle) for cycle in cycles)


def test_the_cycle_finder_sees_a_cycle(tmp_path, monkeypatch):
    for name, body in {"a": "import b\n", "b": "def f():\n    from a import x\n"}.items():
        (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_FILES", {"a": Path("a.py"), "b": Path("b.py")})
    assert _project_imports("a") == {"b"} and _project_imports("b") == {"a"}
