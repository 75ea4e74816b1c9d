"""Sequences per second of ``predict`` (``write_predictions``): one sequence per forward pass vs the default batch.

Both runs use the same randomly initialised default-size model (``ModelConfig()``, k=3 k-mer
tokeniser), saved as ``train`` saves one (``save_model_folder``) and read back with ``load_model``,
and the same bundled promoter / non-promoter sequences. The whole call is timed — reading FASTA,
tokenising, the forward passes and writing the TSV — as the command runs it. Batch size 1 is the
reference measured in the same invocation (on a subset: it is the slow side); the probabilities
of the two runs are compared too: batching must not change them.

Prints a JSON object and a Markdown table; ``--out`` keeps ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genomenlp.components.fasta import read_fasta  # noqa: E402
from genomenlp.components.inference.config import PredictConfig  # noqa: E402
from genomenlp.components.inference.predict import write_predictions  # noqa: E402
from genomenlp.components.model_io import load_model  # noqa: E402
from genomenlp.components.tokenisers import build_kmer_tokenizer  # noqa: E402
from genomenlp.components.tokenisers.common import BOS, EOS, PAD  # noqa: E402
from genomenlp.components.training.config import Device, ModelConfig  # noqa: E402
from genomenlp.components.training.model import build_classifier  # noqa: E402
from genomenlp.components.training.optim import choose_device  # noqa: E402
from genomenlp.components.training.run import save_model_folder  # noqa: E402

DATA = [ROOT / "data" / "ecoli_promoter" / name for name in ("promoter.fasta.gz", "non_promoter.fasta.gz")]
LABELS = ["promoter", "non_promoter"]


def write_subset(path: Path, count: int | None) -> int:
    """The first ``count`` bundled sequences (all when ``None``), both classes interleaved; how many."""
    streams = [read_fasta(str(file)) for file in DATA]
    written = 0
    with open(path, "w", encoding="ascii") as handle:
        while streams and (count is None or written < count):
            for stream in list(streams):
                record = next(stream, None)
                if record is None:
                    streams.remove(stream)
                    continue
                handle.write(f">{record.id}\n{record.sequence}\n")
                written += 1
                if written == count:
                    break
    return written


def probabilities(path: Path) -> dict[str, list[float]]:
    """Record id → class probabilities, from a predictions TSV."""
    with open(path, newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {row["id"]: [float(row[f"p_{name}"]) for name in LABELS] for row in rows}


def main() -> None:
    """Save a default model, time both batch sizes, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=None,
                        help="sequences predicted at the default batch size (default: all 6,764 bundled)")
    parser.add_argument("--one_at_a_time", type=int, default=512,
                        help="sequences predicted with batch size 1 (a subset of the above; default: 512)")
    parser.add_argument("--batch_size", type=int, default=PredictConfig().batch_size,
                        help=f"the batched run's batch size (default: predict's, {PredictConfig().batch_size})")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (the median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", choices=[d.value for d in Device], default="auto")
    parser.add_argument("--out", help="folder for results.json and results.md (default: print only)")
    args = parser.parse_args()

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(Device(args.device))
    tokenizer = build_kmer_tokenizer(3)
    vocab = tokenizer.tokenizer.get_vocab()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch, "model_files")
        folder.mkdir()
        torch.manual_seed(0)
        model = build_classifier(ModelConfig(), len(vocab), LABELS, {t: vocab[t] for t in (BOS, EOS, PAD)})
        save_model_folder(model, tokenizer, LABELS, folder,
                          {"tokenizer": tokenizer.describe(), "model": ModelConfig().model_dump(mode="json")})
        loaded = load_model(str(folder))
        batched_input, single_input = Path(scratch, "batched.fasta"), Path(scratch, "single.fasta")
        batched_count = write_subset(batched_input, args.sequences)
        single_count = write_subset(single_input, min(args.one_at_a_time, batched_count))
        warmup = Path(scratch, "warmup.fasta")
        write_subset(warmup, 8)

        def timed(source: Path, batch_size: int, output: Path) -> list[float]:
            config = PredictConfig(batch_size=batch_size, device=Device(args.device))
            # First calls pay for lazy initialisation (kernels, allocator) that no timed run should.
            write_predictions(loaded, [str(warmup)], str(output), config, overwrite=True)
            seconds = []
            for _ in range(args.repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
                counts = write_predictions(loaded, [str(source)], str(output), config, overwrite=True)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds.append(time.perf_counter() - started)
            assert counts["records"] == (batched_count if source == batched_input else single_count)
            return seconds

        single_tsv, batched_tsv = Path(scratch, "single.tsv"), Path(scratch, "batched.tsv")
        single_seconds = timed(single_input, 1, single_tsv)
        batched_seconds = timed(batched_input, args.batch_size, batched_tsv)
        single_p, batched_p = probabilities(single_tsv), probabilities(batched_tsv)
    difference = max(float(np.abs(np.subtract(single_p[key], batched_p[key])).max()) for key in single_p)
    single_rate = single_count / statistics.median(single_seconds)
    batched_rate = batched_count / statistics.median(batched_seconds)
    figures = {
        "device": "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch_threads": torch.get_num_threads(),
        "model": ModelConfig().model_dump(mode="json"),
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "tokens_per_sequence": len(tokenizer.encode_batch(["A" * 81], loaded.max_tokens)[0].ids),
        "batch_size": args.batch_size,
        "sequences_batched": batched_count,
        "sequences_one_at_a_time": single_count,
        "repeats": args.repeats,
        "seconds_batched": [round(s, 3) for s in batched_seconds],
        "seconds_one_at_a_time": [round(s, 3) for s in single_seconds],
        "sequences_per_second_batched": round(batched_rate, 1),
        "sequences_per_second_one_at_a_time": round(single_rate, 1),
        "speedup": round(batched_rate / single_rate, 2),
        "max_probability_difference": difference,
    }
    print(json.dumps(figures, indent=2))
    text = "\n".join([
        "| device | threads | parameters | batch 1 (seq/s) | batch "
        f"{args.batch_size} (seq/s) | speed-up | max Δp |",
        "|---|---|---|---|---|---|---|",
        f"| {figures['device']} | {figures['torch_threads']} | {figures['parameters']:,} | {single_rate:,.0f} | "
        f"{batched_rate:,.0f} | {figures['speedup']}× | {difference:.1e} |",
        "",
        f"Whole predict call (read, tokenise, forward, write TSV), median of {args.repeats}; batch 1 on "
        f"{single_count:,} sequences, batch {args.batch_size} on {batched_count:,} (81 bp, "
        f"{figures['tokens_per_sequence']} tokens each).",
    ])
    print("\n" + text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(figures, indent=2))
        (out / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
