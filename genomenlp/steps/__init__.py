"""ZenML steps: thin wrappers that unpack a config, call ``components`` and name their outputs.

One step per module, named as its module; import it from there (``from genomenlp.steps.create_dataset import
create_dataset``). The package re-exports nothing, since a step re-exported under its module's name
would be replaced by the module object whenever ZenML imports that module by its source path.
"""
