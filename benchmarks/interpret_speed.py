"""Seconds per sequence of Layer Integrated Gradients: batched (``interpret``) vs one sequence at a time.

One sequence at a time with 50 steps in one pass is the original toolkit's method: one Captum
``LayerIntegratedGradients`` call per sequence (``genomenlp/components/inference/captum_reference.py``).
All runs use the same model (a randomly initialised default-size ``ModelConfig()`` with the k=3
k-mer tokeniser, or a trained folder given with ``--model``) and the same bundled promoter
sequences (both classes). Scores are compared too: ours with 50 steps must equal Captum's, and
the adaptive default must stay within its tolerance of them.

Prints a JSON object and a Markdown table row; ``--out`` also writes the JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genomenlp.components.inference.attribution import attribute_windows, default_tokens_per_pass  # noqa: E402
from genomenlp.components.inference.captum_reference import captum_attribute_windows  # noqa: E402
from genomenlp.components.inference.config import InterpretConfig  # noqa: E402
from genomenlp.components.inference.windows import special_ids  # noqa: E402
from genomenlp.components.tokenisers import build_kmer_tokenizer  # noqa: E402
from genomenlp.components.tokenisers.common import BOS, EOS, PAD  # noqa: E402
from genomenlp.components.training.config import Device, ModelConfig  # noqa: E402
from genomenlp.components.training.model import build_classifier  # noqa: E402
from genomenlp.components.training.optim import choose_device  # noqa: E402

DATA = [ROOT / "data" / "ecoli_promoter" / name for name in ("promoter.fasta.gz", "non_promoter.fasta.gz")]


def read_sequences(count: int) -> list[str]:
    """``count`` bundled sequences, the first half promoters and the rest non-promoters."""
    sequences = []
    for index, path in enumerate(DATA):
        wanted = (count + 1) // 2 if index == 0 else count - len(sequences)
        taken = 0
        with gzip.open(path, "rt") as handle:
            for line in handle:
                if taken == wanted:
                    break
                if not line.startswith(">"):
                    sequences.append(line.strip().upper())
                    taken += 1
    return sequences


def main() -> None:
    """Run both methods and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=64, help="sequences attributed by the batched run")
    parser.add_argument("--one_at_a_time", type=int, default=16,
                        help="sequences attributed one at a time (a subset: the slow side)")
    parser.add_argument("--n_steps", type=int, default=50)
    parser.add_argument("--batch_size", type=int, default=32, help="sequences per Captum call when batched")
    parser.add_argument("--tokens_per_pass", type=int, default=None, help="default: by device")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", choices=[d.value for d in Device], default="auto")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (median reported)")
    parser.add_argument("--model", help="a trained model folder (default: a random default-size model)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(Device(args.device))
    if args.model:
        from genomenlp.components.model_io import load_model

        loaded = load_model(args.model)
        model, tokenizer = loaded.model, loaded.tokenizer
    else:
        tokenizer = build_kmer_tokenizer(3)
        vocab = tokenizer.tokenizer.get_vocab()
        torch.manual_seed(0)
        model = build_classifier(ModelConfig(), len(vocab), ["promoter", "other"],
                                 {t: vocab[t] for t in (BOS, EOS, PAD)})
    model.to(device).eval()
    special = special_ids(tokenizer)
    sequences = read_sequences(args.sequences)
    windows = [encoding.ids for encoding in tokenizer.encode_batch(sequences, model.config.max_position_embeddings)]
    with torch.no_grad():
        targets = [int(model(input_ids=torch.tensor([window], device=device)).logits.argmax()) for window in windows]
    # Warm-up: first calls pay for lazy initialisation (kernels, allocator) that no run should.
    attribute_windows(model, windows[:2], targets[:2], special, args.n_steps, batch_size=2, device=device)
    captum_attribute_windows(model, windows[:2], targets[:2], special, args.n_steps, device=device)

    def timed(call):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        result = call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return result, time.perf_counter() - started

    single_count = min(args.one_at_a_time, len(windows))
    default = InterpretConfig()
    runs = {
        # One Captum call per sequence, all its steps in one pass: the original's way.
        "single": (single_count, lambda: captum_attribute_windows(
            model, windows[:single_count], targets[:single_count], special, args.n_steps, batch_size=1,
            device=device)),
        "batched": (len(windows), lambda: attribute_windows(
            model, windows, targets, special, args.n_steps, args.batch_size, args.tokens_per_pass, device)),
        # The default: adaptive Gauss–Legendre steps (few first, more only where completeness needs them).
        "adaptive": (len(windows), lambda: attribute_windows(
            model, windows, targets, special, args.n_steps, args.batch_size, args.tokens_per_pass, device,
            min_steps=default.min_steps, tolerance=default.tolerance)),
    }
    # Rounds interleave the methods, so a burst of load on a shared machine hits all of them alike;
    # the median round of each is reported.
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    for _ in range(args.rounds):
        for name, (count, call) in runs.items():
            outputs[name], elapsed = timed(call)
            seconds[name].append(elapsed / count)
    single, batched, adaptive = outputs["single"], outputs["batched"], outputs["adaptive"]
    per_single, per_batched, per_adaptive = (statistics.median(seconds[name]) for name in runs)
    difference = max(float(np.abs(a.scores - b.scores).max()) for a, b in zip(single, batched, strict=False))
    adaptive_difference = max(float(np.abs(a.scores - b.scores).sum() / max(np.abs(b.scores).sum(), 1e-12))
                              for a, b in zip(adaptive, single, strict=False))
    figures = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch_threads": torch.get_num_threads(),
        "model": args.model or ModelConfig().model_dump(mode="json"),
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "tokens_per_window": len(windows[0]),
        "n_steps": args.n_steps,
        "sequences_batched": len(windows),
        "sequences_one_at_a_time": single_count,
        "rounds": args.rounds,
        "min_steps": default.min_steps,
        "tolerance": default.tolerance,
        "batch_size": args.batch_size,
        "tokens_per_pass": args.tokens_per_pass or default_tokens_per_pass(device),
        "seconds_per_sequence_one_at_a_time": round(per_single, 5),
        "seconds_per_sequence_batched": round(per_batched, 5),
        "speedup": round(per_single / per_batched, 2),
        "seconds_per_sequence_adaptive": round(per_adaptive, 5),
        "speedup_adaptive": round(per_single / per_adaptive, 2),
        "max_abs_delta_batched": max(abs(item.delta) for item in batched),
        "max_abs_delta_adaptive": max(abs(item.delta) for item in adaptive),
        "max_relative_l1_difference_adaptive_vs_captum": adaptive_difference,
        "max_abs_score_difference_50_steps_vs_captum": difference,
    }
    print(json.dumps(figures, indent=2))
    print("\n| device | threads | steps | one at a time (s/seq) | batched (s/seq) | speed-up | "
          "batched adaptive, the default (s/seq) | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {figures['device']} | {figures['torch_threads']} | {args.n_steps} | {per_single:.4f} | "
          f"{per_batched:.4f} | {figures['speedup']}× | {per_adaptive:.4f} | {figures['speedup_adaptive']}× |")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
