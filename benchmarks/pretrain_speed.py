"""Tokens per second of masked-language-model pre-training of the default model on the bundled E. coli genome.

Runs ``pretrain`` as the command does (default ``ModelConfig()``: BERT 2×128, 512 positions; the
bundled example's 3-mer tokeniser; 512-base windows on both strands) for ``--steps`` steps and
reports steady-state tokens/s (after ``--warmup`` steps, which pay for lazy initialisation), the
whole run's wall time and, on CUDA, the model FLOP utilisation estimate
6 × parameters × tokens/s ÷ the GPU's dense bf16 peak (attention's sequence-length term and the
MLM head's savings from predicting only masked positions are left out, as is usual for this figure).

Prints a JSON object and a Markdown table row; ``--out`` also writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genomenlp.components.pretraining.config import PretrainConfig  # noqa: E402
from genomenlp.components.pretraining.mlm import pretrain_encoder  # noqa: E402
from genomenlp.components.tokenisers import build_kmer_tokenizer  # noqa: E402
from genomenlp.components.training.config import Device, ModelConfig  # noqa: E402
from genomenlp.components.training.optim import choose_device  # noqa: E402

GENOME = ROOT / "data" / "ecoli_genome" / "GCF_000005845.2_ASM584v2_genomic.fna.gz"
# Dense bf16 peak FLOP/s by GPU name fragment (vendor data sheets, SXM parts, no sparsity).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12}


def peak_flops(name: str) -> float | None:
    """Dense bf16 peak of a GPU from its name, when known."""
    for fragment, peak in PEAK_BF16.items():
        if fragment in name:
            return peak
    return None


def main() -> None:
    """Pre-train for a few steps and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the steady-state figure")
    parser.add_argument("--batch_size", type=int, default=PretrainConfig().per_device_train_batch_size)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", choices=[d.value for d in Device], default="auto")
    parser.add_argument("--peak_tflops", type=float, default=None, help="GPU dense bf16 peak (default: by GPU name)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(Device(args.device))
    model = ModelConfig()
    config = PretrainConfig(max_steps=args.steps, per_device_train_batch_size=args.batch_size, logging_steps=1,
                            checkpoint_every=args.steps, device=Device(args.device))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        tokens = Path(folder, "k3.json")
        tokens.write_text(build_kmer_tokenizer(3).to_json())
        started = time.perf_counter()
        summary = pretrain_encoder([str(GENOME)], str(tokens), str(Path(folder, "out")), model, config,
                                   show_progress=False, on_log=lambda step, row: rows.append(row))
        wall = time.perf_counter() - started
    steady = rows[args.warmup:]
    # Every window is full (512 bases → 512 tokens), so each step trains on the same token count.
    tokens_per_step = summary["tokens_seen"] / summary["steps"]
    steady_seconds = sum(tokens_per_step / row["tokens_per_second"] for row in steady)
    tokens_per_second = len(steady) * tokens_per_step / steady_seconds
    parameters = summary["parameters"]
    name = "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device)
    peak = (args.peak_tflops * 1e12 if args.peak_tflops else peak_flops(name)) if device.type == "cuda" else None
    figures = {
        "device": name,
        "torch_threads": torch.get_num_threads(),
        "autocast": ("fp32" if device.type == "cpu" else "bf16" if torch.cuda.is_bf16_supported() else "fp16"),
        "model": model.model_dump(mode="json"),
        "parameters": parameters,
        "batch_size": args.batch_size,
        "window_bases": summary["window"],
        "tokens_per_step": tokens_per_step,
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "tokens_per_second": round(tokens_per_second, 1),
        "seconds_per_step": round(tokens_per_step / tokens_per_second, 4),
        "tokens_per_second_all_steps": round(summary["tokens_per_second"], 1),
        "wall_seconds": round(wall, 2),
        "final_mlm_loss": summary["mlm_loss"],
        "model_tflops_per_second": round(6 * parameters * tokens_per_second / 1e12, 4),
        "peak_bf16_tflops": peak / 1e12 if peak else None,
        "mfu": round(6 * parameters * tokens_per_second / peak, 4) if peak else None,
    }
    print(json.dumps(figures, indent=2))
    print("\n| device | threads | batch × tokens | parameters | tokens/s | s/step | MFU | wall (s) |")
    print("|---|---|---|---|---|---|---|---|")
    mfu = f"{figures['mfu']:.1%}" if figures["mfu"] is not None else "–"
    print(f"| {name} | {figures['torch_threads']} | {args.batch_size} × {tokens_per_step / args.batch_size:.0f} | "
          f"{parameters:,} | {tokens_per_second:,.0f} | {figures['seconds_per_step']} | {mfu} | {wall:.1f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
