"""ZenML's model control plane as the registry of record: register, promote, resolve.

Decisions (what a reference means, which version deserves ``production``) live in
``genomenlp/components/registry.py``; this module only talks to ZenML.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from genomenlp.components.errors import InputError
from genomenlp.components.names import Artifacts, Models
from genomenlp.components.registry import (
    COLLAPSED,
    PRODUCTION,
    STAGES,
    Candidate,
    choose_production,
    missing_stage_message,
    parse_reference,
    promotion_figures,
    verdict,
)

MODEL_CACHE = "genomenlp_models"
COLLAPSED_TAG = "collapsed"


def register_model_folder(model_dir: str | Path, metadata: dict, name: str = Models.GENOMIC_BERT,
                          description: str = "", tags: list[str] | None = None) -> int:
    """Create a new version of ``name`` holding the model folder, its metadata and tags; return its number."""
    from zenml import Model, link_artifact_to_model, log_metadata, save_artifact
    from zenml.client import Client
    from zenml.enums import ArtifactType

    client = Client()
    try:
        client.get_model(name)
    except KeyError:
        client.create_model(name=name, description="genomicBERT sequence classifiers")
    version = client.create_model_version(model_name_or_id=name, description=description or None, tags=tags or None)
    artifact = save_artifact(data=Path(model_dir), name=Artifacts.MODEL_DIR, artifact_type=ArtifactType.MODEL)
    link_artifact_to_model(artifact_version=artifact, model=Model(name=name, version=version.number))
    log_metadata(metadata=metadata, model_name=name, model_version=str(version.number))
    return version.number


def withdraw_collapsed_version(name: str, version: int) -> None:
    """Take a collapsed run's version out of the candidates: stage ``archived``, tag ``collapsed``.

    A pipeline run's version exists from the run's start, before anyone knows the model will collapse;
    archiving withdraws it while keeping the run's artifacts and figures (deleting it would orphan them).
    """
    from zenml.client import Client
    from zenml.enums import ModelStages

    Client().update_model_version(name, str(version), stage=ModelStages.ARCHIVED, force=True,
                                  add_tags=[COLLAPSED_TAG])


def _candidates(name: str) -> tuple[list[Candidate], int | None]:
    from zenml.client import Client

    candidates, current = [], None
    for version in Client().list_model_versions(model=name, size=1000):
        metadata = version.run_metadata
        score, baseline = promotion_figures(metadata)
        candidates.append(Candidate(version.number, score, baseline, bool(metadata.get(COLLAPSED, False))))
        if version.stage == PRODUCTION:
            current = version.number
    return candidates, current


def promote_best(name: str = Models.GENOMIC_BERT, margin: float = 0.0) -> int | None:
    """Give ``production`` to the version the promotion rule picks; return it (``None``: none qualifies)."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    candidates, current = _candidates(name)
    chosen = choose_production(candidates, current, margin)
    if chosen is not None and chosen != current:
        Client().get_model_version(name, chosen).set_stage(ModelStages.PRODUCTION, force=True)
    return chosen


def production_version(name: str) -> int | None:
    """The version of ``name`` holding ``production`` (``None``: none does)."""
    return _candidates(name)[1]


def promote_version(name: str, version: int, stage: str = PRODUCTION) -> str:
    """Give ``stage`` to version ``version`` of ``name`` by hand (the previous holder loses it); describe it."""
    from zenml.client import Client

    candidates, _ = _candidates(name) if _model_exists(name) else ([], None)
    chosen = next((c for c in candidates if c.version == version), None)
    if chosen is None:
        known = ", ".join(str(c.version) for c in sorted(candidates, key=lambda c: c.version)) or "none"
        raise InputError(f"{name}@{version}", f"no such model version (versions of {name}: {known})")
    Client().get_model_version(name, version).set_stage(stage, force=True)
    return f"registry:{name}@{version} is now {stage} ({verdict(chosen)})"


def describe_versions(name: str) -> list[str]:
    """One line per version of ``name``: number, stage and why it does or does not qualify for production."""
    if not _model_exists(name):
        raise InputError(name, "no such model in the registry")
    candidates, current = _candidates(name)
    return [f"{c.version}\t{PRODUCTION if c.version == current else '-'}\t{verdict(c)}"
            for c in sorted(candidates, key=lambda c: c.version)]


def _model_exists(name: str) -> bool:
    from zenml.client import Client

    try:
        Client().get_model(name)
    except KeyError:
        return False
    return True


