"""Several training processes in one step's pod, through ZenML's ``run_with_accelerate``.

``run_with_accelerate`` starts ``accelerate launch`` on a script that imports a step by module and
name and calls its function in every process, with the step's arguments as command-line options
(``str``, ``int``, ``float``, ``bool`` or ``Path`` only) and the first process's return value pickled
back. The training and pre-training steps take typed configs, which that path cannot carry, and log
to the ZenML run, which a launched process cannot reach (it runs outside ZenML's step runner). So
the work of those steps goes through :func:`accelerated_stage`, a step that is never part of a
pipeline: its arguments are the stage's name and its settings as JSON, and it returns the stage's
summary. The calling step stays the one ZenML step, and logs and registers once.
"""

# No `from __future__ import annotations`: ZenML's command-line wrapper reads the step's annotations as types.
import json
import socket

from zenml import step

# What the launched processes may run; the names are the `stage` argument.
STAGES = ("train", "pretrain")


def _run(stage: str, arguments: dict) -> dict:
    """The stage's component function on typed settings rebuilt from ``arguments``; its summary."""
    from genomenlp.components.training.config import ModelConfig

    model = ModelConfig(**arguments["model"])
    if stage == "train":
        from genomenlp.steps.support.registry import install_registry_resolver

        # `init_from: registry:…` must resolve in every process (a launched one too, not only the step's).
        install_registry_resolver()
        from genomenlp.components.training.config import TrainConfig
        from genomenlp.components.training.run import TrainingData, train_classifier

        return train_classifier(TrainingData.from_dataset_dir(arguments["dataset_dir"]), model,
                                TrainConfig(**arguments["training"]), arguments["out_dir"], show_progress=False,
                                epoch_note=arguments.get("epoch_note"))
    from genomenlp.components.pretraining.config import PretrainConfig
    from genomenlp.components.pretraining.mlm import pretrain_encoder
    from genomenlp.components.training.run import print_metric_lines

    return pretrain_encoder(arguments["corpus_files"], arguments["tokenizer"], arguments["out_dir"], model,
                            PretrainConfig(**arguments["config"]), arguments["held_out"], arguments["kmer_stride"],
                            show_progress=False, on_log=print_metric_lines, announce=print)


@step(enable_cache=False)
def accelerated_stage(stage: str, arguments: str) -> dict:
    """One process of a stage under ``accelerate launch`` (every process trains; the first writes the files).

    Args:
        stage: ``train`` or ``pretrain``.
        arguments: The stage's settings as JSON (see :func:`run_stage`).

    Returns:
        The stage's summary (``metrics.json``'s content).
    """
    return _run(stage, json.loads(arguments))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_stage(stage: str, arguments: dict, processes: int) -> dict:
    """Run a stage in this process, or in ``processes`` processes through ``run_with_accelerate``.

    Args:
        stage: One of :data:`STAGES`.
        arguments: JSON-serialisable settings (configs as ``model_dump(mode="json")``).
        processes: Processes in this pod, one per GPU; 1 runs here without a launcher.

    Returns:
        The stage's summary, from the first process.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
    if processes <= 1:
        return _run(stage, arguments)
    from zenml.integrations.huggingface.steps import run_with_accelerate

    # A copy: run_with_accelerate replaces the entrypoint of the step it is given, and this module's step must
    # stay the plain function the launched processes import.
    launched = run_with_accelerate(
        accelerated_stage.with_options(), num_processes=processes, num_machines=1,
        # --multi_gpu starts the processes through torch.distributed.run: NCCL on GPUs, gloo without them
        # (accelerate's --cpu would need mpirun for more than one process).
        multi_gpu=True, mixed_precision="no", dynamo_backend="no", main_process_ip="127.0.0.1",
        main_process_port=_free_port())
    return launched.entrypoint(stage=stage, arguments=json.dumps(arguments))
