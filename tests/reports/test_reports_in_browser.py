"""Every report, produced on tiny data, opened in a real headless Chromium 1280 px wide.

Each page must log no console error (a blocked resource, a CSP violation, a script error), load
every image, fit the window without horizontal scrolling, and keep tokens whole. Screenshots go to
``runs/screenshots/`` (git-ignored; CI keeps them as artifacts) for a person to look at.

Chromium is Debian's ``chromium`` package; ``.ci/run`` installs it and sets ``REQUIRE_CHROMIUM``, so
there this test can never be skipped.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from headless import WIDTH, Chromium, chromium_binary  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("GENOMENLP_SCREENSHOTS", REPO_ROOT / "runs" / "screenshots"))
MOTIF = "TATAATTATAAT"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("REQUIRE_CHROMIUM"):
            pytest.fail("REQUIRE_CHROMIUM is set but no chromium is installed (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium installed (apt-get install chromium); CI installs it and never skips")
    return binary


def _dataset(folder: Path):
    """Two classes of 40-base sequences; the first carries a motif at a fixed place (a summary-track peak)."""
    from genomenlp.components.cli import kmerise
    from genomenlp.components.training.run import TrainingData

    rng = random.Random(0)
    for name, motif in (("with_motif", MOTIF), ("without", None)):
        with open(folder / f"{name}.fa", "w") as handle:
            for index in range(60):
                sequence = "".join(rng.choice("ACGT") for _ in range(40))
                if motif:
                    sequence = sequence[:10] + motif + sequence[22:]
                handle.write(f">{name}_{index}\n{sequence}\n")
    data = folder / "data"
    assert kmerise.main(["-i", str(folder / "with_motif.fa"), str(folder / "without.fa"), "-k", "2", "-t",
                         str(folder / "k.json"), "-o", str(data), "--no_progress", "--split_train", "0.6",
                         "--split_test", "0.2", "--split_val", "0.2"]) == 0
    return TrainingData(str(data / "train.parquet"), "parquet", str(folder / "k.json"))


def _spread_model(folder: Path, tokenizer_path: str) -> str:
    """A random 2-mer classifier with weights spread wide (std 0.4), so attributions differ and pages show colour.

    The tiny trained models may still predict one class, whose attributions are all noise (drawn neutral).
    """
    import torch

    from genomenlp.components.tokenisers.common import BOS, EOS, PAD, load_sequence_tokenizer
    from genomenlp.components.training.config import ModelConfig
    from genomenlp.components.training.model import build_classifier
    from genomenlp.components.training.run import save_model_folder

    tokenizer = load_sequence_tokenizer(tokenizer_path)
    vocab = tokenizer.tokenizer.get_vocab()
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32,
                                         max_positions=64, dropout=0.0), len(vocab), ["with_motif", "without"],
                             {token: vocab[token] for token in (BOS, EOS, PAD)})
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.4)
    save_model_folder(model, tokenizer, ["with_motif", "without"], folder, {"tokenizer": tokenizer.describe()})
    return str(folder)


def _comparison(folder: Path) -> Path:
    """fit_powerlaw on one 64-wide random model (wide enough to fit), and its page as the step writes it."""
    import pandas as pd
    import torch

    from genomenlp.components.compare.powerlaw import PowerlawConfig, fit_powerlaw
    from genomenlp.components.compare.report import comparison_page
    from genomenlp.components.tokenisers.common import BOS, EOS, PAD
    from genomenlp.components.tokenisers.kmer import build_kmer_tokenizer
    from genomenlp.components.training.config import ModelConfig
    from genomenlp.components.training.model import build_classifier
    from genomenlp.components.training.run import save_model_folder

    tokenizer = build_kmer_tokenizer(3)
    vocab = tokenizer.tokenizer.get_vocab()
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(num_layers=1, hidden_size=64, num_heads=2, intermediate_size=128,
                                         max_positions=64), len(vocab), ["a", "b"],
                             {token: vocab[token] for token in (BOS, EOS, PAD)})
    run = folder / "run_a"
    save_model_folder(model, tokenizer, ["a", "b"], run / "model_files", {})
    (run / "metrics.json").write_text(json.dumps({"test_mcc": 0.4, "test_roc_auc": 0.7, "test_f1": 0.6}))
    out = folder / "comparison"
    summary = fit_powerlaw([str(run / "model_files")], PowerlawConfig(), str(out))
    assert isinstance(summary, pd.DataFrame)
    page = out / "report.html"
    page.write_text(comparison_page(out, summary), encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """Every kind of report, from one tiny dataset: training (a fold's), cross-validation, ensemble, sweep,
    comparison, interpretation index and one sequence page."""
    from genomenlp.components.inference import InterpretConfig
    from genomenlp.components.inference.interpret import interpret_sequences
    from genomenlp.components.model_io import load_model
    from genomenlp.components.search.local import run_sweep
    from genomenlp.components.search.spec import SweepSpec
    from genomenlp.components.training.config import ModelConfig, TrainConfig
    from genomenlp.components.training.cross_validation import cross_validate
    from genomenlp.components.training.ensemble import build_ensemble_folder, fold_model_dirs
    from genomenlp.components.training.run import load_training_data

    root = tmp_path_factory.mktemp("reports")
    data = _dataset(root)
    model = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
    # Collapse detection off: on 72 rows a model may still predict one class after two epochs.
    training = TrainConfig(num_train_epochs=2, per_device_train_batch_size=8, learning_rate=1e-2, seed=3,
                           collapse_epochs=0)
    result = cross_validate(data, model, training, 2, str(root / "cv"), show_progress=False)
    # The fold models at the chosen epoch, averaged and scored: the ensemble's page.
    build_ensemble_folder(fold_model_dirs(root / "cv", result), root / "ensemble", load_training_data(data),
                          "with_motif")
    spec = SweepSpec(**{"method": "grid", "metric": {"name": "eval/f1", "goal": "maximize"},
                        "parameters": {"learning_rate": {"values": [0.01]}, "epochs": {"value": 1}}})
    run_sweep(spec, data, model, training, 1, str(root / "sweep"), show_progress=False)
    fasta = root / "explain.fa"
    rng = random.Random(1)
    fasta.write_text("".join(f">x{index} <b>&\n{''.join(rng.choice('ACGT') for _ in range(10))}{MOTIF}"
                             f"{''.join(rng.choice('ACGT') for _ in range(18))}\n" for index in range(6)))
    explainer = load_model(_spread_model(root / "spread", data.tokenizer_path))
    interpret_sequences(explainer, [str(fasta)], str(root / "why"), InterpretConfig(n_steps=16, device="cpu"))
    page = sorted((root / "why" / "sequences").glob("*.html"))[0]
    return {"training": root / "cv" / "fold_0" / "report.html", "cross_validation": root / "cv" / "report.html",
            "sweep": root / "sweep" / "report.html", "comparison": _comparison(root),
            "ensemble": root / "ensemble" / "report.html",
            "interpretation_index": root / "why" / "index.html",
            "interpretation_page": page}


def test_every_report_renders_cleanly_in_headless_chromium(reports):
    binary = _chromium()
    checks = {}
    with Chromium(binary) as browser:
        for name, page in reports.items():
            checks[name] = browser.check(page, SCREENSHOTS / f"{name}.png")
    problems = []
    for name, check in checks.items():
        facts = check.facts
        problems += [f"{name}: console: {error}" for error in check.errors]
        problems += [f"{name}: image {image['alt']!r} did not load" for image in facts["images"] if not image["loaded"]]
        if facts["scrollWidth"] > WIDTH:
            problems.append(f"{name}: {facts['scrollWidth']} px wide, wider than the {WIDTH}-px window")
        problems += [f"{name}: a table ends at {right} px" for right in facts["tables"] if right > WIDTH]
        if facts["brokenTokens"]:
            problems.append(f"{name}: {facts['brokenTokens']} tokens wrap across lines")
        assert check.screenshot.stat().st_size > 10_000, f"{name}: blank screenshot?"
    assert not problems, "\n".join(problems)
    # The pages hold what they are for: figures on reports, coloured tokens and summary tracks on interpretations.
    for name in ("training", "cross_validation", "sweep", "comparison", "ensemble"):
        assert checks[name].facts["images"], f"{name} shows no figure"
    # The epoch choice, the fold bars and the pooled confusion matrix.
    assert len(checks["cross_validation"].facts["images"]) == 3
    from genomenlp.components.training.report import cv_warnings

    # Every reason not to trust the cross-validated model is a banner the reader sees, and only those.
    warnings = cv_warnings(json.loads((reports["cross_validation"].parent / "cv_metrics.json").read_text()))
    shown = checks["cross_validation"].facts["banners"]
    assert [banner.split(":")[0].lstrip("⚠ ") for banner in shown] == [headline for headline, _ in warnings]
    assert checks["interpretation_page"].facts["tokens"] == 39  # 2-mers of 40 bases, each one box
    assert checks["interpretation_index"].facts["svgs"] >= 1
