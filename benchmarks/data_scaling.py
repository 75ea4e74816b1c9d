"""Throughput (Mbp/s) and peak memory of Unigram tokeniser training and dataset creation as the input grows.

Inputs, all written as plain FASTA before anything is timed:

- ``N×`` for every ``--sizes N``: one file per class holding the bundled promoter / non-promoter
  corpus (6,764 × 81 bp, 0.55 Mbp) once, plus ``N − 1`` times as many records sampled from it
  with ``--mutation_rate`` point substitutions each (seeded numpy draws), so ``1×`` is exactly the
  bundled corpus and ``100×`` is 676,400 records, 55 Mbp;
- ``long``: ``--long_mbp`` sequences of 1 Mbp each (consecutive slices of the bundled E. coli
  genome, taken round the circle when more are asked for than it holds), half per class file.

Tasks: (a) ``learn_tokenizer`` (Unigram, ``--vocab_size``, the default ``TokeniseConfig`` otherwise)
and (b) ``create_dataset`` with a k-mer tokeniser (``make_kmer_tokenizer``, ``--k``; default
``DatasetConfig``: leakage-free split, reverse complements in train, all four output formats).

Every (input, task) runs in its own child process, so one size's memory never shows in
another's. The child imports everything and does a small warm-up run first, then times one run
(wall seconds → Mbp/s of input bases) and reads the rise of ``ru_maxrss`` over that run (resident
peak: Python, Rust and Arrow memory alike), then repeats the run under ``tracemalloc`` for the
peak of Python allocations alone (tracemalloc slows Python code, so that pass is not timed for the
throughput figure: about 4× slower for dataset creation; it is skipped for inputs above
``--tracemalloc_max_mbp``, and altogether with ``--no_tracemalloc``). Growth is reported as ratios
to the ``1×`` figures (or to the smallest size given) beside the ratio of input sizes.

Prints one JSON line per (input, task), then a Markdown table; ``--out`` keeps ``results.json``
and ``results.md``. Unigram training learns from a sample of at most ``max_train_bases`` (1 Mbp by
default), so its time stops growing past about 1 Mbp of input (without the bound it grew faster
than the input: 6 s at 1×, 90 s at 4×). Dataset creation is linear (about 20 s at 10× on 2 cores)
and needs some GB of disk at 100×; the default sizes 1 10 100 take about 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genomenlp.components.fasta import read_fasta  # noqa: E402

CLASSES = {"promoter": ROOT / "data" / "ecoli_promoter" / "promoter.fasta.gz",
           "non_promoter": ROOT / "data" / "ecoli_promoter" / "non_promoter.fasta.gz"}
GENOME = ROOT / "data" / "ecoli_genome" / "GCF_000005845.2_ASM584v2_genomic.fna.gz"
TASKS = ("tokeniser", "dataset")
MIB = 1 << 20


def read_class(path: Path, limit: int | None) -> list[tuple[str, str]]:
    """``(id, sequence)`` of a bundled class file, the first ``limit`` records when given."""
    records = []
    for record in read_fasta(str(path)):
        records.append((record.id, record.sequence))
        if limit is not None and len(records) == limit:
            break
    return records


def sampled_sequences(records: list[tuple[str, str]], count: int, rate: float, rng) -> list[tuple[str, str]]:
    """``count`` records drawn with replacement from ``records``, each with point substitutions at ``rate``."""
    import numpy as np

    if count <= 0:
        return []
    sequences = [sequence for _, sequence in records]
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
    pool = np.frombuffer("".join(sequences).encode("ascii"), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    picked = rng.integers(0, len(records), count)
    picked_lengths = lengths[picked]
    out_starts = np.cumsum(picked_lengths) - picked_lengths
    total = int(picked_lengths.sum())
    gather = np.arange(total) - np.repeat(out_starts, picked_lengths) + np.repeat(starts[picked], picked_lengths)
    bases = pool[gather].copy()
    mutated = rng.random(total) < rate
    bases[mutated] = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, int(mutated.sum()))]
    text = bases.tobytes().decode("ascii")
    return [(f"sample{number}_of_{records[source][0]}", text[start : start + length])
            for number, (source, start, length) in enumerate(zip(picked.tolist(), out_starts.tolist(),
                                                                  picked_lengths.tolist(), strict=True))]


def write_fasta(path: Path, records: list[tuple[str, str]]) -> int:
    """Write records (one sequence line each); the number of bases written."""
    bases = 0
    with open(path, "w", encoding="ascii") as handle:
        for record_id, sequence in records:
            handle.write(f">{record_id}\n{sequence}\n")
            bases += len(sequence)
    return bases


def make_scaled_input(corpus: dict[str, list], factor: int, rate: float, seed: int, folder: Path) -> dict:
    """The ``factor``× input: every bundled record once plus ``factor − 1`` mutated samples per record."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, factor])
    files, bases, records = [], 0, 0
    for name, originals in corpus.items():
        extra = sampled_sequences(originals, (factor - 1) * len(originals), rate, rng)
        path = folder / f"{name}.fasta"
        bases += write_fasta(path, originals + extra)
        records += len(originals) + len(extra)
        files.append(str(path))
    return {"input": f"{factor}×", "factor": factor, "files": files, "records": records, "bases": bases}


