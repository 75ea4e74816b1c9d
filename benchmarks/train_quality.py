"""Model quality and training time on the bundled data, leakage-free split, several split seeds.

For every seed: build the dataset (k-mer tokens by default), train the default profile, and
record test figures beside the baselines fitted on the same split, plus the time to reach weighted
F1 ≥ 0.79 on valid. ``--with_original`` also trains the original toolkit's configuration
(Unigram 32,000, DistilBERT 6×768, batch 16, lr 7.8e-5, weight decay 0.5, 2 epochs) on the same
splits, so the speed ratio comes from one invocation on one machine.

Rows are kept in ``OUT/results.json`` as each finishes; a later invocation with the same ``--out``
skips the (profile, seed) pairs already there, so a long run can be continued or extended.
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

from pretrain_speed import peak_flops  # noqa: E402
from reporting import mean_sd  # noqa: E402

from genomenlp.components.configs import DatasetConfig, KmerConfig, TokeniseConfig  # noqa: E402
from genomenlp.components.stages import create_dataset, learn_tokenizer, make_kmer_tokenizer  # noqa: E402
from genomenlp.components.storage import write_text_atomic  # noqa: E402
from genomenlp.components.training.config import Architecture, ModelConfig, TrainConfig  # noqa: E402
from genomenlp.components.training.run import TrainingData, train_classifier  # noqa: E402

DATA = [str(ROOT / "data" / "ecoli_promoter" / name) for name in ("promoter.fasta.gz", "non_promoter.fasta.gz")]
DEFAULT_PROFILE = ROOT / "genomenlp" / "pipelines" / "configs" / "training_pipeline.yaml"
F1_TARGET = 0.79
ORIGINAL_MODEL = ModelConfig(architecture=Architecture.DISTILBERT, num_layers=6, hidden_size=768, num_heads=12,
                             intermediate_size=3072, max_positions=512)
ORIGINAL_TRAINING = TrainConfig(learning_rate=7.796477400405317e-05, per_device_train_batch_size=16, num_train_epochs=2,
                                weight_decay=0.5, warmup_ratio=0.0, metric_for_best_model="eval_loss")


def profile_settings(config: Path) -> dict:
    """The k-mer length and the dataset, model and training fields of a pipeline config (its sweep aside)."""
    import yaml

    parameters = yaml.safe_load(config.read_text())["parameters"]
    return {"k": parameters["kmer"]["k"], "model": parameters["model"], "folds": parameters.get("folds", 5),
            "dataset": {key: value for key, value in parameters["dataset"].items() if key != "seed"},
            "training": {key: value for key, value in parameters["training"].items() if key not in ("seed", "device")}}


def seconds_to_target(history: list[dict]) -> float | None:
    """Training seconds until the validation weighted F1 first reaches the target."""
    elapsed = 0.0
    for row in history:
        elapsed += row["epoch_seconds"]
        if row["eval_f1"] >= F1_TARGET:
            return elapsed
    return None


def throughput_figures(data_dir: Path, epochs: int, train_seconds: float, parameters: int) -> dict:
    """Samples/s and real (unpadded) tokens/s over the whole training time (validation passes included).

    On CUDA also the model FLOP utilisation: 6 × parameters (all, as pretrain_speed.py counts them)
    × tokens/s over the GPU's dense bf16 peak.
    """
    import pyarrow.parquet as pq
    import torch

    masks = pq.read_table(data_dir / "train.parquet", columns=["attention_mask"]).column("attention_mask")
    tokens_per_second = sum(sum(mask) for mask in masks.to_pylist()) * epochs / train_seconds
    peak = peak_flops(torch.cuda.get_device_name()) if torch.cuda.is_available() else None
    return {"train_samples_per_second": round(len(masks) * epochs / train_seconds, 1),
            "train_tokens_per_second": round(tokens_per_second, 1),
            "mfu": round(6 * parameters * tokens_per_second / peak, 4) if peak else None}


def read_history(run_dir: Path) -> list[dict]:
    """A training run's per-epoch rows."""
    import csv

    with open(run_dir / "history.csv") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def run_profile(name, tokenizer_factory, model, training, seed, out: Path, folds: int = 0,
                cv_epochs: int | None = None, dataset: dict | None = None, choose_epoch_by_cv: bool = False) -> dict:
    """Build one seed's dataset, train one profile on it and return its figures.

    With ``choose_epoch_by_cv``, as the training pipeline does: cross-validate the profile with ``folds``
    folds on the split's training rows first, and stop the final model at the epoch the folds' held-out
    rows chose. Otherwise the model keeps its best epoch on valid, and ``folds`` adds a cross-validation
    (``cv_epochs`` per fold) afterwards, beside the baseline on the same folds.
    """
    from genomenlp.components.training.epoch_choice import stop_epoch_from

    data_dir, run_dir = out / f"data_{name}_{seed}", out / f"run_{name}_{seed}"
    tokenizer = tokenizer_factory()
    create_dataset(DATA, tokenizer, DatasetConfig(**{**(dataset or {}), "seed": seed}), str(data_dir), overwrite=True,
                   show_progress=False)
    (data_dir / "tokens.json").write_text(tokenizer.to_json())
    data = TrainingData(str(data_dir / "train.parquet"), "parquet", str(data_dir / "tokens.json"))
    training = training.model_copy(update={"seed": seed})
    cv, chosen = {}, {"epoch_choice": "validation"}
    if choose_epoch_by_cv:
        cv, result = cv_figures(data, model, training, folds, out / f"cv_{name}_{seed}")
        stop = stop_epoch_from(result, training)["stop_at_epoch"]
        training = TrainConfig(**{**training.model_dump(), "stop_at_epoch": stop})
        chosen = {"epoch_choice": "cross_validation", "chosen_epoch": stop}
    summary = train_classifier(data, model, training, str(run_dir), overwrite=True, show_progress=False, on_epoch=None)
    history = read_history(run_dir)
    if choose_epoch_by_cv:
        cv.update(ensemble_row(data, run_dir, out / f"cv_{name}_{seed}", result, out / f"ensemble_{name}_{seed}",
                               summary))
    if folds and not choose_epoch_by_cv:
        cv, _ = cv_figures(data, model, training.model_copy(update={"num_train_epochs": cv_epochs
                                                                    or training.num_train_epochs}),
                           folds, out / f"cv_{name}_{seed}")
    return {"profile": name, "seed": seed, "test_mcc": summary["test_mcc"], "test_roc_auc": summary["test_roc_auc"],
            "test_f1": summary["test_f1"], "train_seconds": summary["train_seconds"],
            **throughput_figures(data_dir, len(history), summary["train_seconds"], summary["parameters"]),
            "seconds_to_f1_079": seconds_to_target(history), "parameters": summary["parameters"],
            "kmer_baseline_mcc": summary["baselines"]["kmer_1_4"]["test_mcc"],
            "kmer_baseline_roc_auc": summary["baselines"]["kmer_1_4"]["test_roc_auc"],
            "kmer_baseline_f1": summary["baselines"]["kmer_1_4"]["test_f1"],
            "gc_baseline_mcc": summary["baselines"]["gc_content"]["test_mcc"], "engine": training_engine(),
            "model_epoch": summary["model_epoch"], **chosen, **cv}


