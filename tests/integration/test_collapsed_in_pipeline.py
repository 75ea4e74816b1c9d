"""Pipeline mode: a model that collapses during training is withdrawn from the registry's candidates.

ZenML creates the run's model version when the run starts, before anyone knows the model will collapse,
so the version exists; the promote step archives it, tags it ``collapsed`` and never promotes it, and the
run's metadata says so. The real steps of the training pipeline run on a throw-away local ZenML store.
"""

from __future__ import annotations

import pytest
from zenml import Model, pipeline
from zenml.enums import ExecutionStatus, ModelStages

from genomenlp.components.errors import InputError
from genomenlp.components.names import Artifacts
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.steps.cross_validate_model import cross_validate_model
from genomenlp.steps.promote_model import promote_model
from genomenlp.steps.support.registry import describe_versions, promote_best, resolve_registry_reference
from genomenlp.steps.train_classifier import train_classifier

MODEL_NAME = "collapse_probe"
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
# A learning rate this small leaves the tiny model predicting one class for its first two validations.
COLLAPSING = TrainConfig(learning_rate=1e-5, num_train_epochs=4, per_device_train_batch_size=16, seed=1,
                         device="cpu", collapse_epochs=2)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_collapsed_model_is_archived_never_a_candidate_and_the_run_says_so(clean_zenml_client, tiny_kmer_dataset):
    @pipeline(enable_cache=False, model=Model(name=MODEL_NAME))
    def train_then_promote() -> None:
        _, metrics, _, _ = train_classifier(tiny_kmer_dataset, {}, TINY_MODEL, COLLAPSING)
        cv_metrics, _, _ = cross_validate_model(tiny_kmer_dataset, {}, TINY_MODEL, COLLAPSING, 2,
                                                after="train_classifier")
        promote_model(metrics, cv_metrics)

    run = clean_zenml_client.get_pipeline_run(train_then_promote().id)
    assert run.status == ExecutionStatus.COMPLETED
    metrics = run.steps["train_classifier"].outputs[Artifacts.TRAINING_METRICS][0].load()
    assert metrics["collapsed"].startswith("collapsed: ")
    assert run.steps["promote_model"].outputs[Artifacts.PRODUCTION_VERSION][0].load() is None

    version = clean_zenml_client.get_model_version(MODEL_NAME, run.model_version.number)
    assert version.stage == ModelStages.ARCHIVED
    assert "collapsed" in {tag.name for tag in version.tags}
    assert version.run_metadata["collapsed"] == 1
    assert version.run_metadata["candidate"] is False
    assert run.run_metadata["candidate"] is False and run.run_metadata["promoted"] is False
    assert run.run_metadata["collapsed_reason"] == metrics["collapsed"]
    # Nothing can promote it afterwards, and the listing says why.
    assert promote_best(MODEL_NAME) is None
    (line,) = describe_versions(MODEL_NAME)
    assert line.startswith(f"{version.number}\t-\tcollapsed")
    # `registry:NAME` (the latest version) does not hand out the constant predictor unawares.
    with pytest.raises(InputError, match=f"the latest version, {version.number}, collapsed"):
        resolve_registry_reference(MODEL_NAME)