def make_long_input(count: int, length: int, folder: Path) -> dict:
    """``count`` sequences of ``length`` bases cut from the bundled genome, alternately into two class files."""
    folder.mkdir(parents=True, exist_ok=True)
    genome = next(iter(read_fasta(str(GENOME)))).sequence
    circle = genome + genome[: length]
    pieces = []
    for index in range(count):
        start = (index * length) % len(genome)
        while start + length > len(circle):
            circle += genome
        pieces.append((f"genome_{start}_{start + length}", circle[start : start + length]))
    files, bases = [], 0
    for number, name in enumerate(("long_a", "long_b")):
        path = folder / f"{name}.fasta"
        bases += write_fasta(path, pieces[number::2])
        files.append(str(path))
    return {"input": f"{count} × {length / 1e6:g} Mbp", "factor": None, "files": files, "records": count,
            "bases": bases}


# ---------------------------------------------------------------------------------------------
# Child process: one task on one input.


def _run_task(task: str, files: list[str], settings: dict, scratch: Path) -> dict:
    from genomenlp.components.configs import DatasetConfig, KmerConfig, TokeniseConfig
    from genomenlp.components.stages import create_dataset, learn_tokenizer, make_kmer_tokenizer

    if task == "tokeniser":
        tokenizer = learn_tokenizer(files, TokeniseConfig(vocab_size=settings["vocab_size"]), show_progress=False)
        return {"vocab_size_learned": tokenizer.describe()["vocab_size"]}
    tokenizer = make_kmer_tokenizer(files, KmerConfig(k=settings["k"]))
    out = scratch / "dataset"
    manifest = create_dataset(files, tokenizer, DatasetConfig(), str(out), overwrite=True, show_progress=False)
    written = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return {"rows": {split: info["rows"] for split, info in manifest["splits"].items()},
            "output_mib": round(written / MIB, 1)}


