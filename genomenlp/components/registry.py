"""Model registry rules that need no registry: reference parsing and the promotion decision.

The ZenML layer stores versions and stages; what counts as a reference and which version
deserves ``production`` is decided here, as plain functions with unit tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genomenlp.components.errors import InputError

PRODUCTION = "production"
# Metadata keys of a model version that feed the promotion rule.
CV_SCORE = "cv_test_mcc_mean"
TEST_SCORE = "test_mcc"
BASELINE_SCORE = "kmer_1_4_test_mcc"
# True when the run's validation predictions collapsed to one class: never a production candidate.
COLLAPSED = "collapsed"
STAGES = ("staging", "production", "latest", "archived")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class RegistryReference:
    """``NAME``, ``NAME@VERSION`` or ``NAME@STAGE`` (after the ``registry:`` prefix).

    Attributes:
        name: The registered model.
        version: A version number or stage; ``None`` means the latest version.
    """

    name: str
    version: str | None = None


def parse_reference(text: str) -> RegistryReference:
    """Parse the part of ``registry:NAME[@VERSION|@STAGE]`` after the colon."""
    name, _, version = text.partition("@")
    if not _NAME.match(name):
        raise InputError(f"registry:{text}", "model name must be letters, digits, '_', '.' or '-'")
    if version and not (version.isdigit() or version in STAGES):
        raise InputError(f"registry:{text}", f"version must be a number or one of {', '.join(STAGES)}")
    return RegistryReference(name, version or None)


@dataclass(frozen=True)
class Candidate:
    """A registered version as the promotion rule sees it.

    Attributes:
        version: Version number.
        score: Cross-validated MCC (mean over folds) when known, else test MCC.
        baseline: The k-mer baseline's MCC on the same data, when known.
        collapsed: The model collapsed to one class (or chance F1) on validation.
    """

    version: int
    score: float | None
    baseline: float | None
    collapsed: bool = False


def choose_production(candidates: list[Candidate], current: int | None = None, margin: float = 0.0) -> int | None:
    """The version that should hold ``production``, or ``None`` when no version qualifies.

    A version qualifies when its score is known and beats its k-mer baseline by more than
    ``margin`` and did not collapse (a version without a known baseline never qualifies: it has shown nothing). The best
    qualifying score wins, the newer version on ties; the current production version keeps its
    stage unless another qualifying version scores strictly higher.
    """
    qualifying = [c for c in candidates if c.score is not None and c.baseline is not None and not c.collapsed
                  and c.score > c.baseline + margin]
    if not qualifying:
        return None
    best = max(qualifying, key=lambda c: (c.score, c.version))
    holder = next((c for c in qualifying if c.version == current), None)
    if holder is not None and holder.score >= best.score:
        return holder.version
    return best.version


def verdict(candidate: Candidate, margin: float = 0.0) -> str:
    """Why a version does or does not qualify for ``production`` (see :func:`choose_production`)."""
    if candidate.collapsed:
        return "collapsed: it predicts one class, never promoted"
    if candidate.score is None:
        return "no test or cross-validated MCC recorded"
    if candidate.baseline is None:
        return f"MCC {candidate.score:.3f}, no k-mer baseline recorded to beat"
    if candidate.score > candidate.baseline + margin:
        return f"MCC {candidate.score:.3f} beats its k-mer baseline {candidate.baseline:.3f}"
    return f"MCC {candidate.score:.3f} does not beat its k-mer baseline {candidate.baseline:.3f}"


def missing_stage_message(name: str, stage: str, candidates: list[Candidate]) -> str:
    """Why no version of ``name`` holds ``stage``, which versions exist, and the command that promotes one."""
    if not candidates:
        return f"no such model version: {name} has no versions yet (train, sweep or a training pipeline registers one)"
    listed = "; ".join(f"{c.version} ({verdict(c)})" for c in sorted(candidates, key=lambda c: c.version))
    pick = choose_production(candidates) or max(c.version for c in candidates)
    return (f"no such model version: no version of {name} holds the {stage} stage. Versions: {listed}. A version "
            f"is promoted only by the training pipeline's promote step and only when it beats its k-mer baseline "
            f"(train and sweep register without promoting); promote one by hand with: "
            f"genomenlp-pipeline models promote {name} {pick}")


def version_metadata(summary: dict, cv_result: dict | None = None) -> dict:
    """Flat scalar metadata of a model version: metrics, baselines (``kmer_1_4_test_mcc``), CV means.

    Args:
        summary: A training run's ``metrics.json`` content.
        cv_result: A cross-validation's ``cv_metrics.json`` content, when there is one.
    """
    baselines = {f"{name}_{key}": value for name, figures in (summary.get("baselines") or {}).items()
                 for key, value in figures.items()}
    flat = {key: value for key, value in {**summary, **baselines}.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}
    if cv_result:
        flat.update(cv_metadata(cv_result))
    # The original's tracker names (entity, project, group) travel as plain string metadata.
    flat.update({key: str(value) for key, value in (summary.get("tracking") or {}).items()})
    # 1/0 rather than a bool: version metadata stays numeric (ZenML plots and compares numbers).
    flat[COLLAPSED] = int(bool(summary.get("collapsed")))
    return flat


def version_tags(summary: dict) -> list[str]:
    """Tags of a model version: ``entity:TEAM``, ``project:NAME``, ``group:NAME`` from the tracker flags."""
    return [f"{key.removesuffix('_name')}:{value}" for key, value in (summary.get("tracking") or {}).items()]


def cv_metadata(cv_result: dict) -> dict:
    """``cv_<metric>_mean`` and ``cv_<metric>_sd`` of a cross-validation."""
    return {f"cv_{name}_{stat}": value
            for name, figures in cv_result["summary"].items() for stat, value in figures.items()}
