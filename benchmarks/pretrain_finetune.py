"""Fine-tuning from a pre-trained encoder against training from random weights, on the bundled promoter task.

For every seed: the leakage-free dataset of that split seed (3-mer tokens by default). One encoder is
pre-trained by masked-language modelling on the bundled E. coli genome with every genome position
of any seed's valid or test sequence masked out (either strand), so it is leakage-free for every
split at once and its cost is paid once. Then, per seed, two classifiers with identical settings —
same epochs, learning rate, batch and seed, i.e. equal fine-tuning budget — one from random
weights, one from the encoder (new head). Test MCC / ROC-AUC / weighted F1 (mean ± sd over seeds)
beside the k-mer baseline, plus the pre-training cost: wall time, tokens/s and, on CUDA, model FLOP
utilisation (6 × parameters × tokens/s ÷ the GPU's dense bf16 peak, as in pretrain_speed.py).

Prints one JSON line per classifier, then the Markdown tables; ``--out`` keeps ``results.json`` and
``results.md``, and ``progress.json`` after every stage: run the same command again to continue
an interrupted run. Example (~1 h of pre-training and ~1 h of fine-tuning on 2 CPU cores):
``.venv/bin/python benchmarks/pretrain_finetune.py --seeds 5 --out runs/bench_pretrain_finetune``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pretrain_speed import GENOME, peak_flops  # noqa: E402
from reporting import mean_sd  # noqa: E402

from genomenlp.components.configs import DatasetConfig, KmerConfig  # noqa: E402
from genomenlp.components.pretraining.config import PretrainConfig  # noqa: E402
from genomenlp.components.pretraining.mlm import pretrain_encoder  # noqa: E402
from genomenlp.components.stages import TOKENIZER_FILE, create_dataset, make_kmer_tokenizer  # noqa: E402
from genomenlp.components.storage import write_text_atomic  # noqa: E402
from genomenlp.components.training.config import Device, ModelConfig, TrainConfig  # noqa: E402
from genomenlp.components.training.run import TrainingData, train_classifier  # noqa: E402

DATA = [str(ROOT / "data" / "ecoli_promoter" / name) for name in ("promoter.fasta.gz", "non_promoter.fasta.gz")]
ARMS = ("random_init", "pretrained")
SHOWN = {"test_mcc": "MCC", "test_roc_auc": "ROC-AUC", "test_f1": "weighted F1"}




def build_datasets(seeds: list[int], k: int, out: Path) -> dict[int, Path]:
    """One leakage-free dataset folder per split seed, all encoded with the same k-mer tokeniser."""
    tokenizer = make_kmer_tokenizer(DATA, KmerConfig(k=k))
    folders = {}
    for seed in seeds:
        folder = out / f"data_{seed}"
        create_dataset(DATA, tokenizer, DatasetConfig(seed=seed), str(folder), overwrite=True, show_progress=False)
        folders[seed] = folder
    return folders


def pretrain(datasets: dict[int, Path], model: ModelConfig, config: PretrainConfig, out: Path) -> dict:
    """Pre-train the encoder once, without any seed's valid or test sequences; its cost figures."""
    import torch

    tokens = str(next(iter(datasets.values())) / TOKENIZER_FILE)
    started = time.perf_counter()
    summary = pretrain_encoder([str(GENOME)], tokens, str(out / "pretrain"), model, config,
                               [str(folder) for folder in datasets.values()], overwrite=True, show_progress=False)
    wall = time.perf_counter() - started
    device = summary["device"]
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = peak_flops(name) if device == "cuda" else None
    flops = 6 * summary["parameters"] * summary["tokens_per_second"]
    return {"encoder": summary["encoder"], "device": name, "torch_threads": torch.get_num_threads(),
            "steps": summary["steps"], "batch_size": config.per_device_train_batch_size, "window": summary["window"],
            "tokens_seen": summary["tokens_seen"], "tokens_per_second": round(summary["tokens_per_second"], 1),
            "train_seconds": summary["train_seconds"], "wall_seconds": round(wall, 2),
            "final_mlm_loss": summary["mlm_loss"], "final_mlm_accuracy": summary["mlm_accuracy"],
            "bases_removed": summary["bases_removed"], "held_out_sequences": summary["exclusion"]["held_out_sequences"],
            "held_out_found": summary["exclusion"]["held_out_found"], "parameters": summary["parameters"],
            "mfu": round(flops / peak, 4) if peak else None}


def fine_tune(arm: str, seed: int, dataset: Path, model: ModelConfig, training: TrainConfig, encoder: str,
              out: Path) -> dict:
    """Train one classifier of ``arm`` on the split of ``seed``; its test figures and the k-mer baseline's."""
    settings = training.model_copy(update={"seed": seed, "init_from": encoder if arm == "pretrained" else None})
    data = TrainingData(str(dataset / "train.parquet"), "parquet", str(dataset / TOKENIZER_FILE))
    summary = train_classifier(data, model, settings, str(out / f"{arm}_{seed}"), overwrite=True,
                               show_progress=False, on_epoch=None)
    baseline = summary["baselines"]["kmer_1_4"]
    return {"arm": arm, "seed": seed, **{key: summary[key] for key in SHOWN}, "best_epoch": summary["best_epoch"],
            "train_seconds": summary["train_seconds"],
            **{f"kmer_1_4_{key}": baseline[key] for key in SHOWN}}


