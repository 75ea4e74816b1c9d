"""Leakage-free, stratified, seeded splits.

Records that are the same molecule (identical, or each other's reverse complement) and,
optionally, records sharing a long exact substring form one group; a group never straddles
splits. Groups are dealt out so each class fills each split to its exact quota where group
sizes allow (within one record when groups are single records).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from genomenlp.components.sequences import canonical, reverse_complement


class _DisjointSets:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression keeps later look-ups flat
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def molecule_key(sequence: str, nucleotide: bool = True) -> bytes:
    """Digest shared by a sequence, its exact duplicates and (for nucleotides) its reverse complement."""
    text = canonical(sequence) if nucleotide else sequence
    digest = hashlib.blake2b(digest_size=16)
    # Hashed in blocks: encoding a chromosome whole would hold another copy of it.
    for start in range(0, len(text), 1 << 20):
        digest.update(text[start : start + (1 << 20)].encode("ascii"))
    return digest.digest()


def substring_keys(sequence: str, length: int, nucleotide: bool = True) -> set[bytes]:
    """Digests of every ``length``-long window of a sequence, in canonical (strand-free) form."""
    keys = set()
    for start in range(len(sequence) - length + 1):
        window = sequence[start : start + length]
        if nucleotide:
            other = reverse_complement(window)
            window = min(window, other)
        keys.add(hashlib.blake2b(window.encode("ascii"), digest_size=12).digest())
    return keys


def group_records(keys: Sequence[bytes], extra_keys: Iterable[set[bytes]] | None = None) -> list[int]:
    """Group id per record: records sharing a molecule key, or any extra key, share a group.

    Group ids are the smallest record index in each group, so grouping does not depend on a seed.
    """
    sets = _DisjointSets(len(keys))
    first_with: dict[bytes, int] = {}
    for index, key in enumerate(keys):
        sets.union(first_with.setdefault(key, index), index)
    if extra_keys is not None:
        first_with_window: dict[bytes, int] = {}
        for index, windows in enumerate(extra_keys):
            for window in windows:
                sets.union(first_with_window.setdefault(window, index), index)
    return [sets.find(index) for index in range(len(keys))]


def quotas(count: int, fractions: dict[str, float]) -> dict[str, int]:
    """Whole-record quota per split summing to ``count`` (largest-remainder rounding)."""
    exact = {name: count * share for name, share in fractions.items()}
    floors = {name: int(value) for name, value in exact.items()}
    left = count - sum(floors.values())
    by_remainder = sorted(exact, key=lambda name: (-(exact[name] - floors[name]), list(exact).index(name)))
    for name in by_remainder[:left]:
        floors[name] += 1
    return floors


def assign_splits(groups: Sequence[int], labels: Sequence[int], fractions: dict[str, float], seed: int) -> list[str]:
    """Split name per record: seeded, stratified by class, never separating a group.

    Args:
        groups: Group id per record (see :func:`group_records`).
        labels: Class per record.
        fractions: Split name → share; shares sum to 1.
        seed: Same seed, same assignment.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    class_sizes = Counter(labels)
    quota = {label: quotas(size, fractions) for label, size in class_sizes.items()}
    filled = {label: dict.fromkeys(fractions, 0) for label in class_sizes}

    order = sorted(members)
    random.Random(seed).shuffle(order)
    # Largest groups first: they are the hardest to fit, singletons then even out the counts.
    order.sort(key=lambda group: -len(members[group]))

    split_of_group: dict[int, str] = {}
    for group in order:
        group_labels = Counter(labels[index] for index in members[group])
        main_label = min(group_labels, key=lambda label: (-group_labels[label], label))
        split = max(fractions, key=lambda name: quota[main_label][name] - filled[main_label][name])
        split_of_group[group] = split
        for label, count in group_labels.items():
            filled[label][split] += count
    return [split_of_group[group] for group in groups]
