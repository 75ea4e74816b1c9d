"""How much the original toolkit's leaky split inflates test figures, beside our leakage-free split.

The original's ``create_dataset_bio`` adds the reverse complement of every sequence *before* a
row-level random 90/5/5 split (13,528 rows from the bundled 6,764 records), so a sequence and its
reverse complement — the same molecule read from the other strand — often land on opposite
sides. That split is rebuilt here from the bundled FASTA (row order permuted with a seeded
generator, where the original drew an unseeded one) and written as a manifest-free folder of
parquet files with the columns ``create_dataset_bio`` writes (idx, feature, labels, input_ids,
token_type_ids, attention_mask) plus ``tokenizer.json``. The leakage-free arm is
``create_dataset`` with the default ``DatasetConfig`` (a molecule and its reverse complement
never straddle splits; reverse-complement copies in train only).

Both arms use the same k=3 tokeniser, model shape and training settings and the same seed, and
are trained with ``train_classifier``. Reported per arm: test MCC / ROC-AUC / weighted F1, the
1–4-mer logistic-regression baseline fitted on the same split (leakage inflates it too), the share
of test rows whose reverse complement is a train row and the share whose molecule (itself or its
reverse complement) is in train; for the leaky arm also the figures on its test rows whose
molecule is *not* in train.

Prints one JSON line per (arm, seed), then a Markdown table (mean ± sd over seeds); ``--out``
keeps ``results.json``, ``results.md`` and the runs. Default (1 seed, 2 epochs, BERT 2×128): about
3 minutes on 2 cores with ``--threads 1``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reporting import mean_sd  # noqa: E402

from genomenlp.components.configs import DatasetConfig, KmerConfig  # noqa: E402
from genomenlp.components.fasta import read_fasta  # noqa: E402
from genomenlp.components.sequences import reverse_complement  # noqa: E402
from genomenlp.components.stages import TOKENIZER_FILE, create_dataset, make_kmer_tokenizer  # noqa: E402
from genomenlp.components.training.config import Device, ModelConfig, TrainConfig  # noqa: E402
from genomenlp.components.training.metrics import classification_metrics  # noqa: E402
from genomenlp.components.training.run import PREDICTIONS_FILE, TrainingData, train_classifier  # noqa: E402

CLASSES = {"promoter": ROOT / "data" / "ecoli_promoter" / "promoter.fasta.gz",
           "non_promoter": ROOT / "data" / "ecoli_promoter" / "non_promoter.fasta.gz"}
ARMS = ("leaky", "leakage_free")
SHOWN = {"test_mcc": "MCC", "test_roc_auc": "ROC-AUC", "test_f1": "weighted F1"}
FRACTIONS = (0.90, 0.05, 0.05)  # train, test, valid: the original's defaults


def write_inputs(records: int | None, folder: Path) -> list[str]:
    """The class files (the first ``records`` of each bundled class when given), as plain FASTA."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, source in CLASSES.items():
        path = folder / f"{name}.fasta"
        with open(path, "w", encoding="ascii") as handle:
            for number, record in enumerate(read_fasta(str(source))):
                if records is not None and number == records:
                    break
                handle.write(f">{record.id}\n{record.sequence}\n")
        paths.append(str(path))
    return paths


