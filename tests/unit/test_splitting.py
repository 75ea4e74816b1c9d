import random
from collections import Counter

import pytest

from genomenlp.components.dataset.splitting import assign_splits, group_records, molecule_key, quotas, substring_keys
from genomenlp.components.sequences import reverse_complement

FRACTIONS = {"train": 0.9, "test": 0.05, "valid": 0.05}


def random_sequence(rng, length=60):
    return "".join(rng.choice("ACGT") for _ in range(length))


def test_reverse_complement_iupac():
    assert reverse_complement("ACGTN") == "NACGT"
    assert reverse_complement("RYKM") == "KMRY"
    assert reverse_complement("AU") == "AT"


def test_quotas_sum_and_round():
    assert quotas(100, FRACTIONS) == {"train": 90, "test": 5, "valid": 5}
    assert sum(quotas(7, FRACTIONS).values()) == 7
    assert quotas(3382, FRACTIONS) == {"train": 3044, "test": 169, "valid": 169}


@pytest.fixture
def leaky_records():
    """Sequences, some with their reverse complement or an exact duplicate among them."""
    rng = random.Random(7)
    sequences, labels = [], []
    for index in range(400):
        label = index % 2
        sequence = random_sequence(rng)
        sequences.append(sequence)
        labels.append(label)
        if index % 5 == 0:
            sequences.append(reverse_complement(sequence))
            labels.append(label)
        if index % 7 == 0:
            sequences.append(sequence)
            labels.append(label)
    return sequences, labels


def test_no_sequence_rc_or_duplicate_crosses_splits(leaky_records):
    sequences, labels = leaky_records
    groups = group_records([molecule_key(s) for s in sequences])
    splits = assign_splits(groups, labels, FRACTIONS, seed=3)
    split_of_molecule = {}
    for sequence, split in zip(sequences, splits, strict=True):
        key = min(sequence, reverse_complement(sequence))
        assert split_of_molecule.setdefault(key, split) == split


def test_class_proportions_within_one_record_of_exact():
    rng = random.Random(1)
    labels = [0] * 517 + [1] * 301 + [2] * 45
    sequences = [random_sequence(rng) for _ in labels]
    groups = group_records([molecule_key(s) for s in sequences])
    splits = assign_splits(groups, labels, FRACTIONS, seed=11)
    counts = Counter(zip(labels, splits, strict=True))
    for label, size in Counter(labels).items():
        for split, share in FRACTIONS.items():
            assert abs(counts[label, split] - size * share) <= 1, (label, split)


def test_same_seed_same_split_other_seed_other_split(leaky_records):
    sequences, labels = leaky_records
    groups = group_records([molecule_key(s) for s in sequences])
    first = assign_splits(groups, labels, FRACTIONS, seed=5)
    assert first == assign_splits(groups, labels, FRACTIONS, seed=5)
    assert first != assign_splits(groups, labels, FRACTIONS, seed=6)


def test_shared_substring_groups_records_on_either_strand():
    rng = random.Random(3)
    motif = random_sequence(rng, 40)
    a = random_sequence(rng, 20) + motif + random_sequence(rng, 20)
    b = random_sequence(rng, 10) + reverse_complement(motif) + random_sequence(rng, 30)
    c = random_sequence(rng, 80)
    keys = [molecule_key(s) for s in (a, b, c)]
    assert len(set(group_records(keys))) == 3
    windows = [substring_keys(s, 40) for s in (a, b, c)]
    grouped = group_records(keys, windows)
    assert grouped[0] == grouped[1] != grouped[2]