def cv_figures(data, model, training, folds: int, out_dir: Path) -> tuple[dict, dict]:
    """Cross-validated MCC of the model and of the 1–4-mer baseline on the same folds, its cost and epoch choice.

    Returns:
        Those figures (a results row's columns) and the whole ``cv_metrics.json`` content.
    """
    from genomenlp.components.training.cross_validation import cross_validate

    started = time.perf_counter()
    # Not overwritten: folds finished by an interrupted invocation (a cv_state.json, no cv_metrics.json) are kept.
    result = cross_validate(data, model, training, folds, str(out_dir), overwrite=False, show_progress=False)
    summary, choice = result["summary"], result.get("epoch_choice") or {}
    return {"cv_folds": folds, "cv_epochs": training.num_train_epochs, "cv_mcc": summary["test_mcc"]["mean"],
            "cv_mcc_sd": summary["test_mcc"]["sd"], "cv_kmer_baseline_mcc": summary["kmer_1_4_test_mcc"]["mean"],
            "cv_chosen_epoch": choice.get("chosen_epoch"),
            "cv_seconds": round(time.perf_counter() - started, 1)}, result


def ensemble_row(data, run_dir: Path, cv_dir: Path, cv_result: dict, out_dir: Path, summary: dict) -> dict:
    """Test figures of the pipeline's ensemble: the final model and the fold models at the chosen epoch."""
    from genomenlp.components.training.ensemble import build_ensemble_folder, fold_model_dirs
    from genomenlp.components.training.run import load_training_data

    members = [("final model", run_dir / "model_files"), *fold_model_dirs(cv_dir, cv_result)]
    figures = build_ensemble_folder(members, out_dir, load_training_data(data), summary["roc_positive_label"],
                                    summary["baselines"], overwrite=True)
    return {"ensemble_members": len(members), "ensemble_test_mcc": figures["test_mcc"],
            "ensemble_test_roc_auc": figures["test_roc_auc"], "ensemble_test_f1": figures["test_f1"]}


