"""ZenML's overhead per step and the cost of a cached re-run, for the dataset and training pipelines.

The dataset pipeline on a tiny input against calling its step functions directly, and the training
pipeline run again with unchanged inputs.

Runs in a throw-away ZenML store (``ZENML_CONFIG_PATH`` in a temporary folder, analytics off, set
before ZenML is imported; the working directory moves there too, so no ``.zen`` of the checkout is
touched), on the local orchestrator, with a seeded tiny FASTA pair (``--records`` × ``--length`` bp
per class) and the k-mer tokeniser (``kmer=KmerConfig(k=3)``, default ``DatasetConfig``).

- direct: the two heavy step functions' own code (``build_kmer_tokeniser.entrypoint`` then
  ``create_dataset.entrypoint``), the reference, timed in the same process;
- pipeline: ``dataset_pipeline.with_options(enable_cache=False)``, a fresh output folder each run.
  Its wall time minus the direct time is ZenML's overhead (its four steps: the input digests, the
  two heavy steps, the export to ``output_dir``); divided by the step count, the overhead per step.
  ZenML's own step start/end times split it into in-step overhead (inputs, outputs and their
  artifacts, step logs, metadata) and the rest (compiling, snapshot, run records, orchestration);
- cached: ``dataset_pipeline`` as shipped (cache on) run once to fill the cache, then the same call
  again and once more with a fresh output folder: both take the heavy steps from the cache
  (``output_dir`` is a parameter of the uncached export step only);
- training, cached re-run: ``training_pipeline`` on the same tiny data (1 × 16 BERT, 2 one-epoch
  sweep trials, 2 folds, interpretation of the first class file) run once, then again with
  unchanged inputs: every heavy step cached, the digests, promotion and export run.

The first pipeline run of the process (store creation, lazy imports) is reported apart; the
others are medians of ``--repeats`` runs. Prints JSON lines and a Markdown table; ``--out`` keeps
``results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STEPS = ("build_kmer_tokeniser", "create_dataset")
PIPELINE_STEPS = 4  # fingerprint_inputs, the two heavy steps, export_outputs
TRAINING_HEAVY_STEPS = ("build_kmer_tokeniser", "create_dataset", "sweep_hyperparameters", "train_classifier",
                        "cross_validate_model", "interpret_sequences")


def write_fasta_pair(folder: Path, records: int, length: int, seed: int) -> list[str]:
    """Two seeded random class files; the first class carries a planted motif."""
    rng = random.Random(seed)
    paths = []
    for name, motif in (("class_a", "TATAAT"), ("class_b", None)):
        path = folder / f"{name}.fasta"
        with open(path, "w", encoding="ascii") as handle:
            for index in range(records):
                sequence = "".join(rng.choice("ACGT") for _ in range(length))
                if motif:
                    start = rng.randrange(length - len(motif) + 1)
                    sequence = sequence[:start] + motif + sequence[start + len(motif):]
                handle.write(f">{name}_{index}\n{sequence}\n")
        paths.append(str(path))
    return paths


def isolate_zenml(home: Path) -> None:
    """Point ZenML at a throw-away store; must run before ZenML is imported."""
    if "zenml" in sys.modules:
        raise RuntimeError("ZenML was imported before its store could be isolated")
    os.environ.update({"ZENML_CONFIG_PATH": str(home / "config"), "ZENML_ANALYTICS_OPT_IN": "false",
                       "ZENML_LOGGING_COLORS_DISABLED": "true", "ZENML_LOGGING_VERBOSITY": "ERROR"})
    os.environ.pop("ZENML_REPOSITORY_PATH", None)
    os.chdir(home)


def main() -> None:
    """Time direct calls, pipeline runs and cached re-runs; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=40, help="records per class (default: 40)")
    parser.add_argument("--length", type=int, default=60, help="bases per record (default: 60)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each kind (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="folder for results.json and results.md (default: print only)")
    args = parser.parse_args()
    out = Path(args.out).resolve() if args.out else None

    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        cwd = os.getcwd()
        isolate_zenml(home)
        try:
            results = measure(home, args)
        finally:
            os.chdir(cwd)
    text = table(results)
    print(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
        (out / "results.md").write_text(text + "\n")


def measure(home: Path, args) -> dict:
    """All the timings, in the isolated store."""
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    import zenml  # noqa: F401
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import ExecutionStatus
    from zenml.utils import source_utils

    from genomenlp.components.configs import (
        DatasetConfig,
        InterpretConfig,
        KmerConfig,
        ModelConfig,
        SweepSpec,
        TrainConfig,
    )
    from genomenlp.pipelines.dataset_pipeline import dataset_pipeline
    from genomenlp.pipelines.training_pipeline import training_pipeline
    from genomenlp.steps.build_kmer_tokeniser import build_kmer_tokeniser
    from genomenlp.steps.create_dataset import create_dataset

    import_seconds = time.perf_counter() - started
    source_utils.set_custom_source_root(str(ROOT))
    GlobalConfiguration().analytics_opt_in = False
    client = Client()
    started = time.perf_counter()
    _ = client.zen_store  # the SQLite store and default stack, created once
    store_seconds = time.perf_counter() - started

    files = write_fasta_pair(home, args.records, args.length, args.seed)
    kmer, dataset = KmerConfig(k=3), DatasetConfig()
    folders = iter(range(10_000))

    def fresh_dir() -> str:
        return str(home / f"dataset_{next(folders)}")

    def direct() -> dict:
        timings = {}
        started = time.perf_counter()
        tokenizer_json = build_kmer_tokeniser.entrypoint(files, kmer)
        timings["build_kmer_tokeniser"] = time.perf_counter() - started
        started = time.perf_counter()
        create_dataset.entrypoint(files, tokenizer_json, dataset, kmer.stride)
        timings["create_dataset"] = time.perf_counter() - started
        timings["total"] = sum(timings.values())
        return timings

    def piped(pipeline, output_dir: str, steps: tuple[str, ...] = STEPS, **arguments) -> dict:
        arguments = arguments or {"dataset": dataset}
        started = time.perf_counter()
        run = pipeline(class_files=files, output_dir=output_dir, kmer=kmer, overwrite=True, **arguments)
        wall = time.perf_counter() - started
        run = client.get_pipeline_run(run.id)
        if run.status != ExecutionStatus.COMPLETED:
            raise RuntimeError(f"run {run.name} ended {run.status}")
        steps = {name: run.steps[name] for name in steps}
        seconds = {name: (step.end_time - step.start_time).total_seconds() for name, step in steps.items()}
        return {"total": wall, **seconds,
                "status": {name: str(step.status.value) for name, step in steps.items()}}

    uncached_pipeline = dataset_pipeline.with_options(enable_cache=False)
    direct()  # warm-up: lazy imports and first-call costs belong to neither side
    first = piped(uncached_pipeline, fresh_dir())
    direct_runs, pipeline_runs = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        direct_runs.append(direct())
        pipeline_runs.append(piped(uncached_pipeline, fresh_dir()))
    same_dir = fresh_dir()
    fill = piped(dataset_pipeline, same_dir)
    cached_runs = [piped(dataset_pipeline, same_dir) for _ in range(args.repeats)]
    partly_cached = [piped(dataset_pipeline, fresh_dir()) for _ in range(args.repeats)]

    tiny = {"dataset": DatasetConfig(split_train=0.8, split_test=0.1, split_val=0.1),
            "sweep": SweepSpec(method="grid", parameters={"learning_rate": {"values": [5e-4, 1e-3]}}),
            "model": ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64),
            # One epoch on tiny data can read as collapsed; this measures caching, not training.
            "training": TrainConfig(num_train_epochs=1, per_device_train_batch_size=16, device="cpu",
                                    collapse_epochs=0),
            "trials": 2, "folds": 2, "explain": [files[0]], "interpret": InterpretConfig(n_steps=4)}
    training_dir = fresh_dir()
    training_fill = piped(training_pipeline, training_dir, TRAINING_HEAVY_STEPS, **tiny)
    training_cached = [piped(training_pipeline, training_dir, TRAINING_HEAVY_STEPS, **tiny)
                       for _ in range(args.repeats)]

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    direct_total, pipeline_total = median(direct_runs, "total"), median(pipeline_runs, "total")
    per_step = {name: {"direct_seconds": median(direct_runs, name), "zenml_step_seconds": median(pipeline_runs, name),
                       "in_step_overhead_seconds": median(pipeline_runs, name) - median(direct_runs, name)}
                for name in STEPS}
    results = {
        "records_per_class": args.records, "length": args.length, "repeats": args.repeats,
        "cpu_count": os.cpu_count(), "zenml_version": zenml.__version__,
        "zenml_import_seconds": import_seconds, "store_creation_seconds": store_seconds,
        "first_pipeline_run_seconds": first["total"],
        "direct_seconds": direct_total, "pipeline_seconds": pipeline_total,
        "overhead_seconds": pipeline_total - direct_total,
        "overhead_per_step_seconds": (pipeline_total - direct_total) / PIPELINE_STEPS,
        "outside_steps_seconds": pipeline_total - sum(median(pipeline_runs, name) for name in STEPS),
        "steps": per_step,
        "cache_fill_seconds": fill["total"], "cache_fill_status": fill["status"],
        "cached_rerun_seconds": median(cached_runs, "total"), "cached_rerun_status": cached_runs[-1]["status"],
        "partly_cached_seconds": median(partly_cached, "total"), "partly_cached_status": partly_cached[-1]["status"],
        "training_first_run_seconds": training_fill["total"], "training_first_run_status": training_fill["status"],
        "training_cached_rerun_seconds": median(training_cached, "total"),
        "training_cached_rerun_status": training_cached[-1]["status"],
        "runs": {"direct": direct_runs, "pipeline": pipeline_runs, "cached": cached_runs,
                 "partly_cached": partly_cached, "training_cached": training_cached},
    }
    print(json.dumps({key: value for key, value in results.items() if key != "runs"}, default=str), flush=True)
    return results


def table(results: dict) -> str:
    """The Markdown tables."""
    lines = ["| run | s | vs direct | steps run / cached |", "|---|---|---|---|"]
    direct = results["direct_seconds"]

    def status(statuses: dict) -> str:
        ran = sum(value == "completed" for value in statuses.values())
        return f"{ran} / {sum(value == 'cached' for value in statuses.values())}"

    lines += [f"| direct calls of the 2 step functions | {direct:.2f} | 1× | — |",
              f"| pipeline, cache off | {results['pipeline_seconds']:.2f} | "
              f"{results['pipeline_seconds'] / direct:.1f}× | 2 / 0 |",
              f"| first pipeline run of the process | {results['first_pipeline_run_seconds']:.2f} | "
              f"{results['first_pipeline_run_seconds'] / direct:.1f}× | 2 / 0 |",
              f"| cached re-run (as shipped), same arguments | {results['cached_rerun_seconds']:.2f} | "
              f"{results['cached_rerun_seconds'] / direct:.1f}× | {status(results['cached_rerun_status'])} |",
              f"| cached re-run, fresh output folder | {results['partly_cached_seconds']:.2f} | "
              f"{results['partly_cached_seconds'] / direct:.1f}× | {status(results['partly_cached_status'])} |",
              "", "| training pipeline (tiny) | s | heavy steps run / cached |", "|---|---|---|",
              "| first run (the dataset runs cached its tokeniser) | "
              f"{results['training_first_run_seconds']:.2f} | "
              f"{status(results['training_first_run_status'])} |",
              f"| cached re-run, same arguments (target < 15 s) | {results['training_cached_rerun_seconds']:.2f} | "
              f"{status(results['training_cached_rerun_status'])} |",
              "", "| step | direct s | ZenML step s | in-step overhead s |", "|---|---|---|---|"]
    for name, figures in results["steps"].items():
        lines.append(f"| {name} | {figures['direct_seconds']:.3f} | {figures['zenml_step_seconds']:.3f} | "
                     f"{figures['in_step_overhead_seconds']:.3f} |")
    lines += ["", f"ZenML overhead: {results['overhead_seconds']:.2f} s per run, "
              f"{results['overhead_per_step_seconds']:.2f} s per step ({results['outside_steps_seconds']:.2f} s of the "
              f"run outside the steps); ZenML import {results['zenml_import_seconds']:.1f} s and store creation "
              f"{results['store_creation_seconds']:.1f} s once per process. Medians of {results['repeats']} runs; "
              f"{results['records_per_class']} × {results['length']} bp per class, local orchestrator, SQLite store."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
