"""Pre-training on a small generated genome: encoder folder, resume, held-out exclusion, masking, transfer, errors."""

import gzip
import random
from pathlib import Path

import numpy as np
import pytest

from genomenlp.components.cli import pretrain
from genomenlp.components.errors import InputError
from genomenlp.components.pretraining.config import PretrainConfig, default_window, kmer_tokens, resolve
from genomenlp.components.pretraining.corpus import (
    MIN_SEED,
    WindowCorpus,
    build_exclusion_index,
    exclusion_index,
    find_occurrences,
    mask_excluded,
)
from genomenlp.components.pretraining.mlm import IGNORE_INDEX, mask_tokens, pretrain_encoder
from genomenlp.components.pretraining.transfer import encoder_model_config, init_classifier_from_encoder
from genomenlp.components.sequences import reverse_complement
from genomenlp.components.tokenisers import build_kmer_tokenizer, load_sequence_tokenizer, train_unigram_tokenizer
from genomenlp.components.tokenisers.common import BOS, EOS, PAD
from genomenlp.components.training.config import ModelConfig

TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
TINY = PretrainConfig(max_steps=6, per_device_train_batch_size=8, logging_steps=2, checkpoint_every=2,
                      learning_rate=3e-3, shuffle_buffer=32, seed=3, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_dna(length: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(length))


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """A 4 kb two-record gzip FASTA genome and a 3-mer tokeniser."""
    folder = tmp_path_factory.mktemp("genome")
    sequence = random_dna(4000, 11)
    path = folder / "genome.fa.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(f">chr1\n{sequence[:2500]}\n>plasmid\n{sequence[2500:]}\n")
    tokens = folder / "k3.json"
    tokens.write_text(build_kmer_tokenizer(3).to_json())
    return str(path), str(tokens)


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def encoder(request, genome, tmp_path_factory):
    """A finished pre-training run of each architecture."""
    model = ModelConfig(**{**TINY_MODEL.model_dump(), "architecture": request.param})
    out = tmp_path_factory.mktemp(f"pretrained_{request.param}")
    summary = pretrain_encoder([genome[0]], genome[1], str(out), model, TINY, show_progress=False)
    return out, summary, model


def read_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


# --- pre-training and resume ---------------------------------------------------------------------

def test_pretraining_writes_an_encoder_folder(encoder):
    out, summary, model = encoder
    assert summary["steps"] == 6 and summary["resumed_from_step"] == 0
    assert summary["window"] == 64 and summary["mask_span"] == 3 and summary["tokens_per_second"] > 0
    assert summary["corpus"]["records"] == 2 and summary["corpus"]["bases"] == 4000
    assert 0 < summary["mlm_loss"] < 10 and 0 <= summary["mlm_accuracy"] <= 1
    assert (out / "history.csv").read_text().count("\n") == 4  # header + steps 2, 4, 6
    assert not (out / "checkpoints").exists()
    import json

    from transformers import AutoModelForMaskedLM, PreTrainedTokenizerFast

    metadata = json.loads((out / "encoder" / "genomenlp.json").read_text())
    assert metadata["kind"] == "encoder" and "label_names" not in metadata
    assert metadata["tokenizer"]["kind"] == "kmer" and metadata["model"]["architecture"] == model.architecture
    loaded = AutoModelForMaskedLM.from_pretrained(out / "encoder", use_safetensors=True)
    assert loaded.config.model_type == model.architecture and loaded.config.vocab_size == 69
    assert PreTrainedTokenizerFast.from_pretrained(out / "encoder").mask_token == "<mask>"
    assert encoder_model_config(str(out / "encoder")) == model


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("architecture", ["bert", "distilbert"])
def test_resume_after_interruption_matches_an_uninterrupted_run(genome, tmp_path, architecture):
    config = TINY.model_copy(update={"max_steps": 8, "checkpoint_every": 4})
    model = ModelConfig(**{**TINY_MODEL.model_dump(), "architecture": architecture})
    whole = pretrain_encoder([genome[0]], genome[1], str(tmp_path / "whole"), model, config, show_progress=False)

    def crash_at_six(step, row):
        if step == 6:
            raise Interrupt

    out = tmp_path / "interrupted"
    with pytest.raises(Interrupt):
        pretrain_encoder([genome[0]], genome[1], str(out), model, config, show_progress=False, on_log=crash_at_six)
    assert (out / "checkpoints" / "state.json").exists() and not (out / "metrics.json").exists()
    # Steps 5 and 6 ran after the step-4 checkpoint and are lost: the resumed run redoes them.
    resumed = pretrain_encoder([genome[0]], genome[1], str(out), model, config, show_progress=False)
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == 8
    assert resumed["mlm_loss"] == pytest.approx(whole["mlm_loss"], rel=1e-6)
    assert resumed["tokens_seen"] == whole["tokens_seen"]
    first = read_weights(tmp_path / "whole" / "encoder" / "model.safetensors")
    second = read_weights(out / "encoder" / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(np.allclose(first[name].numpy(), second[name].numpy(), rtol=1e-6, atol=1e-7) for name in first)
    with pytest.raises(InputError, match="finished pre-training run"):
        pretrain_encoder([genome[0]], genome[1], str(out), model, config, show_progress=False)


def test_checkpoint_of_another_run_is_refused(genome, tmp_path):
    def stop(step, row):
        raise Interrupt

    out = tmp_path / "other"
    with pytest.raises(Interrupt):
        pretrain_encoder([genome[0]], genome[1], str(out), TINY_MODEL, TINY, show_progress=False, on_log=stop)
    with pytest.raises(InputError, match="checkpoints of a different run"):
        pretrain_encoder([genome[0]], genome[1], str(out), TINY_MODEL, TINY.model_copy(update={"seed": 4}),
                         show_progress=False)
    # Logging and checkpoint frequency change nothing learnt: the same run resumes.
    summary = pretrain_encoder([genome[0]], genome[1], str(out), TINY_MODEL,
                               TINY.model_copy(update={"logging_steps": 3}), show_progress=False)
    assert summary["resumed_from_step"] == 2


# --- exclusion of held-out sequences -------------------------------------------------------------

def constructed_genome() -> tuple[str, list[str], set[int]]:
    """A genome with held-out sequences planted on both strands, and the positions they cover."""
    genome = random_dna(3000, 5)
    repeat = genome[800:840]
    genome = genome[:2000] + repeat + genome[2040:]  # a second copy: both must go
    held_out = [
        genome[100:140],                       # forward strand
        genome[120:160],                       # overlaps the first
        reverse_complement(genome[500:530]),   # reverse strand only
        repeat,                                # at 800 and 2000
        reverse_complement(genome[2960:3000]),  # reverse strand, at the very end
        random_dna(50, 99),                    # not in the genome
    ]
    covered = set()
    for start, end in ((100, 160), (500, 530), (800, 840), (2000, 2040), (2960, 3000)):
        covered |= set(range(start, end))
    return genome, held_out, covered


def write_split(path: Path, features: list[str]) -> None:
    import pandas as pd

    pd.DataFrame({"feature": features, "strand": ["+"] * len(features)}).to_parquet(path)


def test_exclusion_masks_exactly_the_bases_of_held_out_occurrences_on_either_strand(tmp_path):
    genome, held_out, covered = constructed_genome()
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    write_split(dataset / "valid.parquet", held_out[:3])
    write_split(dataset / "test.parquet", held_out[3:])
    write_split(dataset / "train.parquet", [genome[1500:1540]])  # training rows may be seen
    index = exclusion_index([str(dataset)])
    assert index.held_out == 6
    masked, removed = mask_excluded(genome, index)
    assert len(masked) == len(genome) and removed == len(covered)
    assert {i for i, letter in enumerate(masked) if letter == "N"} == covered
    assert all(masked[i] == genome[i] for i in range(len(genome)) if i not in covered)
    assert genome[1500:1540] in masked
    for sequence in held_out:
        assert sequence not in masked and reverse_complement(sequence) not in masked
    # Hashing in blocks smaller than a seed must find the same occurrences.
    spans = [(o.start, o.end) for o in find_occurrences(genome, index)]
    assert [(o.start, o.end) for o in find_occurrences(genome, index, block=7)] == spans
    assert spans == [(100, 140), (120, 160), (500, 530), (800, 840), (2000, 2040), (2960, 3000)]


def test_windows_overlapping_held_out_sequences_lose_exactly_the_covered_bases(tmp_path):
    genome, held_out, covered = constructed_genome()
    fasta = tmp_path / "genome.fa"
    fasta.write_text(f">g\n{genome}\n")
    corpus = WindowCorpus([str(fasta)], window=50, stride=25, index=build_exclusion_index(held_out))
    masked, _, removed = next(corpus.records())
    windows = list(corpus.record_windows(masked))
    expected = []
    for start in range(0, len(genome) - 50 + 1, 25):
        hidden = covered & set(range(start, start + 50))
        text = "".join("N" if start + i in hidden else genome[start + i] for i in range(50))
        if len(hidden) <= 25:  # at most half N: kept, with exactly the covered bases hidden
            expected += [text, reverse_complement(text)]
    assert windows == expected
    for window in windows:
        for sequence in held_out:
            assert sequence not in window and reverse_complement(sequence) not in window
    stats = corpus.scan()
    assert stats.bases_removed == removed == len(covered) and stats.occurrences == 6 and stats.held_out_found == 5
    assert stats.windows == len(expected) and stats.windows_skipped == 2 * 119 - len(expected)
    assert stats.windows_skipped > 0  # the window at 100-150 is all N


def test_seed_search_finds_what_plain_string_search_finds():
    rng = random.Random(3)
    genome = random_dna(5000, 8)
    genome = genome[:3000] + "N" * 20 + genome[3020:]
    held_out = []
    for _ in range(40):
        start, length = rng.randrange(4900), rng.randrange(8, 80)
        piece = genome[start:start + length]
        held_out.append(reverse_complement(piece) if rng.random() < 0.5 else piece)
    held_out += [genome[2990:3040],  # spans the N run, seeded beside it
                 genome[2995:3025],  # mostly the N run: no clean seed, found by string search
                 genome[100:109]]    # shorter than a seed, likewise
    index = build_exclusion_index(held_out)
    assert index.unseeded and any(len(s) < MIN_SEED for s in index.sequences)
    expected = set()
    for sequence in index.sequences:
        position = genome.find(sequence)
        while position >= 0:
            expected.add((position, position + len(sequence)))
            position = genome.find(sequence, position + 1)
    found = {(o.start, o.end) for o in find_occurrences(genome, index, block=997)}
    assert found == expected


def test_exclusion_needs_dataset_folders(tmp_path):
    with pytest.raises(InputError, match="no valid.parquet"):
        exclusion_index([str(tmp_path)])
    write_split(tmp_path / "valid.parquet", ["ACGT"])
    import pandas as pd

    pd.DataFrame({"sequence": ["ACGT"]}).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(InputError, match="no 'feature' column"):
        exclusion_index([str(tmp_path)])


# --- windows and masking -------------------------------------------------------------------------

@pytest.mark.parametrize(("k", "stride"), [(3, 1), (6, 3), (4, 4)])
def test_default_window_fills_the_model_exactly_for_kmers(k, stride):
    tokenizer = build_kmer_tokenizer(k, stride)
    window = default_window(tokenizer, 64)
    assert kmer_tokens(window, k, stride) == 64 and kmer_tokens(window + stride, k, stride) == 65
    assert len(tokenizer.encode_batch([random_dna(window, 1)])[0].ids) == 64
    resolved = resolve(PretrainConfig(), TINY_MODEL, tokenizer)
    assert resolved.window == window and resolved.stride == window and resolved.mask_span == k // stride
    with pytest.raises(InputError, match="over max_positions 64"):
        resolve(PretrainConfig(window=window + stride), TINY_MODEL, tokenizer)


def test_default_window_for_unigram_follows_bases_per_token():
    sample = random_dna(6000, 2)
    tokenizer = train_unigram_tokenizer([sample], vocab_size=60, show_progress=False)
    window = default_window(tokenizer, 64, sample)
    assert window > 62  # tokens hold more than one base on average
    lengths = [len(e.ids) for e in tokenizer.encode_batch([sample[i:i + window] for i in range(0, 5000, window)])]
    assert np.mean(lengths) <= 64 * 1.05
    assert resolve(PretrainConfig(), TINY_MODEL, tokenizer, sample).mask_span == 1


@pytest.mark.parametrize("span", [1, 3])
def test_masking_follows_the_80_10_10_rule(span):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 69, size=(400, 128))
    ids[:, 0], ids[:, -1], ids[:10, 100:] = 0, 1, 3
    maskable = ids >= 5
    inputs, labels = mask_tokens(ids, maskable, 0.15, span, 4, (5, 69), np.random.default_rng(1))
    chosen = labels != IGNORE_INDEX
    assert not (chosen & ~maskable).any()
    assert np.array_equal(labels[chosen], ids[chosen]) and np.array_equal(inputs[~chosen], ids[~chosen])
    assert chosen.sum() / maskable.sum() == pytest.approx(0.15, abs=0.015)
    as_mask = (inputs[chosen] == 4).mean()
    kept = (inputs[chosen] == ids[chosen]).mean()
    assert as_mask == pytest.approx(0.8, abs=0.03) and kept == pytest.approx(0.1 + 0.1 / 64, abs=0.03)
    neighbours = chosen[:, 1:-1] & (chosen[:, :-2] | chosen[:, 2:])
    together = neighbours.sum() / chosen[:, 1:-1].sum()
    assert together > 0.9 if span == 3 else together < 0.4


# --- transfer into a classifier ------------------------------------------------------------------

def test_init_classifier_loads_the_encoder_and_keeps_a_fresh_head(encoder, genome):
    import torch

    from genomenlp.components.training.model import build_classifier

    out, _, model_config = encoder
    tokenizer = load_sequence_tokenizer(genome[1])
    vocab = tokenizer.tokenizer.get_vocab()
    torch.manual_seed(0)
    classifier = build_classifier(model_config, len(vocab), ["promoter", "other"],
                                  {t: vocab[t] for t in (BOS, EOS, PAD)})
    before = {name: tensor.clone() for name, tensor in classifier.state_dict().items()}
    loaded = init_classifier_from_encoder(classifier, str(out / "encoder"), tokenizer)
    prefix = classifier.base_model_prefix + "."
    saved = read_weights(out / "encoder" / "model.safetensors")
    encoder_names = [name for name in saved if name.startswith(prefix)]
    assert loaded["loaded_tensors"] == len(encoder_names) > 0
    after = classifier.state_dict()
    for name in encoder_names:
        assert torch.equal(after[name], saved[name]), name
        if not name.endswith("token_type_embeddings.weight"):  # never trained: zero-token-type row only
            assert not torch.equal(before[name], saved[name]), name
    head = [name for name in after if not name.startswith(prefix) or ".pooler." in name]
    assert sorted(loaded["fresh"]) == sorted(head) and loaded["fresh_parameters"] > 0
    assert all(torch.equal(after[name], before[name]) for name in head)


def test_init_classifier_refuses_an_incompatible_encoder(encoder, genome, tmp_path):
    from genomenlp.components.training.model import build_classifier

    out, _, model_config = encoder
    tokenizer = load_sequence_tokenizer(genome[1])
    vocab = tokenizer.tokenizer.get_vocab()

    def classifier(**changes):
        # Validated (model_copy would keep a plain string where the factory expects the enum).
        return build_classifier(ModelConfig(**{**model_config.model_dump(), **changes}), len(vocab), ["a", "b"],
                                {t: vocab[t] for t in (BOS, EOS, PAD)})

    other = "distilbert" if model_config.architecture == "bert" else "bert"
    cases = [
        (classifier(architecture=other), str(out / "encoder"), None,
         f"pass --architecture {model_config.architecture}"),
        (classifier(hidden_size=32), str(out / "encoder"), None, "pass --hidden_size 16"),
        (classifier(max_positions=128), str(out / "encoder"), None, "pass --max_positions 64"),
        (classifier(), str(out / "encoder"), build_kmer_tokenizer(4), "another tokeniser"),
        (classifier(), str(out / "encoder"), build_kmer_tokenizer(3, 2), "another tokeniser"),
        (classifier(), str(tmp_path), None, "not a pre-trained encoder folder"),
    ]
    for model, folder, tokens, message in cases:
        with pytest.raises(InputError, match=message) as caught:
            init_classifier_from_encoder(model, folder, tokens)
        assert "\n" not in str(caught.value)


# --- command line --------------------------------------------------------------------------------

TINY_FLAGS = ["--num_layers", "1", "--hidden_size", "16", "--num_heads", "2", "--intermediate_size", "32",
              "--max_positions", "64", "--per_device_train_batch_size", "8", "--logging_steps", "2",
              "--shuffle_buffer", "32", "--no_progress", "-d", "cpu"]


def test_pretrain_command_reports_exclusion_progress_and_encoder(genome, tmp_path, capsys):
    held_out = tmp_path / "dataset"
    held_out.mkdir()
    with gzip.open(genome[0], "rt") as handle:
        sequence = handle.read().split("\n")[1]
    write_split(held_out / "valid.parquet", [sequence[200:281]])
    write_split(held_out / "test.parquet", [reverse_complement(sequence[1000:1081])])
    out = tmp_path / "cli"
    args = [genome[0], genome[1], "-o", str(out), "--exclude", str(held_out), "--max_steps", "4", *TINY_FLAGS]
    assert pretrain.main(args) == 0
    printed = capsys.readouterr().out
    assert "exclusion: removed 162 bases" in printed and "2/2 held-out sequences" in printed
    assert printed.count("mlm_loss=") == 2 and printed.count("mlm_accuracy=") == 2
    assert f"encoder: {out}/encoder" in printed and "tokens/s" in printed
    assert (out / "encoder" / "model.safetensors").stat().st_size > 0


def test_pretrain_command_bad_input_is_one_line(genome, tmp_path, capsys):
    out = str(tmp_path / "bad")
    cases = [
        ([genome[1], "-o", out], "give one or more FASTA files"),
        ([genome[1], genome[0], "-o", out], "must be the tokeniser JSON"),
        ([str(tmp_path / "missing.fa"), genome[1], "-o", out], "no such file"),
        ([genome[0], genome[1], "-o", out, "--window", "80", *TINY_FLAGS], "over max_positions 64"),
        ([genome[0], genome[1], "-o", out, "--exclude", str(tmp_path)], "no valid.parquet"),
        ([genome[0], genome[1], "-o", out, "--hidden_size", "10", "--num_heads", "3"], "divisible"),
        ([genome[0], genome[1], "-o", out, "--window", "50", "--stride", "60"], "must not exceed window"),
    ]
    for args, message in cases:
        assert pretrain.main(args) == 2, message
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
    assert not Path(out).exists()
    diverging = [genome[0], genome[1], "-o", str(tmp_path / "diverged"), *TINY_FLAGS, "--learning_rate", "1",
                 "--warmup_ratio", "0", "--max_steps", "10"]
    assert pretrain.main(diverging) == 2
    error = capsys.readouterr().err
    assert "is likely too high" in error and error.count("\n") == 1

