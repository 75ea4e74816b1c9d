"""``accelerate launch`` runs the unchanged ``train`` and ``pretrain`` commands on 2 CPU processes (gloo).

On a machine without GPUs ``accelerate launch --multi_gpu --num_processes 2`` starts its processes through
``torch.distributed.run`` and they meet over gloo (``--cpu`` with several processes needs ``mpirun``, which
this machine lacks). FSDP is asked for in the pre-training run: Accelerate 1.x shards only across GPUs, so
on the CPU the run says so once and trains with DDP.
"""

import gzip
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

NAME = "genomic_bert_accelerate"
TINY = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
        "--max_positions", "64", "--dropout", "0", "--num_train_epochs", "3", "--learning_rate", "0.01",
        "--seed", "1", "--collapse_epochs", "0", "--no_progress", "-d", "cpu"]
PRETRAIN = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
            "--max_positions", "64", "--per_device_train_batch_size", "4", "--logging_steps", "2",
            "--checkpoint_every", "2", "--max_steps", "4", "--shuffle_buffer", "32", "--no_progress", "-d", "cpu"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]



def accelerate_launch(arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu --num_processes 2 --no_python …`` with no accelerate config file."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           # No ~/.cache/huggingface/accelerate/default_config.yaml of the machine's user: the flags decide.
           "HF_HOME": str(tmp_path / "hf_home")}
    command = [str(bin_dir / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
               "--main_process_port", str(free_port()), "--no_python", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_accelerate_launch_train_writes_once(client, tiny_dataset, tmp_path, one_torch_thread):
    data = [tiny_dataset.train_path, "parquet", tiny_dataset.tokenizer_path, "-t", "test", "-v", "valid"]
    out = tmp_path / "run"
    finished = accelerate_launch(["train", *data, *TINY, "-o", str(out), "--per_device_train_batch_size", "4",
                                  "--register", NAME], tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    printed = finished.stdout
    assert printed.count("eval_f1=") == 3 and printed.count("test: MCC") == 1
    assert printed.count(f"registered as registry:{NAME}@1") == 1
    assert [v.number for v in client.list_model_versions(model=NAME, size=10)] == [1]
    assert sorted(path.name for path in out.iterdir()) == ["history.csv", "metrics.json", "model_files", "plots",
                                                           "report.html", "test_predictions.csv"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["sharding"] == "ddp" and metrics["test_mcc"] > 0.5
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 3


def test_accelerate_launch_pretrain_writes_once_and_says_fsdp_is_not_sharding_on_the_cpu(tmp_path):
    rng = random.Random(5)
    genome = tmp_path / "genome.fa.gz"
    with gzip.open(genome, "wt") as handle:
        handle.write(">chr\n" + "".join(rng.choice("ACGT") for _ in range(3000)) + "\n")
    from genomenlp.components.tokenisers import build_kmer_tokenizer

    tokens = tmp_path / "k3.json"
    tokens.write_text(build_kmer_tokenizer(3).to_json())
    out = tmp_path / "encoder_run"
    finished = accelerate_launch(["pretrain", str(genome), str(tokens), "-o", str(out), *PRETRAIN, "--fsdp"],
                                 tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    # Rows at steps 2 and 4, printed by the first process only.
    assert finished.stdout.count("mlm_loss=") == 2
    assert finished.stderr.count("training arguments: fsdp=True is overridden to 'ddp'") == 1
    assert (out / "encoder" / "model.safetensors").stat().st_size > 0
    assert not (out / "checkpoints").exists() and not list(out.rglob(".*.tmp"))
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["steps"] == 4
