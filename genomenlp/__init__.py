"""genomenlp: machine learning on biological sequences, from a laptop to Kubeflow.

Layers, each importing only the ones before it:

* :mod:`genomenlp.components`: domain code (FASTA, tokenisers, datasets, training, inference); never imports ZenML.
* :mod:`genomenlp.steps`: thin ZenML steps over the components, one per module.
* :mod:`genomenlp.pipelines`: pipeline wiring and the run configurations (``genomenlp/pipelines/configs``).
* :mod:`genomenlp.platform`: the commands, stacks, cluster support and the Kubeflow orchestrator flavor.
"""