def paired_lead(rows: list[dict]) -> str:
    """Test MCC over the 1–4-mer baseline on the same split: mean ± sd over seeds, and the smallest."""
    leads = [row["test_mcc"] - row["kmer_baseline_mcc"] for row in rows]
    return f"{mean_sd(leads)} ({min(leads):+.3f})"


def epochs_kept(rows: list[dict]) -> str:
    """The epoch each seed's model holds, and what chose it (rows before the epoch choice: not recorded)."""
    kept = [str(row.get("model_epoch", "?")) for row in rows]
    chosen_on = {row.get("epoch_choice", "validation") for row in rows}
    return f"{', '.join(kept)} ({'/'.join(sorted(chosen_on))})"


def training_engine() -> str:
    """What trained the rows: transformers.Trainer since the hand-written loop went (rows without it predate that)."""
    import accelerate
    import transformers

    return f"transformers.Trainer {transformers.__version__} (accelerate {accelerate.__version__})"


def baseline_figures(data_dir: Path, seed: int) -> dict:
    """The GC-content and 1–4-mer baselines' test figures on one stored split, as a result row holds them."""
    import pandas as pd

    from genomenlp.components.training.baselines import fit_baselines

    train, test = (pd.read_parquet(data_dir / f"{split}.parquet", columns=["feature", "labels"])
                   for split in ("train", "test"))
    fitted = fit_baselines(train.feature, train.labels, test.feature, test.labels, seed)
    kmer = fitted["kmer_1_4"]
    return {"kmer_baseline_mcc": kmer["test_mcc"], "kmer_baseline_roc_auc": kmer["test_roc_auc"],
            "kmer_baseline_f1": kmer["test_f1"], "gc_baseline_mcc": fitted["gc_content"]["test_mcc"]}




def add_cross_validation(rows: list[dict], profiles: list, args, out: Path, results: Path) -> None:
    """Cross-validate stored rows of the chosen profile that have no cross-validation yet, on their stored splits."""
    for name, _factory, model, training in profiles:
        for row in rows:
            if row["profile"] != name or row["seed"] not in args.seeds or "cv_mcc" in row:
                continue
            data_dir = out / f"data_{name}_{row['seed']}"
            data = TrainingData(str(data_dir / "train.parquet"), "parquet", str(data_dir / "tokens.json"))
            figures, _ = cv_figures(data, model, training.model_copy(update={
                "seed": row["seed"], "num_train_epochs": args.cv_epochs or training.num_train_epochs}),
                args.folds, out / f"cv_{name}_{row['seed']}")
            row.update(figures)
            print(json.dumps(row), flush=True)
            write_text_atomic(results, json.dumps(rows, indent=2), overwrite=True)


