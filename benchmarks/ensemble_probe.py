"""Would an ensemble beat one model? Test figures of stored train_quality.py runs, alone and averaged.

Reads what ``train_quality.py`` (cross-validated epoch choice) left in ``--runs``: each seed's test
split (``data_PROFILE_SEED``), final model (``run_PROFILE_SEED``) and the cross-validation's fold
models (``cv_PROFILE_SEED/fold_*``). Nothing is trained: it predicts the test rows with each model
and averages the class probabilities of the final model and the fold models, paired with the 1–4-mer
baseline the run stored. The probe that led to the product's ensembles (``ensemble``, the pipelines'
``ensemble_models``), which average logits rather than probabilities and take each fold at the
chosen epoch; ``train_quality.py`` measures those.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reporting import mean_sd  # noqa: E402

from genomenlp.components.storage import write_text_atomic  # noqa: E402


def test_probabilities(model_dir: Path, test_ids: list[list[int]]):
    """Class probabilities of the test rows from one stored model folder (the product's loader and forward)."""
    from genomenlp.components.model_io import load_model
    from genomenlp.components.training.ensemble import split_probabilities

    loaded = load_model(str(model_dir))
    return split_probabilities(loaded.model, loaded.tokenizer, test_ids)


def seed_row(runs: Path, profile: str, seed: int, stored: dict) -> dict:
    """Test MCC and ROC-AUC of the final model, the fold models' average and all of them averaged."""
    import numpy as np
    import pandas as pd

    from genomenlp.components.training.metrics import classification_metrics

    test = pd.read_parquet(runs / f"data_{profile}_{seed}" / "test.parquet", columns=["input_ids", "labels"])
    ids, labels = [list(row) for row in test.input_ids], test.labels.to_numpy()
    final = test_probabilities(runs / f"run_{profile}_{seed}" / "model_files", ids)
    folds = [test_probabilities(folder / "model_files", ids)
             for folder in sorted((runs / f"cv_{profile}_{seed}").glob("fold_*"))]
    row = {"seed": seed, "folds": len(folds), "kmer_baseline_mcc": stored["kmer_baseline_mcc"]}
    for name, probabilities in (("final", final), ("fold_mean", np.mean(folds, axis=0)),
                                ("ensemble", np.mean([final, *folds], axis=0))):
        figures = classification_metrics(labels, probabilities)
        row.update({f"{name}_mcc": figures["mcc"], f"{name}_roc_auc": figures["roc_auc"]})
    return row


def main() -> None:
    """One row per seed found in ``--runs`` (several folders: one invocation's seeds each); a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="train_quality.py --out folders")
    parser.add_argument("--profile", default="cv_epoch", help="the profile name of the rows to read")
    parser.add_argument("--out", default="runs/bench_ensemble_probe")
    args = parser.parse_args()
    rows = []
    for runs in map(Path, args.runs):
        for stored in json.loads((runs / "results.json").read_text()):
            if stored["profile"] == args.profile:
                rows.append(seed_row(runs, args.profile, stored["seed"], stored))
                print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda row: row["seed"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps(rows, indent=2), overwrite=True)
    lines = ["| model | seeds | test MCC | test ROC-AUC | paired lead over the 1–4-mer LR (smallest) |",
             "|---|---|---|---|---|"]
    for name, label in (("final", "final model"), ("fold_mean", "fold models, averaged"),
                        ("ensemble", "final and fold models, averaged")):
        leads = [row[f"{name}_mcc"] - row["kmer_baseline_mcc"] for row in rows]
        lines.append(f"| {label} | {len(rows)} | {mean_sd([row[f'{name}_mcc'] for row in rows])} | "
                     f"{mean_sd([row[f'{name}_roc_auc'] for row in rows])} | {mean_sd(leads)} ({min(leads):+.3f}) |")
    table = "\n".join(lines)
    write_text_atomic(out / "results.md", table + "\n", overwrite=True)
    print(table)


if __name__ == "__main__":
    main()
