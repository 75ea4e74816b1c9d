"""Bounded Unigram training: the evenly spread training sample and the settings that control it."""

import json
import logging
import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from genomenlp.components.cli import tokenise
from genomenlp.components.configs import TokeniseConfig
from genomenlp.components.fasta import read_fasta
from genomenlp.components.stages import learn_tokenizer
from genomenlp.components.tokenisers.common import sequence_tokenizer_from_json
from genomenlp.components.tokenisers.unigram import (
    break_sequences,
    sample_pieces,
    train_unigram_tokenizer,
)


def random_sequences(count, length, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice("ACGT") for _ in range(length)) for _ in range(count)]


def numbered(count, width=6):
    """Pieces that name their own position, so a sample shows where it was drawn from."""
    return [f"{index:0{width}d}" for index in range(count)]


@pytest.fixture()
def fasta_pair(tmp_path):
    first, second = tmp_path / "a.fa", tmp_path / "b.fa"
    sequences = random_sequences(40, 60, seed=3)
    first.write_text("".join(f">a{n}\n{s}\n" for n, s in enumerate(sequences[:20])))
    second.write_text("".join(f">b{n}\n{s}\n" for n, s in enumerate(sequences[20:])))
    return [str(first), str(second)], sequences


def test_no_sampling_at_or_below_the_bound():
    pieces = random_sequences(30, 50)
    assert sample_pieces(pieces, None) == pieces
    assert sample_pieces(pieces, 30 * 50) == pieces
    assert sample_pieces(pieces, 10**9, seed=7) == pieces


def test_sample_is_deterministic_and_seeded():
    pieces = numbered(5000)
    first = sample_pieces(pieces, 6000, seed=1)
    assert first == sample_pieces(list(pieces), 6000, seed=1)
    assert first != sample_pieces(pieces, 6000, seed=2)


@pytest.mark.parametrize("max_bases", [50, 333, 1000, 4999, 20000])
@pytest.mark.parametrize("seed", [0, 3])
def test_sample_never_exceeds_the_bound(max_bases, seed):
    rng = random.Random(0)
    pieces = ["A" * rng.randint(1, 50) for _ in range(2000)]
    bases = sum(map(len, sample_pieces(pieces, max_bases, seed)))
    assert 0 < bases <= max_bases


def test_sample_of_many_pieces_nearly_fills_the_bound():
    rng = random.Random(1)
    pieces = ["A" * rng.randint(100, 512) for _ in range(5000)]
    bases = sum(map(len, sample_pieces(pieces, 200_000)))
    assert 0.8 * 200_000 <= bases <= 200_000


def test_default_bound_keeps_the_bundled_corpus_whole():
    folder = Path(__file__).resolve().parents[2] / "data" / "ecoli_promoter"
    bases = sum(len(record.sequence) for name in ("promoter", "non_promoter")
                for record in read_fasta(str(folder / f"{name}.fasta.gz")))
    assert 500_000 < bases <= TokeniseConfig().max_train_bases


def test_sample_is_evenly_spread_in_input_order():
    pieces = numbered(10_000)
    sample = sample_pieces(pieces, 6 * 1000, seed=0)
    positions = [int(piece) for piece in sample]
    assert len(positions) == 1000 and positions == sorted(positions)
    # Exactly one piece from each of the 1,000 equal runs, so each tenth of the input gives a tenth.
    assert [position * 1000 // 10_000 for position in positions] == list(range(1000))
    assert all(sum(1 for p in positions if tenth * 1000 <= p < (tenth + 1) * 1000) == 100 for tenth in range(10))


def test_sample_too_small_for_any_piece_is_an_error():
    with pytest.raises(ValueError, match="smaller than every sampled piece"):
        sample_pieces(["ACGTACGT"] * 10, 5)


def test_config_defaults_and_validation():
    config = TokeniseConfig()
    assert config.max_train_bases == 1_000_000 and config.sample_seed == 0 and config.seed_size == 1_000_000
    assert TokeniseConfig(max_train_bases=None).max_train_bases is None
    with pytest.raises(ValidationError, match="break_size"):
        TokeniseConfig(max_train_bases=100, break_size=512)
    with pytest.raises(ValidationError, match="caps the vocabulary"):
        TokeniseConfig(vocab_size=1000, seed_size=500)


def test_training_learns_from_the_sample_and_says_so(caplog):
    sequences = random_sequences(40, 60, seed=3)
    with caplog.at_level(logging.WARNING):
        bounded = train_unigram_tokenizer(sequences, 40, show_progress=False, max_train_bases=600, sample_seed=4)
    assert "sample of 10 of 40 pieces (600 of 2400 bases" in caplog.text
    sample = sample_pieces(list(break_sequences(sequences, 512)), 600, seed=4)
    direct = train_unigram_tokenizer(sample, 40, show_progress=False, max_train_bases=None)
    assert bounded.sha256() == direct.sha256()


def test_bounded_training_is_deterministic():
    # The trainer's own scores may differ in the last digits between runs (its floating-point sums
    # follow hash-map order), so runs are compared by the project's content hash, which rounds them.
    sequences = random_sequences(40, 60, seed=5)
    runs = [train_unigram_tokenizer(sequences, 40, show_progress=False, max_train_bases=900) for _ in range(3)]
    assert len({run.sha256() for run in runs}) == 1
    assert len({json.dumps([token for token, _ in json.loads(run.to_json())["model"]["vocab"]]) for run in runs}) == 1


def test_seed_size_reaches_the_trainer(monkeypatch, fasta_pair):
    import tokenizers.trainers

    seen = []
    real = tokenizers.trainers.UnigramTrainer

    def spy(**options):
        seen.append(options["seed_size"])
        return real(**options)

    monkeypatch.setattr(tokenizers.trainers, "UnigramTrainer", spy)
    paths, _ = fasta_pair
    learn_tokenizer(paths, TokeniseConfig(vocab_size=40), show_progress=False)
    learn_tokenizer(paths, TokeniseConfig(vocab_size=40, seed_size=123), show_progress=False)
    assert seen == [1_000_000, 123]


def test_command_options_are_honoured(tmp_path, fasta_pair, caplog):
    paths, sequences = fasta_pair
    bounded, unbounded = tmp_path / "bounded.json", tmp_path / "all.json"
    with caplog.at_level(logging.WARNING):
        assert tokenise.main(["-i", *paths, "-t", str(bounded), "-v", "40", "--no_progress",
                              "--max_train_bases", "600", "--sample_seed", "4", "--seed_size", "200"]) == 0
    assert "max_train_bases=600" in caplog.text
    expected = train_unigram_tokenizer(sequences, 40, show_progress=False, max_train_bases=600, sample_seed=4,
                                       seed_size=200)
    assert sequence_tokenizer_from_json(bounded.read_text()).sha256() == expected.sha256()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert tokenise.main(["-i", *paths, "-t", str(unbounded), "-v", "40", "--no_progress",
                              "--max_train_bases", "none"]) == 0
    assert "sample" not in caplog.text
    parsed = tokenise.build_parser().parse_args(["-i", "x", "-t", "y", "--max_train_bases", "none"])
    assert parsed.max_train_bases is None


def test_command_rejects_a_bound_below_break_size(tmp_path, fasta_pair, capsys):
    paths, _ = fasta_pair
    assert tokenise.main(["-i", *paths, "-t", str(tmp_path / "t.json"), "--max_train_bases", "100"]) == 2
    assert "break_size" in capsys.readouterr().err
