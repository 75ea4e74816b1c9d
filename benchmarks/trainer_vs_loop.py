"""The Trainer path against a plain PyTorch loop: samples/s and test MCC side by side, same seeds, one run.

Issue 15 moved classifier training onto ``transformers.Trainer``. This script trains the same model on
the same split twice per seed: once through the project's ``train_classifier`` (Trainer, callbacks,
checkpoints, baselines, report), once through the minimal loop the hand-written engine reduced to
(AdamW, linear warm-up, gradient clipping, the best epoch on validation, no files). The loop is the
reference for speed, so it does nothing the Trainer path does not also do; the Trainer path's extra
work (checkpoints, history, the report) is part of its time, as a user pays it.

Usage::

    python benchmarks/trainer_vs_loop.py --seeds 1 2 3 [--epochs 8] [--threads 1] [--out runs/trainer_vs_loop]

The default profile (3-mers, BERT 2 × 128, 8 epochs) is the one the README's Performance table uses.
Rows are kept in ``OUT/results.json`` as each finishes; a later run with the same ``--out`` skips them.
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

from reporting import mean_sd  # noqa: E402

from genomenlp.components.configs import DatasetConfig, KmerConfig  # noqa: E402
from genomenlp.components.stages import create_dataset, make_kmer_tokenizer  # noqa: E402
from genomenlp.components.storage import write_text_atomic  # noqa: E402
from genomenlp.components.training.config import ModelConfig, TrainConfig  # noqa: E402
from genomenlp.components.training.run import TrainingData, load_training_data, train_classifier  # noqa: E402

DATA = [str(ROOT / "data" / "ecoli_promoter" / name) for name in ("promoter.fasta.gz", "non_promoter.fasta.gz")]


def loop_train(loaded, model_config: ModelConfig, config: TrainConfig) -> dict:
    """Train with a plain loop; return the test MCC at the best validation epoch and the samples/s."""
    import numpy as np
    import torch
    from transformers import get_linear_schedule_with_warmup

    from genomenlp.components.tokenisers.common import BOS, EOS, PAD
    from genomenlp.components.training.data import batches
    from genomenlp.components.training.metrics import classification_metrics, positive_index
    from genomenlp.components.training.model import build_classifier

    vocab = loaded.tokenizer.tokenizer.get_vocab()
    pad = vocab[PAD]
    positive = positive_index(loaded.names, config.positive_label)
    torch.manual_seed(config.seed)
    model = build_classifier(model_config, len(vocab), loaded.names, {t: vocab[t] for t in (BOS, EOS, PAD)})
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=config.learning_rate,
                                  betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon)
    train = loaded.splits["train"]
    steps = -(-len(train) // config.per_device_train_batch_size) * config.num_train_epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)

    def probabilities(split) -> np.ndarray:
        model.eval()
        with torch.inference_mode():
            parts = [torch.softmax(model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits,
                                   -1).numpy()
                     for ids, mask, _ in batches(split, config.per_device_eval_batch_size, pad)]
        return np.concatenate(parts)

    rng = np.random.default_rng(config.seed)
    best, best_state, train_seconds = -np.inf, None, 0.0
    for _ in range(config.num_train_epochs):
        model.train()
        started = time.perf_counter()
        for ids, mask, labels in batches(train, config.per_device_train_batch_size, pad, rng):
            loss = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                         labels=torch.from_numpy(labels)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        valid = classification_metrics(loaded.splits["valid"].labels, probabilities(loaded.splits["valid"]), "eval_",
                                       positive)
        train_seconds += time.perf_counter() - started
        if valid[config.metric_for_best_model] > best:
            best = valid[config.metric_for_best_model]
            best_state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model.load_state_dict(best_state)
    test = classification_metrics(loaded.splits["test"].labels, probabilities(loaded.splits["test"]), "test_", positive)
    return {"test_mcc": test["test_mcc"], "train_seconds": train_seconds,
            "samples_per_second": len(train) * config.num_train_epochs / train_seconds}


def run_seed(seed: int, epochs: int, out: Path) -> dict:
    """One seed's split, trained by both engines."""
    data_dir = out / f"data_{seed}"
    tokenizer = make_kmer_tokenizer(DATA, KmerConfig(k=3))
    create_dataset(DATA, tokenizer, DatasetConfig(seed=seed), str(data_dir), overwrite=True, show_progress=False)
    (data_dir / "tokens.json").write_text(tokenizer.to_json())
    data = TrainingData(str(data_dir / "train.parquet"), "parquet", str(data_dir / "tokens.json"))
    model, training = ModelConfig(), TrainConfig(num_train_epochs=epochs, seed=seed)
    summary = train_classifier(data, model, training, str(out / f"trainer_{seed}"), overwrite=True,
                               show_progress=False, on_epoch=None)
    trainer_samples = len(load_training_data(data).splits["train"]) * epochs / summary["train_seconds"]
    loop = loop_train(load_training_data(data), model, training)
    return {"seed": seed, "trainer_test_mcc": summary["test_mcc"], "trainer_samples_per_second": trainer_samples,
            "loop_test_mcc": loop["test_mcc"], "loop_samples_per_second": loop["samples_per_second"]}


def main() -> None:
    """Train both engines on each seed and print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: comparable on a shared machine)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "trainer_vs_loop")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    rows = json.loads(results_path.read_text()) if results_path.exists() else []
    for seed in args.seeds:
        if any(row["seed"] == seed and row.get("epochs") == args.epochs for row in rows):
            continue
        rows.append({**run_seed(seed, args.epochs, args.out), "epochs": args.epochs})
        write_text_atomic(results_path, json.dumps(rows, indent=2) + "\n", overwrite=True)
    rows = [row for row in rows if row["seed"] in args.seeds and row.get("epochs") == args.epochs]
    print(f"{'seed':>4}  {'Trainer MCC':>11}  {'loop MCC':>8}  {'Trainer samples/s':>17}  "
          f"{'loop samples/s':>14}  ratio")
    for row in rows:
        ratio = row["trainer_samples_per_second"] / row["loop_samples_per_second"]
        print(f"{row['seed']:>4}  {row['trainer_test_mcc']:>11.3f}  {row['loop_test_mcc']:>8.3f}  "
              f"{row['trainer_samples_per_second']:>17.1f}  {row['loop_samples_per_second']:>14.1f}  {ratio:.3f}")
    for key, label in (("test_mcc", "test MCC"), ("samples_per_second", "samples/s")):
        print(f"{label}: Trainer {mean_sd([r[f'trainer_{key}'] for r in rows])}, "
              f"loop {mean_sd([r[f'loop_{key}'] for r in rows])}")
    ratios = [r["trainer_samples_per_second"] / r["loop_samples_per_second"] for r in rows]
    print(f"Trainer / loop samples/s: {mean_sd(ratios)} (target: within 10%, i.e. ≥ 0.90)")


if __name__ == "__main__":
    main()
