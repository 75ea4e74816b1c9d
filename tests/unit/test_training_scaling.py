"""FSDP and torch.compile: one set of config fields, mapped onto HF TrainingArguments for training and pre-training."""

from pathlib import Path

import pytest

from genomenlp.components.cli import pretrain, train
from genomenlp.components.errors import InputError
from genomenlp.components.pretraining.config import PretrainConfig
from genomenlp.components.pretraining.trainer import pretraining_arguments
from genomenlp.components.training.arguments import training_arguments
from genomenlp.components.training.config import (
    ScalingConfig,
    TrainConfig,
    read_hyperparams,
    training_config_from_mapping,
)
from genomenlp.components.training.trainer import ClassifierTrainer

TUTORIAL_HYPERPARAMS = str(Path(__file__).resolve().parents[2] / "data" / "tutorial" / "hyperparams.json")
WRAP = {"transformer_layer_cls_to_wrap": ["BertLayer"]}


@pytest.mark.parametrize("config_type", [TrainConfig, PretrainConfig])
def test_both_stages_share_the_scaling_fields(config_type):
    assert issubclass(config_type, ScalingConfig)
    assert {"fsdp", "fsdp_config", "torch_compile"} <= set(config_type.model_fields)


def test_ddp_is_the_default_and_fsdp_maps_onto_training_arguments(tmp_path):
    default = training_arguments(TrainConfig(device="cpu"), tmp_path, show_progress=False)
    assert not default.fsdp and default.torch_compile is False
    config = TrainConfig(device="cpu", fsdp=True, fsdp_config=WRAP, torch_compile=True)
    arguments = training_arguments(config, tmp_path, show_progress=False)
    assert arguments.fsdp is True and arguments.torch_compile is True
    assert arguments.fsdp_config["transformer_layer_cls_to_wrap"] == ["BertLayer"]
    # What Accelerate's FSDP plugin is built from: FSDP2, wrapping each encoder layer.
    plugin = arguments.fsdp_plugin_args
    assert plugin["fsdp_version"] == 2 and plugin["transformer_cls_names_to_wrap"] == "BertLayer"


def test_pretraining_maps_the_same_fields(tmp_path):
    default = pretraining_arguments(PretrainConfig(device="cpu"), tmp_path, show_progress=False)
    assert not default.fsdp and default.torch_compile is False
    config = PretrainConfig(device="cpu", fsdp=True, fsdp_config={"reshard_after_forward": False},
                            torch_compile=True)
    arguments = pretraining_arguments(config, tmp_path, show_progress=False)
    assert arguments.fsdp is True and arguments.torch_compile is True
    assert arguments.fsdp_config["reshard_after_forward"] is False


def test_a_transformers_4_files_fsdp_options_read_as_hf_5_reads_them(tmp_path):
    values = read_hyperparams(TUTORIAL_HYPERPARAMS)
    # The tutorial's file (transformers 4) says "fsdp": []: DDP.
    assert values["fsdp"] == [] and training_config_from_mapping(values, "hyperparams.json").fsdp is False
    asked = {**values, "fsdp": ["full_shard", "offload", "auto_wrap"], "torch_compile": True}
    config = training_config_from_mapping(asked, "hyperparams.json")
    assert config.fsdp is True and config.torch_compile
    assert config.fsdp_config == {"reshard_after_forward": True, "cpu_offload": True}
    # The file's keys go to Trainer too; TrainConfig's reading of them is what applies.
    arguments = training_arguments(config, tmp_path, show_progress=False, file_values=asked)
    assert arguments.fsdp is True and arguments.fsdp_config["cpu_offload"] is True


def test_an_unknown_fsdp_option_is_one_line():
    with pytest.raises(InputError) as caught:
        training_config_from_mapping({"fsdp": "full_shard everywhere"}, "hyperparams.json")
    message = str(caught.value)
    assert "hyperparams.json" in message and "everywhere" in message and "\n" not in message


@pytest.mark.parametrize("module", [train, pretrain])
def test_the_commands_take_the_fields_as_flags(module):
    args = module.build_parser().parse_args(
        ["a", "parquet", "c", "--fsdp", "--fsdp_config", "fsdp.json", "--torch_compile"]
        if module is train else ["a", "b", "-o", "c", "--fsdp", "--fsdp_config", "fsdp.json", "--torch_compile"])
    assert args.fsdp is True and args.fsdp_config == "fsdp.json" and args.torch_compile is True


def test_torch_compile_reaches_the_trainers_accelerator(tmp_path):
    """The flag is Trainer's: Accelerate compiles the model in ``prepare`` (with inductor unless told otherwise).

    Compiling even the tiny model costs about a minute on 2 CPU cores, so the run itself is not timed here.
    """
    import torch
    from accelerate.utils import DynamoBackend

    from genomenlp.components.training.config import ModelConfig
    from genomenlp.components.training.model import build_classifier

    torch.manual_seed(0)
    model = build_classifier(ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32,
                                         max_positions=64), 12, ["a", "b"], {"<s>": 0, "</s>": 1, "<pad>": 2})
    for compile_ in (False, True):
        config = TrainConfig(device="cpu", torch_compile=compile_, eval_strategy="no")
        trainer = ClassifierTrainer(model=model, args=training_arguments(config, tmp_path, show_progress=False))
        backend = trainer.accelerator.state.dynamo_plugin.backend
        assert (backend is DynamoBackend.INDUCTOR) is compile_, backend