def resolve_registry_reference(text: str) -> str:
    """A local copy of the model folder that ``registry:NAME[@VERSION|@STAGE]`` names."""
    from zenml.client import Client

    reference = parse_reference(text)
    client = Client()
    try:
        if reference.version is None:
            version = client.get_model_version(reference.name)
        elif reference.version.isdigit():
            version = client.get_model_version(reference.name, int(reference.version))
        else:
            version = client.get_model_version(reference.name, reference.version)
    except KeyError:
        if reference.version in STAGES and reference.version != "latest":
            candidates = _candidates(reference.name)[0] if _model_exists(reference.name) else []
            raise InputError(f"registry:{text}",
                             missing_stage_message(reference.name, reference.version, candidates)) from None
        raise InputError(f"registry:{text}", "no such model version in the registry") from None
    # Only an unqualified reference can land on a collapsed version unawares (its run made it the latest).
    if not reference.version and version.run_metadata.get(COLLAPSED):
        raise InputError(f"registry:{text}", f"the latest version, {version.number}, collapsed (it predicts one "
                         f"class) and was archived; name a version (registry:{reference.name}@N) or "
                         f"registry:{reference.name}@production")
    # A training pipeline's version serves its ensemble (beside the final model alone); a command's version holds
    # a model folder; an encoder version (the pre-training pipeline's) an encoder folder.
    artifact = (version.get_artifact(Artifacts.SERVED_MODEL_DIR) or version.get_artifact(Artifacts.MODEL_DIR)
                or version.get_artifact(Artifacts.ENCODER_DIR))
    if artifact is None:
        raise InputError(f"registry:{text}", f"version {version.number} holds no {Artifacts.MODEL_DIR} "
                         f"or {Artifacts.ENCODER_DIR} artifact")
    return str(_cached_copy(artifact))


def model_cache_dir() -> Path:
    """Where registry models are kept locally: ``<ZenML config dir>/genomenlp_models/<artifact version id>``.

    Beside the store whose ids name them (``zenml status`` shows the config directory); deleting it is safe.
    """
    from zenml.utils.io_utils import get_global_config_directory

    return Path(get_global_config_directory()) / MODEL_CACHE


def _cached_copy(artifact) -> Path:
    """The artifact's folder in :func:`model_cache_dir`, fetched once (an artifact version never changes).

    ZenML's loader unpacks into a new temporary folder on every call; that folder is moved into the
    cache, so nothing is left behind in the temporary directory.
    """
    target = model_cache_dir() / str(artifact.id)
    if (target / "config.json").is_file():
        return target
    loaded = Path(artifact.load())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.move(str(loaded), staging)
    if target.exists():  # a half-written copy from an interrupted fetch
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def registered_metrics(reference: str) -> dict | None:
    """The metrics recorded with a ``registry:…`` version (``None`` for a folder reference)."""
    scheme, _, rest = str(reference).partition(":")
    if scheme != "registry":
        return None
    from zenml.client import Client

    parsed = parse_reference(rest)
    version = parsed.version
    key = int(version) if version and version.isdigit() else version
    metadata = (Client().get_model_version(parsed.name, key) if key
                else Client().get_model_version(parsed.name)).run_metadata
    return {name: metadata[name] for name in ("test_mcc", "test_roc_auc", "test_f1") if name in metadata}


def pipeline_run_settings(reference: str):
    """The settings a ZenML training-pipeline run trained its model with (``None``: no such run).

    The run's model folder records the full model and training settings; a run that stopped after its
    sweep gives the sweep's best values.
    """
    from zenml.client import Client

    from genomenlp.components.search.runs import RunSettings, model_folder_settings

    try:
        run = Client().get_pipeline_run(reference)
    except (KeyError, ValueError):
        return None
    source = f"ZenML run {run.name}"
    outputs = {name: versions[0] for step in run.steps.values() for name, versions in step.outputs.items()}
    if Artifacts.MODEL_DIR in outputs:
        return model_folder_settings(str(outputs[Artifacts.MODEL_DIR].load()), source)
    if Artifacts.BEST_HYPERPARAMETERS in outputs:
        return RunSettings(dict(outputs[Artifacts.BEST_HYPERPARAMETERS].load()), source)
    raise InputError(reference, f"{source} has neither a {Artifacts.MODEL_DIR} nor a "
                     f"{Artifacts.BEST_HYPERPARAMETERS} artifact")


def install_registry_resolver() -> None:
    """Let every command that takes a model accept ``registry:…`` references."""
    from genomenlp.components.model_io import MODEL_RESOLVERS

    MODEL_RESOLVERS["registry"] = resolve_registry_reference


def install_run_resolver() -> None:
    """Let ``cross_validate --config_from_run`` take a ZenML pipeline run's name or id."""
    from genomenlp.components.search.runs import RUN_RESOLVERS

    if pipeline_run_settings not in RUN_RESOLVERS:
        RUN_RESOLVERS.append(pipeline_run_settings)