def child(request: dict) -> dict:
    """Warm up, then time one run and measure its memory; the figures as a dict."""
    import resource
    import tracemalloc

    # Everything the tasks import lazily is imported (and run once on a tiny input) before the baseline.
    import datasets  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import tokenizers  # noqa: F401

    task, files, settings = request["task"], request["files"], request["settings"]
    with tempfile.TemporaryDirectory(dir=request.get("scratch")) as folder:
        scratch = Path(folder)
        _run_task(task, request["warmup_files"], {**settings, "vocab_size": min(settings["vocab_size"], 64)}, scratch)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        extra = _run_task(task, files, settings, scratch)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        figures = {"seconds": seconds, "rss_before_mib": before / 1024, "rss_peak_mib": after / 1024,
                   "rss_delta_mib": (after - before) / 1024, **extra}
        if request["tracemalloc"]:
            tracemalloc.start()
            started = time.perf_counter()
            _run_task(task, files, settings, scratch)
            figures["traced_seconds"] = time.perf_counter() - started
            figures["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / MIB
            tracemalloc.stop()
    return figures


def run_child(request: dict) -> dict:
    """Run :func:`child` in a fresh interpreter; its figures."""
    completed = subprocess.run([sys.executable, __file__, "--child", json.dumps(request)], capture_output=True,
                               text=True, check=False)
    if completed.returncode:
        raise RuntimeError(f"child for {request['task']} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------


def add_ratios(rows: list[dict]) -> None:
    """Ratios of time, memory and throughput to the smallest scaled input of the same task."""
    for task in TASKS:
        scaled = sorted((row for row in rows if row["task"] == task and row["factor"]), key=lambda r: r["factor"])
        if not scaled:
            continue
        base = scaled[0]
        for row in rows:
            if row["task"] != task:
                continue
            row["reference"] = base["input"]
            row["size_ratio"] = round(row["bases"] / base["bases"], 2)
            row["time_ratio"] = round(row["seconds"] / base["seconds"], 2)
            rss = base["rss_delta_mib"]
            row["rss_ratio"] = round(row["rss_delta_mib"] / rss, 2) if rss > 0 else None
            if "traced_peak_mib" in row and base.get("traced_peak_mib"):
                row["traced_ratio"] = round(row["traced_peak_mib"] / base["traced_peak_mib"], 2)


def table(rows: list[dict]) -> str:
    """The Markdown table."""
    lines = ["| task | input | records | Mbp | s | Mbp/s | RSS rise (MiB) | Python peak (MiB) | "
             "size × | time × | RSS × | Python peak × |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def ratio(value):
        return "—" if value is None else f"{value:g}"

    for row in rows:
        traced = f"{row['traced_peak_mib']:.1f}" if "traced_peak_mib" in row else "—"
        lines.append(f"| {row['task']} | {row['input']} | {row['records']:,} | {row['bases'] / 1e6:.2f} | "
                     f"{row['seconds']:.1f} | {row['mbp_per_second']:.3f} | {row['rss_delta_mib']:.0f} | {traced} | "
                     f"{ratio(row.get('size_ratio'))} | {ratio(row.get('time_ratio'))} | "
                     f"{ratio(row.get('rss_ratio'))} | {ratio(row.get('traced_ratio'))} |")
    return "\n".join(lines)


def main() -> None:
    """Write the inputs, run every (input, task) in a child process, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 10, 100],
                        help="multiples of the bundled corpus (default: 1 10 100)")
    parser.add_argument("--long_mbp", type=int, default=2, help="how many 1-Mbp sequences (0: none; default: 2)")
    parser.add_argument("--long_length", type=int, default=1_000_000, help="bases per long sequence")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--vocab_size", type=int, default=32000, help="Unigram vocabulary size (default: 32,000)")
    parser.add_argument("--k", type=int, default=3, help="k of the dataset's k-mer tokeniser (default: 3)")
    parser.add_argument("--mutation_rate", type=float, default=0.05, help="substitutions per base of sampled records")
    parser.add_argument("--base_records", type=int, default=None,
                        help="use only the first N records per class as the 1× corpus (quick checks)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_tracemalloc", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--tracemalloc_max_mbp", type=float, default=10.0,
                        help="skip the tracemalloc pass for inputs above this many Mbp (default: 10)")
    parser.add_argument("--scratch", default=None, help="folder for the generated inputs and outputs (default: TMPDIR)")
    parser.add_argument("--out", help="folder for results.json and results.md (default: print only)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if any(size < 1 for size in args.sizes):
        parser.error("--sizes must be at least 1")
    if args.long_mbp == 1:
        parser.error("--long_mbp needs 0 or at least 2 sequences (one class file each)")

    corpus = {name: read_class(path, args.base_records) for name, path in CLASSES.items()}
    settings = {"vocab_size": args.vocab_size, "k": args.k}
    rows = []
    if args.scratch:
        Path(args.scratch).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.scratch) as folder:
        scratch = Path(folder)
        warmup = make_scaled_input({name: records[:50] for name, records in corpus.items()}, 1, 0.0, args.seed,
                                   scratch / "warmup")
        inputs = [make_scaled_input(corpus, size, args.mutation_rate, args.seed, scratch / f"x{size}")
                  for size in sorted(set(args.sizes))]
        if args.long_mbp:
            inputs.append(make_long_input(args.long_mbp, args.long_length, scratch / "long"))
        for item in inputs:
            for task in args.tasks:
                request = {"task": task, "files": item["files"], "warmup_files": warmup["files"], "settings": settings,
                           "tracemalloc": not args.no_tracemalloc and item["bases"] <= args.tracemalloc_max_mbp * 1e6,
                           "scratch": folder}
                figures = run_child(request)
                row = {"task": task, **{key: item[key] for key in ("input", "factor", "records", "bases")},
                       "mbp_per_second": item["bases"] / 1e6 / figures["seconds"], **figures}
                rows.append(row)
                print(json.dumps(row), flush=True)
                for path in item["files"] if task == args.tasks[-1] else ():
                    os.unlink(path)
    add_ratios(rows)
    context = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0], "settings": settings,
               "mutation_rate": args.mutation_rate, "base_records": args.base_records,
               "tracemalloc": not args.no_tracemalloc, "tracemalloc_max_mbp": args.tracemalloc_max_mbp,
               "seed": args.seed}
    reference = rows[0].get("reference", "the smallest size") if rows else "the smallest size"
    notes = ("Mbp/s counts input bases once (the dataset also encodes reverse complements of train). RSS rise: "
             "ru_maxrss after the run minus before it, in a fresh child per row; Python peak: tracemalloc peak of a "
             f"second run (— where skipped). Ratios (×) are to {reference}.")
    text = table(rows) + "\n\n" + notes
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"rows": rows, **context}, indent=2))
        (out / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
