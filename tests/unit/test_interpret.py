"""interpret: safe file names, escaped HTML, IG completeness, batching, per-base tracks, windowing."""

import csv
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from genomenlp.components.cli import interpret
from genomenlp.components.inference import InterpretConfig, safe_file_stem
from genomenlp.components.inference.attribution import attribute_windows
from genomenlp.components.inference.interpret import interpret_sequences, per_base_track
from genomenlp.components.inference.output import MAX_STEM_LENGTH
from genomenlp.components.inference.windows import special_ids
from genomenlp.components.model_io import load_model
from genomenlp.components.tokenisers import build_kmer_tokenizer, train_unigram_tokenizer
from genomenlp.components.tokenisers.common import BOS, EOS, PAD

LABELS = ["promoter", "other"]
MAX_POSITIONS = 24  # 22 content tokens per window: long test sequences get several windows
SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
HOSTILE_IDS = [
    "../x", "../../../../tmp/escaped", "/etc/passwd", "<script>alert(1)</script>", "a" * 600, "naïve_é", "序列",
    "dup", "dup", "DUP", "..", ".hidden", "-rf", "CON", "a\\b", "%2e%2e%2fx", "x" * 79 + "/y", "&amp;\"'",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_sequences(count: int, low: int, high: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("ACGT") for _ in range(rng.randint(low, high))) for _ in range(count)]


@pytest.fixture(scope="module")
def models(tmp_path_factory, random_classifier_folder):
    build = random_classifier_folder
    root = tmp_path_factory.mktemp("interpret_models")
    unigram = train_unigram_tokenizer(random_sequences(60, 40, 80, seed=1), vocab_size=40, show_progress=False)
    return {"kmer": build(root / "kmer", build_kmer_tokenizer(3), LABELS, MAX_POSITIONS),
            "distilbert": build(root / "distilbert", build_kmer_tokenizer(2), LABELS, MAX_POSITIONS, "distilbert"),
            "conv": build(root / "conv", build_kmer_tokenizer(3), LABELS, MAX_POSITIONS, conv_kernel=5,
                          position_readout=4),
            "unigram": build(root / "unigram", unigram, LABELS, MAX_POSITIONS)}


def read_tsv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


# --- file names -------------------------------------------------------------------------------

@pytest.mark.parametrize("record_id", HOSTILE_IDS)
def test_safe_file_stem_is_a_plain_name(record_id):
    stem = safe_file_stem(record_id, set())
    assert SAFE.fullmatch(stem) and len(stem) <= MAX_STEM_LENGTH, stem
    assert not stem.startswith(".") and stem not in {".", ".."}
    assert Path(stem).name == stem and not Path(stem).is_absolute()


def test_safe_file_stem_examples():
    assert safe_file_stem("../x", set()) == "x"
    assert safe_file_stem("/etc/passwd", set()) == "etc_passwd"
    assert safe_file_stem("naïve_é", set()) == "naive_e"
    assert safe_file_stem("序列", set()) == "record"
    assert safe_file_stem("", set()) == "record"
    assert safe_file_stem("CON", set()) == "_CON"
    assert safe_file_stem("chr1:100-200(+)", set()) == "chr1_100-200_"


def test_safe_file_stem_is_unique_ignoring_case_and_after_truncation():
    taken: set[str] = set()
    stems = [safe_file_stem(record_id, taken) for record_id in ["dup", "dup", "DUP", "dup_2", *["b" * 600] * 12]]
    assert stems[:4] == ["dup", "dup_2", "DUP_3", "dup_2_2"]
    assert len({stem.lower() for stem in stems}) == len(stems)
    assert all(len(stem) <= MAX_STEM_LENGTH for stem in stems)
    assert stems[-1] == "b" * (MAX_STEM_LENGTH - 3) + "_12"


def test_safe_file_stem_many_duplicates():
    taken: set[str] = set()
    stems = [safe_file_stem("../" * 40 + "same", taken) for _ in range(300)]
    assert len(set(stems)) == 300 and stems[0] == "same" and stems[-1] == "same_300"


# --- hostile headers end to end -----------------------------------------------------------------