def main() -> None:
    """Run every profile on every seed; print JSON lines and a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--config", default=str(DEFAULT_PROFILE),
                        help="pipeline config whose kmer, dataset, model and training settings are the profile "
                             "(default: the training pipeline's, the default profile)")
    parser.add_argument("--k", type=int, help="k-mer length (default: the config's)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the config's)")
    parser.add_argument("--profile", default="default",
                        help="name of the profile's rows (a variant measured beside the default keeps its own rows)")
    parser.add_argument("--model", default="{}", help="JSON object of ModelConfig fields replacing the default's")
    parser.add_argument("--dataset", default="{}",
                        help='JSON object of DatasetConfig fields replacing the default\'s '
                             '(e.g. {"reverse_complement": "none"}; the seed is --seeds)')
    parser.add_argument("--training", default="{}",
                        help="JSON object of TrainConfig fields replacing the default's (num_train_epochs: --epochs)")
    parser.add_argument("--epoch_choice", choices=("cross_validation", "validation"), default="cross_validation",
                        help="cross_validation (the pipelines'): cross-validate first with --folds folds and stop the "
                             "model at the epoch their held-out rows chose; validation: keep the best epoch on the "
                             "validation split")
    parser.add_argument("--folds", type=int,
                        help="folds of the cross-validation (default: the config's folds with --epoch_choice "
                             "cross_validation, none otherwise); with --epoch_choice validation a cross-validation "
                             "after training (stored rows without one get one on their stored split)")
    parser.add_argument("--cv_epochs", type=int,
                        help="epochs of every fold with --epoch_choice validation (default: the profile's)")
    parser.add_argument("--with_original", action="store_true", help="also train the original's configuration")
    parser.add_argument("--only_original", action="store_true", help="train the original's configuration only")
    parser.add_argument("--refit_baselines", action="store_true",
                        help="refit the baselines of the rows already in OUT/results.json on their stored splits "
                             "(and add throughput figures to rows that lack them)")
    parser.add_argument("--out", default="runs/bench_train_quality")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = profile_settings(Path(args.config))
    dataset = {**base["dataset"], **json.loads(args.dataset)}
    k = args.k or base["k"]
    training = {**base["training"], **({"num_train_epochs": args.epochs} if args.epochs else {}),
                **json.loads(args.training)}
    profiles = [] if args.only_original else [
        (args.profile, lambda: make_kmer_tokenizer(DATA, KmerConfig(k=k)),
         ModelConfig(**{**base["model"], **json.loads(args.model)}), TrainConfig(**training))]
    if args.with_original or args.only_original:
        profiles.append(("original", lambda: learn_tokenizer(DATA, TokeniseConfig(vocab_size=32000), False),
                         ORIGINAL_MODEL, ORIGINAL_TRAINING))
    results = out / "results.json"
    rows = json.loads(results.read_text()) if results.exists() else []
    if args.refit_baselines:
        for row in rows:
            data_dir, run_dir = (out / f"{kind}_{row['profile']}_{row['seed']}" for kind in ("data", "run"))
            row.update(baseline_figures(data_dir, row["seed"]))
            if "train_samples_per_second" not in row:
                row.update(throughput_figures(data_dir, len(read_history(run_dir)), row["train_seconds"],
                                              row["parameters"]))
        write_text_atomic(results, json.dumps(rows, indent=2), overwrite=True)
    by_cv = args.epoch_choice == "cross_validation"
    if args.folds is None:
        args.folds = base["folds"] if by_cv else 0
    if by_cv and args.cv_epochs:
        parser.error("--cv_epochs is for --epoch_choice validation: folds that choose the epoch train the profile's")
    if args.folds and not by_cv:
        add_cross_validation(rows, profiles, args, out, results)
    done = {(row["profile"], row["seed"]) for row in rows}
    for seed in args.seeds:
        for name, factory, model, training in profiles:
            if (name, seed) in done:
                continue
            started = time.perf_counter()
            row = run_profile(name, factory, model, training, seed, out, args.folds, args.cv_epochs,
                              dataset if name == args.profile else None, by_cv and name == args.profile)
            row["wall_seconds"] = time.perf_counter() - started
            rows.append(row)
            print(json.dumps(row), flush=True)
            write_text_atomic(results, json.dumps(rows, indent=2), overwrite=True)
    lines = ["| profile | seeds | params | test MCC | test ROC-AUC | test weighted F1 | k-mer LR MCC "
             "| paired lead (min) | CV MCC | CV k-mer LR MCC | epoch kept (chosen on) | train s | samples/s "
             "| s to valid F1 ≥ 0.79 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(row["profile"] for row in rows):
        mine = [r for r in rows if r["profile"] == name]
        lines.append(f"| {name} | {len(mine)} | {mine[0]['parameters']:,} | {mean_sd([r['test_mcc'] for r in mine])} | "
                     f"{mean_sd([r['test_roc_auc'] for r in mine])} | {mean_sd([r['test_f1'] for r in mine])} | "
                     f"{mean_sd([r['kmer_baseline_mcc'] for r in mine])} | {paired_lead(mine)} | "
                     f"{mean_sd([r.get('cv_mcc') for r in mine])} | "
                     f"{mean_sd([r.get('cv_kmer_baseline_mcc') for r in mine])} | {epochs_kept(mine)} | "
                     f"{mean_sd([r['train_seconds'] for r in mine], 0)} | "
                     f"{mean_sd([r.get('train_samples_per_second') for r in mine], 0)} | "
                     f"{mean_sd([r['seconds_to_f1_079'] for r in mine], 0)} |")
        ensembles = [r for r in mine if "ensemble_test_mcc" in r]
        if ensembles:
            as_rows = [{**r, **{key: r[f"ensemble_{key}"] for key in ("test_mcc", "test_roc_auc", "test_f1")}}
                       for r in ensembles]
            lines.append(f"| {name}, ensemble of {ensembles[0]['ensemble_members']} | {len(as_rows)} | "
                         f"{as_rows[0]['parameters'] * ensembles[0]['ensemble_members']:,} | "
                         f"{mean_sd([r['test_mcc'] for r in as_rows])} | "
                         f"{mean_sd([r['test_roc_auc'] for r in as_rows])} | "
                         f"{mean_sd([r['test_f1'] for r in as_rows])} | "
                         f"{mean_sd([r['kmer_baseline_mcc'] for r in as_rows])} | {paired_lead(as_rows)} | "
                         "| | (the final model and the folds at their chosen epoch) | | | |")
    table = "\n".join(lines)
    write_text_atomic(out / "results.md", table + "\n", overwrite=True)
    print(table)
    print(f"training engine: {training_engine()}; samples/s per row: "
          + ", ".join(f"{r['profile']}/{r['seed']} {r.get('train_samples_per_second')} ({r.get('engine', 'loop')})"
                      for r in rows))


if __name__ == "__main__":
    main()
