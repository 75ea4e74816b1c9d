"""Training throughput on the Trainer path: tokens/s, bf16 model-FLOP utilisation and the dataloader's share of a step.

For the classifier (``train``'s Trainer, collator and settings) on rows of ``--tokens`` token ids:

* **data path alone**: the Trainer's own training DataLoader (sampler, collation, pinned memory and
  workers as configured) iterated for ``--steps`` batches with no model: seconds per batch and the
  tokens/s it can supply;
* **training**: ``--steps`` optimiser steps of Trainer (bf16 and fused AdamW on CUDA, as ``train``
  runs them), the first ``--warmup`` left out: seconds per step, real (unpadded) tokens/s, and on
  CUDA the model FLOP utilisation 6 × parameters × tokens/s ÷ the GPU's dense bf16 peak;
* **the dataloader's share of a step**: data seconds per batch ÷ training seconds per step. With
  ``--workers 0`` the loader runs inside the step, so this is its share; with workers it overlaps
  the step and this is what it would cost without them.

``--smoke`` runs a tiny model for a few steps on whatever device there is (the CPU here), to check
the script, not the figures. Prints a JSON object and a Markdown table; ``--out`` writes
``results.json`` and ``results.md`` there. For 1 vs 2 processes, run it under
``torchrun --nproc_per_node 2`` (figures are per process; the first prints them).
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

from pretrain_speed import peak_flops  # noqa: E402

from genomenlp.components.training.config import Device, ModelConfig, TrainConfig  # noqa: E402
from genomenlp.components.training.data import EncodedSplit  # noqa: E402
from genomenlp.components.training.state import is_main_process  # noqa: E402

SMOKE_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)


def synthetic_split(rows: int, tokens: int, vocab: int, seed: int) -> EncodedSplit:
    """``rows`` rows of ``tokens`` ids (``<s>`` … ``</s>`` included, as ``train`` feeds them), two classes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = [np.concatenate([[0], rng.integers(5, vocab, tokens - 2), [1]]).astype(np.int64) for _ in range(rows)]
    labels = rng.integers(0, 2, rows)
    return EncodedSplit(ids, labels, np.arange(rows), "synthetic")


class StepClock:
    """Trainer callback: when each optimiser step ended."""

    def __init__(self):
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                clock.ends.append(time.perf_counter())

            def on_step_end(self, args, state, control, **kwargs):
                clock.ends.append(time.perf_counter())

        self.ends: list[float] = []
        self.callback = Callback()