def test_hostile_headers_stay_inside_out_and_html_is_escaped(models, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    sequences = random_sequences(len(HOSTILE_IDS), 10, 30, seed=5)
    fasta = inputs / "hostile.fa"
    fasta.write_text("".join(f">{record_id} <b>desc</b>\n{seq}\n"
                             for record_id, seq in zip(HOSTILE_IDS, sequences, strict=True)),
                     encoding="utf-8")
    out = tmp_path / "work" / "out"
    assert interpret.main([models["kmer"], str(fasta), "ACGTACGTAA", "-o", str(out), "--true_labels",
                           "<script>x</script>", "promoter", "-n", "8", "--no_progress"]) == 0
    # Nothing appeared anywhere but OUT (and the input folder is untouched).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs", "work"]
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["out"]
    assert [p.name for p in inputs.iterdir()] == ["hostile.fa"]
    root = out.resolve()
    pages = []
    for folder, _, files in os.walk(out):
        for name in files:
            path = (Path(folder) / name).resolve()
            assert path.is_relative_to(root), path
            if name.endswith(".html"):
                pages.append(path)
    assert len(pages) == len(HOSTILE_IDS) + 2  # every record, the raw sequence and the index
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text.lower() and "<b>desc" not in text
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index and "&lt;script&gt;x&lt;/script&gt;" in index
    links = re.findall(r'href="([^"]+)"', index)
    assert len(links) == len(HOSTILE_IDS) + 1 and all((out / link).is_file() for link in links)
    summary = read_tsv(out / "summary.tsv")
    assert [row["record_id"] for row in summary] == [*HOSTILE_IDS, "seq_1"]
    assert {row["page"] for row in summary} == set(links)


# --- attributions -------------------------------------------------------------------------------

def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)).logits[0]


# Largest |delta| / max(1, |F(x) − F(b)|) after 50 steps. DistilBERT's head has a ReLU, whose kinks
# make the integrand jump, so its quadrature converges more slowly than BERT's smooth path.
DELTA_TOLERANCE = {"kmer": 1e-3, "unigram": 1e-3, "distilbert": 5e-2, "conv": 1e-3}


@pytest.mark.parametrize("kind", sorted(DELTA_TOLERANCE))
def test_attributions_are_complete(models, kind):
    loaded = load_model(models[kind])
    special = special_ids(loaded.tokenizer)
    encodings = loaded.tokenizer.encode_batch(random_sequences(6, 8, 20, seed=6), max_length=MAX_POSITIONS)
    windows = [encoding.ids for encoding in encodings]
    targets = [index % 2 for index in range(len(windows))]
    results = attribute_windows(loaded.model, windows, targets, special, n_steps=50, batch_size=4)
    differences = []
    for ids, target, result in zip(windows, targets, results, strict=True):
        baseline = [special[BOS], *[special[PAD]] * (len(ids) - 2), special[EOS]]
        difference = float(_logits(loaded.model, ids)[target] - _logits(loaded.model, baseline)[target])
        differences.append(abs(difference))
        assert len(result.scores) == len(ids) - 2
        # Completeness, checked against our own unpadded forward passes: the kept token scores
        # (``<s>``/``</s>`` dropped, padding in the batch) add up to F(x) − F(baseline) up to delta.
        assert result.scores.sum() - difference == pytest.approx(result.delta, abs=1e-5)
        assert abs(result.delta) < DELTA_TOLERANCE[kind] * max(1.0, abs(difference))
    assert max(differences) > 0.1, "the test model should separate inputs from the baseline"


def test_batched_equals_one_at_a_time(models):
    loaded = load_model(models["kmer"])
    special = special_ids(loaded.tokenizer)
    windows = [e.ids for e in loaded.tokenizer.encode_batch(random_sequences(7, 4, 23, seed=7), MAX_POSITIONS)]
    targets = [1, 0, 1, 1, 0, 0, 1]
    # A small token budget also splits the IG steps over several passes.
    batched = attribute_windows(loaded.model, windows, targets, special, n_steps=20, batch_size=7, tokens_per_pass=700)
    single = attribute_windows(loaded.model, windows, targets, special, n_steps=20, batch_size=1)
    for one, other in zip(batched, single, strict=True):
        np.testing.assert_allclose(one.scores, other.scores, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["kmer", "distilbert"])
