"""``python -m genomenlp.components.training_operator.worker --publish PREFIX -- COMMAND …``: one PyTorchJob process.

Runs ``train`` or ``pretrain`` unchanged in this process (every rank trains; rank 0 writes the run
folder), then rank 0 publishes that folder to ``PREFIX`` with the commit marker last, so the step
waiting for the job never reads a half-written result. Other ranks publish nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from genomenlp.components.training.state import is_main_process

COMMANDS = ("train", "pretrain")


def _output_dir(arguments: list[str]) -> str:
    for index, argument in enumerate(arguments):
        if argument in ("-o", "--output_dir") and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith("--output_dir="):
            return argument.split("=", 1)[1]
    raise SystemExit("worker: the command needs -o OUTPUT_DIR")


def main(argv: list[str] | None = None) -> int:
    """Run the command; on rank 0, publish its output folder. Returns the command's exit status."""
    parser = argparse.ArgumentParser(prog="genomenlp.components.training_operator.worker")
    parser.add_argument("--publish", required=True, help="object-storage prefix of the published run folder")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- train|pretrain ARGUMENTS…")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or command[0] not in COMMANDS:
        parser.error(f"the command must be one of {', '.join(COMMANDS)}")
    if command[0] == "train":
        from genomenlp.components.cli.train import main as run
    else:
        from genomenlp.components.cli.pretrain import main as run
    status = run(command[1:])
    if status != 0 or not is_main_process():
        return status
    from genomenlp.components.storage import atomic_output_dir

    with atomic_output_dir(args.publish, overwrite=True) as staging:
        shutil.copytree(_output_dir(command[1:]), staging, dirs_exist_ok=True)
    print(f"published to {args.publish}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
