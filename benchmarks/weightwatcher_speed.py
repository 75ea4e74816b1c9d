"""Seconds of WeightWatcher analysis per model: the default model shape and the original's 6×768 DistilBERT.

Models are built with random weights (nothing is downloaded). Their spectra differ from trained
ones, but the cost of the analysis (one SVD per weight matrix, then a power-law fit over its
eigenvalues) is set by the matrix shapes, so the timings carry over to trained models.

Profiles: the default ``ModelConfig`` (BERT 2×128) with the default k-mer vocabulary and with the
default Unigram vocabulary (32,000: the embedding matrix then dominates), and the original toolkit's
DistilBERT 6×768 with a 32,000 vocabulary (skip with ``--skip_original``: minutes on two cores).
Each is timed with the default ``PowerlawConfig``; ``--with_original_options`` also times the
default-shape model with the original's ``randomize=True``, and the default shape is timed once more
with one BLAS thread per core (the default is one thread). For the default shape the whole command
(load, analyse, plots, summary) is timed too, on a saved model folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genomenlp.components.compare.powerlaw import (  # noqa: E402
    PowerlawConfig,
    _weightwatcher,
    analyze_encoder,
    fit_powerlaw,
)
from genomenlp.components.configs import KmerConfig, TokeniseConfig  # noqa: E402
from genomenlp.components.tokenisers.common import BOS, EOS, PAD  # noqa: E402
from genomenlp.components.tokenisers.kmer import build_kmer_tokenizer  # noqa: E402
from genomenlp.components.training.config import Architecture, ModelConfig  # noqa: E402
from genomenlp.components.training.model import build_classifier  # noqa: E402
from genomenlp.components.training.run import save_model_folder  # noqa: E402

ORIGINAL_MODEL = ModelConfig(architecture=Architecture.DISTILBERT, num_layers=6, hidden_size=768, num_heads=12,
                             intermediate_size=3072, max_positions=512)
ORIGINAL_SECONDS = 57  # the original fit_powerlaw on its 6×768 DistilBERT, as reported


def build(shape: ModelConfig, vocab_size: int, seed: int = 0):
    """A randomly initialised classifier of the given shape and vocabulary size."""
    import torch

    torch.manual_seed(seed)
    model = build_classifier(shape, vocab_size, ["a", "b"], {BOS: 0, EOS: 1, PAD: 3})
    return model.eval()


def time_analysis(model, config: PowerlawConfig, repeats: int) -> dict:
    """Wall seconds of ``analyze_encoder`` over ``repeats`` runs, and the number of matrices fitted."""
    seconds, layers = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        layers, _ = analyze_encoder(model, config)
        seconds.append(time.perf_counter() - started)
    return {"seconds_first": seconds[0], "seconds_median": statistics.median(seconds), "seconds_min": min(seconds),
            "matrices": int(len(layers)), "repeats": repeats}


def time_command(vocab_size: int, config: PowerlawConfig) -> float:
    """Wall seconds of the whole analysis (load, fit, figures, summary) of one saved default model."""
    tokenizer = build_kmer_tokenizer(KmerConfig().k)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "run" / "model_files"
        folder.mkdir(parents=True)
        vocab = tokenizer.tokenizer.get_vocab()
        model = build_classifier(ModelConfig(), vocab_size, ["a", "b"], {t: vocab[t] for t in (BOS, EOS, PAD)})
        save_model_folder(model, tokenizer, ["a", "b"], folder, {})
        started = time.perf_counter()
        fit_powerlaw([str(folder)], config, str(Path(scratch) / "out"))
        return time.perf_counter() - started


def main() -> None:
    """Time every profile, print one JSON line each, then a Markdown table and summary line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per default-shape profile (median reported)")
    parser.add_argument("--skip_original", action="store_true", help="leave out the 6×768 DistilBERT")
    parser.add_argument("--with_original_options", action="store_true",
                        help="also time randomize=True (the original's setting) on the default shape")
    parser.add_argument("--out", help="folder for results.json and results.md (default: print only)")
    args = parser.parse_args()

    import torch

    started = time.perf_counter()
    _weightwatcher()
    import_seconds = time.perf_counter() - started
    kmer_vocab = len(build_kmer_tokenizer(KmerConfig().k).tokenizer.get_vocab())
    unigram_vocab = TokeniseConfig().vocab_size
    default = PowerlawConfig()
    profiles = [("default 2×128, k-mer vocab", ModelConfig(), kmer_vocab, default, args.repeats),
                ("default 2×128, Unigram vocab", ModelConfig(), unigram_vocab, default, args.repeats)]
    if (os.cpu_count() or 1) > 1:
        # The default runs SVDs on one BLAS thread; this row shows what all cores give on this machine.
        every_core = default.model_copy(update={"blas_threads": os.cpu_count()})
        profiles.append((f"default 2×128, k-mer vocab, {os.cpu_count()} BLAS threads", ModelConfig(), kmer_vocab,
                         every_core, args.repeats))
    if args.with_original_options:
        randomized = default.model_copy(update={"randomize": True})
        profiles.append(("default 2×128, k-mer vocab, randomize=True", ModelConfig(), kmer_vocab, randomized, 1))
    if not args.skip_original:
        profiles.append(("original DistilBERT 6×768, Unigram vocab", ORIGINAL_MODEL, unigram_vocab, default, 1))

    rows = []
    for name, shape, vocab_size, config, repeats in profiles:
        model = build(shape, vocab_size)
        row = {"profile": name, "architecture": shape.architecture.value, "num_layers": shape.num_layers,
               "hidden_size": shape.hidden_size, "vocab_size": vocab_size,
               "parameters": sum(p.numel() for p in model.base_model.parameters()),
               "config": config.model_dump(), **time_analysis(model, config, repeats)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    command_seconds = time_command(kmer_vocab, default)
    context = {"weightwatcher_import_seconds": import_seconds, "command_seconds_default_model": command_seconds,
               "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "original_reported_seconds_6x768": ORIGINAL_SECONDS}
    print(json.dumps(context), flush=True)

    lines = ["| profile | encoder parameters | matrices | BLAS threads | s per model (median) | first run s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['profile']} | {r['parameters']:,} | {r['matrices']} | {r['config']['blas_threads']} | "
              f"{r['seconds_median']:.2f} | {r['seconds_first']:.2f} |" for r in rows]
    summary = (f"WeightWatcher: {rows[0]['seconds_median']:.2f} s per default model (analysis), "
               f"{command_seconds:.2f} s for the whole command on one default model; import {import_seconds:.1f} s "
               f"once per process; the original reported {ORIGINAL_SECONDS} s on 6×768.")
    table = "\n".join(lines) + "\n\n" + summary
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"profiles": rows, **context}, indent=2))
        (out / "results.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