def tables(rows: list[dict], cost: dict, training: TrainConfig, seeds: int) -> str:
    """The quality table (mean ± sd over seeds) and the pre-training cost table, in Markdown."""
    lines = [f"Fine-tuning budget per classifier: {training.num_train_epochs} epochs, learning rate "
             f"{training.learning_rate:g}, batch {training.per_device_train_batch_size}; mean ± sd over {seeds} "
             "split seed(s).", "",
             "| start | test MCC | test ROC-AUC | test weighted F1 | train s |", "|---|---|---|---|---|"]
    for arm in ARMS:
        mine = [row for row in rows if row["arm"] == arm]
        if not mine:
            continue
        figures = " | ".join(mean_sd([row[key] for row in mine]) for key in SHOWN)
        lines.append(f"| {arm.replace('_', ' ')} | {figures} | {mean_sd([row['train_seconds'] for row in mine], 1)} |")
    baseline = " | ".join(mean_sd([row[f"kmer_1_4_{key}"] for row in rows if row["arm"] == rows[0]["arm"]])
                         for key in SHOWN)
    lines += [f"| 1–4-mer logistic regression | {baseline} | — |", "",
              "| pre-training | device | threads | steps × batch × window | tokens/s | wall s | final MLM loss | "
              "bases removed | MFU |", "|---|---|---|---|---|---|---|---|---|"]
    mfu = f"{cost['mfu']:.1%}" if cost["mfu"] is not None else "–"
    lines.append(f"| {cost['parameters']:,} parameters | {cost['device']} | {cost['torch_threads']} | "
                 f"{cost['steps']} × {cost['batch_size']} × {cost['window']} | {cost['tokens_per_second']:,.0f} | "
                 f"{cost['wall_seconds']:.0f} | {cost['final_mlm_loss']:.3f} | {cost['bases_removed']:,} | {mfu} |")
    return "\n".join(lines)


def main() -> None:
    """Build the splits, pre-train once, fine-tune both arms per seed, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="split (and training) seeds 1…N (default: 5)")
    parser.add_argument("--k", type=int, default=3, help="k-mer length of the tokeniser (default: 3)")
    parser.add_argument("--pretrain_steps", type=int, default=600, help="MLM optimiser steps (default: 600)")
    parser.add_argument("--pretrain_batch_size", type=int, default=32, help="windows per MLM step (default: 32)")
    parser.add_argument("--pretrain_learning_rate", type=float, default=5e-4)
    parser.add_argument("--epochs", type=int, default=TrainConfig().num_train_epochs,
                        help="fine-tuning epochs of both arms (default: the training default)")
    parser.add_argument("--learning_rate", type=float, default=TrainConfig().learning_rate,
                        help="fine-tuning learning rate of both arms")
    parser.add_argument("--batch_size", type=int, default=TrainConfig().per_device_train_batch_size)
    parser.add_argument("--device", choices=[d.value for d in Device], default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                        help="which starts to fine-tune (random_init equals train_quality.py's default profile on "
                             "the same seeds, so a run may skip it)")
    parser.add_argument("--out", default="runs/bench_pretrain_finetune")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(1, args.seeds + 1))
    model = ModelConfig()
    pretraining = PretrainConfig(max_steps=args.pretrain_steps, per_device_train_batch_size=args.pretrain_batch_size,
                                 learning_rate=args.pretrain_learning_rate, device=Device(args.device),
                                 logging_steps=min(50, args.pretrain_steps), checkpoint_every=args.pretrain_steps)
    training = TrainConfig(num_train_epochs=args.epochs, learning_rate=args.learning_rate,
                           per_device_train_batch_size=args.batch_size, device=Device(args.device))

    settings = {"model": model.model_dump(mode="json"), "pretraining": pretraining.model_dump(mode="json"),
                "fine_tuning": training.model_dump(mode="json", exclude={"init_from"}), "k": args.k}
    # Progress is kept after every stage, so an interrupted run continues where it stopped (same settings).
    progress_file = out / "progress.json"
    progress = json.loads(progress_file.read_text()) if progress_file.exists() else {}
    if progress.get("settings") != settings:
        progress = {"settings": settings, "pretraining": None, "rows": []}
    datasets = {seed: out / f"data_{seed}" for seed in seeds}
    if progress["pretraining"] is None or not all((folder / TOKENIZER_FILE).exists() for folder in datasets.values()):
        datasets = build_datasets(seeds, args.k, out)
        progress["pretraining"] = pretrain(datasets, model, pretraining, out)
        write_text_atomic(progress_file, json.dumps(progress, indent=2), overwrite=True)
    cost = progress["pretraining"]
    print(json.dumps({"pretraining": cost}), flush=True)
    done = {(row["arm"], row["seed"]) for row in progress["rows"]}
    for seed in seeds:
        for arm in args.arms:
            if (arm, seed) in done:
                continue
            row = fine_tune(arm, seed, datasets[seed], model, training, cost["encoder"], out)
            progress["rows"].append(row)
            write_text_atomic(progress_file, json.dumps(progress, indent=2), overwrite=True)
            print(json.dumps(row), flush=True)
    rows = [row for row in progress["rows"] if row["seed"] in seeds]
    table = tables(rows, cost, training, len(seeds))
    results = {"pretraining": cost, **{key: settings[key] for key in ("model", "fine_tuning", "k")}, "seeds": seeds,
               "rows": rows}
    write_text_atomic(out / "results.json", json.dumps(results, indent=2), overwrite=True)
    write_text_atomic(out / "results.md", table + "\n", overwrite=True)
    print(table)


if __name__ == "__main__":
    main()
