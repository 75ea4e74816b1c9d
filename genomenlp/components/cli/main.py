"""``genomenlp``: one umbrella command whose sub-commands are the stage commands."""

from __future__ import annotations

import sys

from genomenlp.components.cli import (
    create_dataset,
    cross_validate,
    ensemble,
    fit_powerlaw,
    interpret,
    kmerise,
    predict,
    pretrain,
    sweep,
    tokenise,
    train,
)

COMMANDS = {
    "tokenise": (tokenise.main, "learn a Unigram tokeniser (tokenise_bio)"),
    "kmerise": (kmerise.main, "k-mer tokeniser and dataset (kmerise_bio)"),
    "create-dataset": (create_dataset.main, "leakage-free dataset (create_dataset_bio)"),
    "train": (train.main, "train a genomicBERT classifier (train)"),
    "sweep": (sweep.main, "hyperparameter search (sweep)"),
    "cross-validate": (cross_validate.main, "k-fold cross-validation (cross_validate)"),
    "ensemble": (ensemble.main, "one model from several: the mean of their logits"),
    "fit-powerlaw": (fit_powerlaw.main, "compare models by their weight spectra (fit_powerlaw)"),
    "predict": (predict.main, "classify sequences (predict)"),
    "interpret": (interpret.main, "Integrated Gradients attributions (interpret)"),
    "pretrain": (pretrain.main, "masked-language-model pre-training on genomes (pretrain)"),
}


def main(argv: list[str] | None = None, commands: dict | None = None) -> int:
    """Dispatch ``genomenlp SUBCOMMAND …`` to the stage command of that name."""
    commands = COMMANDS if commands is None else commands
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        width = max(map(len, commands)) + 2
        print("usage: genomenlp SUBCOMMAND [options]   (genomenlp SUBCOMMAND --help for each)\n")
        print("sub-commands:")
        for name, (_, summary) in commands.items():
            print(f"  {name.ljust(width)}{summary}")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\ngenomenlp: error: unknown sub-command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    entry, _ = commands[argv[0]]
    return entry(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