def measure(model_config: ModelConfig, batch: int, tokens: int, steps: int, warmup: int, workers: int,
            device: Device, peak_tflops: float | None) -> dict:
    """Figures of one configuration (see the module docstring)."""
    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from genomenlp.components.training.arguments import training_arguments
    from genomenlp.components.training.model import build_classifier
    from genomenlp.components.training.optim import choose_device
    from genomenlp.components.training.trainer import ClassifierTrainer, PadCollator, SplitDataset

    vocab = 4**3 + 5
    split = synthetic_split(batch * steps, tokens, vocab, seed=0)
    torch.manual_seed(0)
    model = build_classifier(model_config, vocab, ["a", "b"], {"<s>": 0, "</s>": 1, "<pad>": 2})
    config = TrainConfig(per_device_train_batch_size=batch, learning_rate=1e-4, eval_strategy="no",
                         dataloader_num_workers=workers, device=device, collapse_epochs=0)
    with tempfile.TemporaryDirectory() as folder:
        arguments = training_arguments(config, Path(folder), show_progress=False,
                                       file_values={"max_steps": steps, "save_strategy": "no"})
        clock = StepClock()
        trainer = ClassifierTrainer(model=model, args=arguments, train_dataset=SplitDataset(split),
                                    data_collator=PadCollator(2), callbacks=[clock.callback])
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        loader = trainer.get_train_dataloader()
        started = time.perf_counter()
        seen = 0
        for count, batch_data in enumerate(loader, start=1):
            seen += int(batch_data["attention_mask"].sum())
            if count == steps:
                break
        data_seconds = (time.perf_counter() - started) / steps
        trainer.train()
    steady = [end - start for start, end in zip(clock.ends[warmup:], clock.ends[warmup + 1:], strict=False)]
    step_seconds = sum(steady) / len(steady)
    tokens_per_step = batch * tokens
    tokens_per_second = tokens_per_step / step_seconds
    parameters = sum(p.numel() for p in model.parameters())
    chosen = choose_device(device)
    name = "cpu" if chosen.type == "cpu" else torch.cuda.get_device_name(chosen)
    peak = (peak_tflops * 1e12 if peak_tflops else peak_flops(name)) if chosen.type == "cuda" else None
    return {
        "device": name, "processes": trainer.args.world_size, "precision": ("bf16" if arguments.bf16 else
                                                                            "fp16" if arguments.fp16 else "fp32"),
        "model": model_config.model_dump(mode="json"), "parameters": parameters, "batch_size": batch,
        "tokens_per_row": tokens, "dataloader_workers": workers, "steps": steps, "warmup_steps": warmup,
        "data_seconds_per_batch": round(data_seconds, 6),
        "data_tokens_per_second": round(seen / (data_seconds * steps), 1),
        "seconds_per_step": round(step_seconds, 6), "tokens_per_second": round(tokens_per_second, 1),
        "dataloader_share_of_step": round(data_seconds / step_seconds, 4),
        "model_tflops_per_second": round(6 * parameters * tokens_per_second / 1e12, 4),
        "peak_bf16_tflops": peak / 1e12 if peak else None,
        "mfu": round(6 * parameters * tokens_per_second / peak, 4) if peak else None,
    }


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model, few steps: checks the script only")
    parser.add_argument("--layers", type=int, default=12, help="encoder layers (a model large enough to load a GPU)")
    parser.add_argument("--hidden_size", type=int, default=768)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=512, help="tokens per row, <s> and </s> included")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out (lazy initialisation)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4], help="DataLoader workers to compare")
    parser.add_argument("--device", choices=[d.value for d in Device], default="auto")
    parser.add_argument("--peak_tflops", type=float, default=None, help="GPU dense bf16 peak (default: by GPU name)")
    parser.add_argument("--out", help="folder for results.json and results.md")
    args = parser.parse_args()
    if args.smoke:
        model, args.batch_size, args.tokens, args.steps, args.warmup = SMOKE_MODEL, 8, 32, 4, 1
        args.workers = args.workers if args.workers != [0, 4] else [0]
    else:
        model = ModelConfig(num_layers=args.layers, hidden_size=args.hidden_size, num_heads=args.hidden_size // 64,
                            intermediate_size=4 * args.hidden_size, max_positions=max(512, args.tokens),
                            dropout=0.1)
    if args.steps <= args.warmup + 1:
        parser.error("--steps must exceed --warmup + 1")
    rows = [measure(model, args.batch_size, args.tokens, args.steps, args.warmup, workers, Device(args.device),
                    args.peak_tflops) for workers in args.workers]
    if not is_main_process():
        return
    table = ["| device | processes | precision | parameters | batch × tokens | workers | tokens/s | s/step "
             "| data tokens/s | dataloader share | MFU |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        mfu = f"{row['mfu']:.1%}" if row["mfu"] is not None else "–"
        table.append(f"| {row['device']} | {row['processes']} | {row['precision']} | {row['parameters']:,} | "
                     f"{row['batch_size']} × {row['tokens_per_row']} | {row['dataloader_workers']} | "
                     f"{row['tokens_per_second']:,.0f} | {row['seconds_per_step']:.4f} | "
                     f"{row['data_tokens_per_second']:,.0f} | {row['dataloader_share_of_step']:.1%} | {mfu} |")
    print(json.dumps(rows, indent=2))
    print("\n" + "\n".join(table))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(rows, indent=2))
        (out / "results.md").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
