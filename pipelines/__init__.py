"""ZenML pipelines: pure wiring of ``steps/``, configured by ``pipelines/configs/*.yaml``."""
