import json
import random

import pytest

from genomenlp.components.errors import InputError
from genomenlp.components.sequences import chunk_spans
from genomenlp.components.tokenisers import (
    SPECIAL_TOKENS,
    build_kmer_tokenizer,
    kmerise,
    load_sequence_tokenizer,
    train_unigram_tokenizer,
)
from genomenlp.components.tokenisers.common import TokenizerKind, as_pretrained_tokenizer, sequence_tokenizer_from_json
from genomenlp.components.tokenisers.unigram import break_sequences


def random_sequences(count, length, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice("ACGT") for _ in range(length)) for _ in range(count)]


@pytest.fixture(scope="module")
def unigram():
    return train_unigram_tokenizer(random_sequences(200, 120), vocab_size=300, show_progress=False)


def test_unigram_specials_and_cls_wrapper(unigram):
    vocab = unigram.tokenizer.get_vocab()
    assert [vocab[token] for token in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    encoding = unigram.encode_batch(["ACGTACGTTTGACA"])[0]
    assert encoding.tokens[0] == "<s>" and encoding.tokens[-1] == "</s>"
    assert "".join(encoding.tokens[1:-1]) == "ACGTACGTTTGACA"
    assert unigram.kind is TokenizerKind.UNIGRAM
    assert 5 < unigram.tokenizer.get_vocab_size() <= 300


def test_unigram_loads_as_pretrained_tokenizer_fast(unigram, tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(unigram.to_json())
    loaded = load_sequence_tokenizer(path)
    fast = as_pretrained_tokenizer(loaded)
    batch = fast(["ACGTAC", "GGGTTTAAACCC"], padding=True)
    assert fast.cls_token == "<s>" and fast.pad_token_id == 3 and fast.mask_token_id == 4
    assert batch["input_ids"][0][0] == fast.cls_token_id
    assert 3 in batch["input_ids"][0]  # the shorter one is padded


def test_break_sequences_caps_piece_length():
    pieces = list(break_sequences(["A" * 1050, "C" * 10], 500))
    assert [len(piece) for piece in pieces] == [500, 500, 500, 10]
    assert max(len(p) for p in pieces) <= 500


def test_chunk_spans_cover_every_base_with_overlap():
    spans = list(chunk_spans(2500, 1000, 100))
    assert spans[0] == (0, 1000) and spans[-1] == (1500, 2500)
    assert all(end - start == 1000 for start, end in spans)
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
    assert list(chunk_spans(80, 1000, 100)) == [(0, 80)]


def test_kmerise_overlap_and_stride():
    assert kmerise("ACGTAC", 3) == ["ACG", "CGT", "GTA", "TAC"]
    assert kmerise("ACGTAC", 3, stride=3) == ["ACG", "TAC"]
    assert kmerise("ACGU", 4) == ["ACGT"]
    assert kmerise("AC", 3) == ["AC"]


def test_kmer_vocabulary_is_deterministic_and_complete():
    first, second = build_kmer_tokenizer(4), build_kmer_tokenizer(4)
    assert first.to_json() == second.to_json()
    vocab = first.tokenizer.get_vocab()
    assert len(vocab) == 5 + 4**4
    assert vocab["AAAA"] == 5 and vocab["TTTT"] == 5 + 255
    encoding = first.encode_batch(["ACGTNA"])[0]
    assert encoding.tokens == ["<s>", "ACGT", "<unk>", "<unk>", "</s>"]


def test_kmer_tokenizer_round_trips_with_kind_inferred():
    built = build_kmer_tokenizer(3, stride=2)
    loaded = sequence_tokenizer_from_json(built.to_json(), stride=2)
    assert loaded.kind is TokenizerKind.KMER and loaded.k == 3
    assert loaded.encode_batch(["ACGTACG"])[0].ids == built.encode_batch(["ACGTACG"])[0].ids
    assert json.loads(built.to_json())["model"]["type"] == "WordLevel"


def test_protein_kmers_come_from_the_corpus_sorted():
    tokenizer = build_kmer_tokenizer(2, protein_corpus=["MKV", "KVM"])
    assert list(tokenizer.tokenizer.get_vocab())  # not empty
    ordered = sorted(tokenizer.tokenizer.get_vocab().items(), key=lambda item: item[1])
    assert [token for token, _ in ordered][5:] == ["KV", "MK", "VM"]


def test_truncation_keeps_the_wrapper(unigram):
    encoding = unigram.encode_batch(["ACGT" * 100], max_length=10)[0]
    assert len(encoding.ids) == 10 and encoding.tokens[0] == "<s>" and encoding.tokens[-1] == "</s>"


def test_not_a_tokeniser_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a tokenizers JSON file"):
        load_sequence_tokenizer(path)


def test_hash_survives_save_and_reload(unigram, tmp_path):
    first = sequence_tokenizer_from_json(unigram.to_json())
    second = sequence_tokenizer_from_json(first.to_json())
    assert unigram.sha256() == first.sha256() == second.sha256()
    assert build_kmer_tokenizer(3).sha256() != build_kmer_tokenizer(4).sha256()