def leaky_dataset(paths: list[str], tokenizer, seed: int, folder: Path) -> None:
    """The original's split: every sequence and its reverse complement as rows, then a row-level random split."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    features, labels = [], []
    for label, path in enumerate(paths):
        for record in read_fasta(path):
            features += [record.sequence, reverse_complement(record.sequence)]
            labels += [label, label]
    order = np.random.default_rng(seed).permutation(len(features))
    train_end = int(round(FRACTIONS[0] * len(order)))
    test_end = train_end + int(round(FRACTIONS[1] * len(order)))
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("idx", pa.int64()), ("feature", pa.string()), ("labels", pa.int64()),
                        ("input_ids", pa.list_(pa.int32())), ("token_type_ids", pa.list_(pa.int8())),
                        ("attention_mask", pa.list_(pa.int8()))])
    for split, rows in (("train", order[:train_end]), ("test", order[train_end:test_end]), ("valid", order[test_end:])):
        texts = [features[row] for row in rows]
        encodings = tokenizer.encode_batch(texts, 512)
        table = pa.Table.from_pydict({
            "idx": list(range(len(rows))), "feature": texts, "labels": [labels[row] for row in rows],
            "input_ids": [e.ids for e in encodings], "token_type_ids": [e.type_ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings]}, schema=schema)
        pq.write_table(table, folder / f"{split}.parquet")
    (folder / TOKENIZER_FILE).write_text(tokenizer.to_json())


def overlap(folder: Path) -> dict:
    """Rows of test whose reverse complement, or whose molecule (itself or its reverse complement), is in train."""
    import pandas as pd

    train = set(pd.read_parquet(folder / "train.parquet", columns=["feature"])["feature"])
    test = pd.read_parquet(folder / "test.parquet", columns=["feature"])["feature"].tolist()
    rc_in_train = [reverse_complement(feature) in train for feature in test]
    molecule_in_train = [feature in train or rc for feature, rc in zip(test, rc_in_train, strict=True)]
    return {"test_rows": len(test), "test_rc_in_train_share": sum(rc_in_train) / len(test),
            "test_molecule_in_train_share": sum(molecule_in_train) / len(test), "molecule_in_train": molecule_in_train}


def unseen_figures(run: Path, seen: list[bool]) -> dict:
    """Test MCC / ROC-AUC / weighted F1 over the test rows whose molecule is not in train."""
    import numpy as np

    with open(run / PREDICTIONS_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [key for key in rows[0] if key.startswith("p_")]
    keep = [int(row["row"]) for row in rows if not seen[int(row["row"])]]
    if not keep:
        return {}
    labels = np.array([names.index(f"p_{rows[i]['label']}") for i in keep])
    probabilities = np.array([[float(rows[i][name]) for name in names] for i in keep])
    figures = classification_metrics(labels, probabilities, "test_")
    return {f"unseen_{key}": figures[key] for key in SHOWN} | {"unseen_test_rows": len(keep)}



def main() -> None:
    """Build both splits per seed, train the same model on each, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="split and training seeds (default: 1)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of both arms (default: 2)")
    parser.add_argument("--layers", type=int, default=ModelConfig().num_layers)
    parser.add_argument("--hidden_size", type=int, default=ModelConfig().hidden_size,
                        help="width (heads: width / 32, feed-forward: 4 × width)")
    parser.add_argument("--batch_size", type=int, default=TrainConfig().per_device_train_batch_size)
    parser.add_argument("--learning_rate", type=float, default=TrainConfig().learning_rate)
    parser.add_argument("--k", type=int, default=3, help="k-mer length of the tokeniser (default: 3)")
    parser.add_argument("--records", type=int, default=None, help="first N records per class only (quick checks)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", choices=[d.value for d in Device], default="auto")
    parser.add_argument("--out", default="runs/bench_leaky_split")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = ModelConfig(num_layers=args.layers, hidden_size=args.hidden_size, num_heads=max(1, args.hidden_size // 32),
                        intermediate_size=4 * args.hidden_size)
    paths = write_inputs(args.records, out / "inputs")
    tokenizer = make_kmer_tokenizer(paths, KmerConfig(k=args.k))
    rows = []
    for seed in args.seeds:
        training = TrainConfig(num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
                               learning_rate=args.learning_rate, seed=seed, device=Device(args.device))
        for arm in ARMS:
            data_dir = out / f"data_{arm}_{seed}"
            if arm == "leaky":
                leaky_dataset(paths, tokenizer, seed, data_dir)
            else:
                create_dataset(paths, tokenizer, DatasetConfig(seed=seed), str(data_dir), overwrite=True,
                               show_progress=False)
            shared = overlap(data_dir)
            seen = shared.pop("molecule_in_train")
            started = time.perf_counter()
            summary = train_classifier(TrainingData(str(data_dir / "train.parquet"), "parquet",
                                                    str(data_dir / TOKENIZER_FILE)),
                                       model, training, str(out / f"run_{arm}_{seed}"), overwrite=True,
                                       show_progress=False, on_epoch=None)
            baseline = summary["baselines"]["kmer_1_4"]
            row = {"arm": arm, "seed": seed, **{key: summary[key] for key in SHOWN},
                   **{f"kmer_1_4_{key}": baseline[key] for key in SHOWN}, **shared,
                   **(unseen_figures(out / f"run_{arm}_{seed}", seen) if arm == "leaky" else {}),
                   "train_seconds": summary["train_seconds"], "wall_seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)

    lines = [f"{len(args.seeds)} seed(s); {model.architecture} {model.num_layers}×{model.hidden_size}, "
             f"{args.epochs} epochs, batch {args.batch_size}, lr {args.learning_rate:g}, {args.k}-mers.", "",
             "| split | test rows | test rows with RC in train | test molecule in train | test MCC | test ROC-AUC | "
             "test weighted F1 | 1–4-mer LR MCC | 1–4-mer LR ROC-AUC |", "|---|---|---|---|---|---|---|---|---|"]
    for arm in ARMS:
        mine = [row for row in rows if row["arm"] == arm]
        share = statistics.mean(row["test_rc_in_train_share"] for row in mine)
        molecule = statistics.mean(row["test_molecule_in_train_share"] for row in mine)
        figures = " | ".join(mean_sd([row[key] for row in mine]) for key in SHOWN)
        lines.append(f"| {arm.replace('_', '-')} | {mine[0]['test_rows']:,} | {share:.1%} | {molecule:.1%} | "
                     f"{figures} | "
                     f"{mean_sd([row['kmer_1_4_test_mcc'] for row in mine])} | "
                     f"{mean_sd([row['kmer_1_4_test_roc_auc'] for row in mine])} |")
    leaky = [row for row in rows if row["arm"] == "leaky" and "unseen_test_mcc" in row]
    if leaky:
        figures = " | ".join(mean_sd([row[f"unseen_{key}"] for row in leaky]) for key in SHOWN)
        lines.append(f"| leaky, only test rows whose molecule is not in train | {leaky[0]['unseen_test_rows']:,} | "
                     f"0.0% | 0.0% | {figures} | — | — |")
    table = "\n".join(lines)
    results = {"model": model.model_dump(mode="json"), "epochs": args.epochs, "batch_size": args.batch_size,
               "learning_rate": args.learning_rate, "k": args.k, "records_per_class": args.records,
               "seeds": args.seeds, "torch_threads": torch.get_num_threads(), "rows": rows}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
