"""ZenML pipelines: pure wiring of ``genomenlp/steps/``, configured by ``genomenlp/pipelines/configs/*.yaml``."""