def test_adaptive_integration_meets_its_tolerance_and_matches_fixed_steps(models, kind):
    loaded = load_model(models[kind])
    special = special_ids(loaded.tokenizer)
    windows = [e.ids for e in loaded.tokenizer.encode_batch(random_sequences(6, 8, 20, seed=9), MAX_POSITIONS)]
    targets = [index % 2 for index in range(len(windows))]
    fixed = attribute_windows(loaded.model, windows, targets, special, n_steps=64, batch_size=6)
    adaptive = attribute_windows(loaded.model, windows, targets, special, n_steps=64, batch_size=6, min_steps=4,
                                 tolerance=1e-3)
    for exact, cheap in zip(fixed, adaptive, strict=True):
        scale = max(1.0, abs(float(exact.scores.sum())))
        if abs(exact.delta) <= 1e-3 * scale:  # where 64 steps settle, the adaptive result settles too
            assert abs(cheap.delta) <= 1e-3 * max(1.0, abs(float(cheap.scores.sum())))
            assert np.abs(cheap.scores - exact.scores).sum() <= 1e-2 * np.abs(exact.scores).sum() + 1e-6


def test_per_base_track_means_the_covering_tokens():
    spans = np.array([[0, 3], [1, 4], [2, 5], [6, 7]])
    track = per_base_track(spans, np.array([3.0, 6.0, 9.0, 1.0]), 8)
    np.testing.assert_allclose(track[:5], [3.0, 4.5, 6.0, 7.5, 9.0])
    assert np.isnan(track[5]) and track[6] == 1.0 and np.isnan(track[7])


@pytest.mark.parametrize("kind", ["kmer", "unigram"])
def test_tracks_of_short_and_long_sequences(models, kind, tmp_path):
    sequences = random_sequences(3, 15, 20, seed=8) + random_sequences(1, 200, 200, seed=9)
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">s{i}\n{seq}\n" for i, seq in enumerate(sequences)))
    out = tmp_path / "out"
    loaded = load_model(models[kind])
    config = InterpretConfig(n_steps=16, batch_size=8, device="cpu")
    result = interpret_sequences(loaded, [str(fasta)], str(out), config)
    assert result["records"] == 4 and result["max_abs_delta"] < 1e-3
    bases, tokens = read_tsv(out / "per_base.tsv"), read_tsv(out / "attributions.tsv")
    summary = {row["record_id"]: row for row in read_tsv(out / "summary.tsv")}
    assert int(summary["s3"]["chunks"]) > 1 and int(summary["s0"]["chunks"]) == 1
    for index, sequence in enumerate(sequences):
        record = f"s{index}"
        track = [row for row in bases if row["record_id"] == record]
        assert len(track) == len(sequence)
        assert "".join(row["base"] for row in track) == sequence
        assert [int(row["position"]) for row in track] == list(range(len(sequence)))
        rows = [row for row in tokens if row["record_id"] == record]
        assert all(sequence[int(r["start"]):int(r["end"])] == r["token"] for r in rows)
        covered = np.zeros(len(sequence))
        for row in rows:
            covered[int(row["start"]):int(row["end"])] += 1
        assert covered.min() >= 1
        # Each base's score is the mean of the tokens covering it (merged over windows first).
        middle = len(sequence) // 2
        expected = np.mean([float(r["score"]) for r in rows if int(r["start"]) <= middle < int(r["end"])])
        assert float(track[middle]["score"]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
        assert float(summary[record]["attribution_sum"]) == pytest.approx(sum(float(r["score"]) for r in rows),
                                                                          rel=1e-3, abs=1e-5)


def test_target_option_and_bad_arguments(models, tmp_path, capsys):
    out = tmp_path / "out"
    assert interpret.main([models["kmer"], "ACGTACGTAC", "GGGTTTAAAC", "-o", str(out), "--target", "other",
                           "-n", "4", "--no_progress"]) == 0
    assert {row["explained_label"] for row in read_tsv(out / "summary.tsv")} == {"other"}
    capsys.readouterr()
    assert interpret.main([models["kmer"], "ACGT", "-o", str(tmp_path / "o2"), "--target", "nope"]) == 2
    assert "'nope' is not a class of this model" in capsys.readouterr().err
    assert interpret.main([models["kmer"], "ACGT", "ACGA", "-o", str(tmp_path / "o3"), "--true_labels",
                           "promoter"]) == 2
    assert "got 1 names for 2 inputs" in capsys.readouterr().err
    assert interpret.main([models["kmer"], "ACGT", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
