"""Peak resident memory of the commands on hostile inputs: one long single-line record and a gzip bomb.

Each case runs the installed command's module in a child process started by a fresh Python
wrapper, which reports ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of that one child (the
maximum is per wrapper, so cases never mask each other). Inputs, made in a scratch folder:

- ``1 Mbp`` and ``100 Mbp`` (sizes set by ``--mbp``): one record on one line, seeded random ACGT,
  as class 1; class 2 is 20 random 500-bp records;
- ``gzip bomb``: a 2 GiB run of ``A`` in one record, gzip -9 (about 2 MB on disk).

Commands: reading alone (``read_fasta``), ``create_dataset_bio`` (3-mers, chunked), ``predict``
(a randomly initialised default-size model; the long record is read in windows a batch at a time)
and ``interpret`` on the 1 Mbp record (refused up front by ``--max_interpret_length``). A command
that refuses an input exits 2 with one line; the table shows that line.

Prints a JSON object and a Markdown table; ``--out`` keeps ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genomenlp.components.storage import write_text_atomic  # noqa: E402

_WRAPPER = (
    "import resource, subprocess, sys, json, time\n"
    "started = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps({'rc': done.returncode, 'seconds': time.perf_counter() - started,\n"
    "                  'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,\n"
    "                  'stderr': done.stderr.strip().splitlines()[-1:] }))\n"
)


def write_long_record(path: Path, bases: int, seed: int = 0) -> None:
    """One record of ``bases`` seeded random ACGT on one line, written a block at a time."""
    rng = random.Random(seed)
    with open(path, "w", encoding="ascii") as handle:
        handle.write(">long_record single line\n")
        block = 1 << 20
        for start in range(0, bases, block):
            handle.write("".join(rng.choices("ACGT", k=min(block, bases - start))))
        handle.write("\n")


def write_bomb(path: Path, expanded: int) -> None:
    """A gzip file holding one record of ``expanded`` bytes of ``A`` (streamed, never held)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"A" * (1 << 24)
    with open(path, "wb") as handle:
        handle.write(compressor.compress(b">bomb\n"))
        for _ in range(expanded // len(chunk)):
            handle.write(compressor.compress(chunk))
        handle.write(compressor.compress(b"\n") + compressor.flush())


def write_small_class(path: Path) -> None:
    """20 random 500-bp records: the second class of the dataset."""
    rng = random.Random(1)
    path.write_text("".join(f">b_{i}\n{''.join(rng.choices('ACGT', k=500))}\n" for i in range(20)))


def save_random_model(folder: Path) -> None:
    """A default-size classifier with random weights and a 3-mer tokeniser, saved as ``train`` saves one."""
    from genomenlp.components.tokenisers import build_kmer_tokenizer
    from genomenlp.components.tokenisers.common import BOS, EOS, PAD
    from genomenlp.components.training.config import ModelConfig
    from genomenlp.components.training.model import build_classifier
    from genomenlp.components.training.run import save_model_folder

    tokenizer = build_kmer_tokenizer(3)
    vocab = tokenizer.tokenizer.get_vocab()
    model = build_classifier(ModelConfig(), len(vocab), ["a", "b"], {t: vocab[t] for t in (BOS, EOS, PAD)})
    save_model_folder(model, tokenizer, ["a", "b"], folder,
                      {"tokenizer": tokenizer.describe(), "model": ModelConfig().model_dump(mode="json")})
    (folder.parent / "kmers.json").write_text(tokenizer.to_json())


def measure(command: list[str], cwd: Path) -> dict:
    """Peak RSS (MiB), seconds, exit status and last stderr line of one command in a fresh wrapper."""
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *command], cwd=cwd, capture_output=True, text=True,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    result = json.loads(done.stdout)
    return {"peak_rss_mib": round(result["peak_kib"] / 1024, 1), "seconds": round(result["seconds"], 1),
            "exit": result["rc"], "message": (result["stderr"] or [""])[0][:200]}


def main() -> None:
    """Make the inputs, run every case, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbp", type=float, nargs="+", default=[1, 100], help="long-record sizes (default: 1 100)")
    parser.add_argument("--bomb_gib", type=float, default=2.0, help="expanded size of the gzip bomb (default: 2)")
    parser.add_argument("--commands", nargs="+", default=["read", "create_dataset", "predict", "interpret"],
                        choices=["read", "create_dataset", "predict", "interpret"])
    parser.add_argument("--predict_max_mbp", type=float, default=1,
                        help="largest record given to predict (a CPU reads ~100 windows/s; default: 1)")
    parser.add_argument("--out", help="folder for results.json and results.md (default: print only)")
    args = parser.parse_args()

    python = sys.executable
    rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        write_small_class(scratch / "b.fa")
        save_random_model(scratch / "model_files")
        inputs = {}
        for mbp in args.mbp:
            path = scratch / f"long_{mbp:g}mbp.fa"
            write_long_record(path, int(mbp * 1_000_000))
            inputs[f"{mbp:g} Mbp single line"] = (path, mbp)
        if args.bomb_gib > 0:
            bomb = scratch / "bomb.fa.gz"
            write_bomb(bomb, int(args.bomb_gib * (1 << 30)))
            inputs[f"gzip bomb {args.bomb_gib:g} GiB ({bomb.stat().st_size / 1e6:.1f} MB)"] = (bomb, None)
        for name, (path, mbp) in inputs.items():
            cases = {
                "read": [python, "-c", "import sys; sys.path.insert(0, sys.argv[2]); "
                         "from genomenlp.components.fasta import read_fasta\ntry:\n"
                         "    print(sum(len(r.sequence) for r in read_fasta(sys.argv[1])))\n"
                         "except Exception as e:\n    print(e, file=sys.stderr); sys.exit(2)", str(path), str(ROOT)],
                "create_dataset": [python, "-m", "genomenlp.components.cli.create_dataset", str(path),
                                   str(scratch / "b.fa"), str(scratch / "kmers.json"),
                                   "-o", str(scratch / f"ds_{time.time_ns()}"), "--no_progress",
                                   "--reverse_complement", "none"],
                "predict": [python, "-m", "genomenlp.components.cli.predict", str(scratch / "model_files"), str(path),
                            "-o", str(scratch / f"p_{time.time_ns()}.tsv"), "-d", "cpu"],
                "interpret": [python, "-m", "genomenlp.components.cli.interpret", str(scratch / "model_files"),
                              str(path), "-o", str(scratch / f"i_{time.time_ns()}"), "-d", "cpu", "--no_progress"],
            }
            for command in args.commands:
                if command == "predict" and mbp is not None and mbp > args.predict_max_mbp:
                    continue
                if command == "interpret" and mbp != min(args.mbp):
                    continue
                result = measure(cases[command], ROOT)
                rows.append({"input": name, "command": command, **result})
                print(json.dumps(rows[-1]), flush=True)
    lines = ["| input | command | peak RSS (MiB) | seconds | exit | message |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['input']} | {r['command']} | {r['peak_rss_mib']} | {r['seconds']} | {r['exit']} | "
              f"{r['message'].replace('|', '/')} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.out:
        out = Path(args.out)
        write_text_atomic(out / "results.json", json.dumps({"rows": rows}, indent=2) + "\n", overwrite=True)
        write_text_atomic(out / "results.md", table + "\n", overwrite=True)


if __name__ == "__main__":
    main()
