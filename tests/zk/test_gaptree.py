"""The sanctions gap tree: gaps, paths, padding and the refusals that keep the circuit's range argument
sound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidInputError
from core.zk.gaptree import UPPER_SENTINEL, GapTree, key248, tree_root, zero_hashes
from core.zk.poseidon import hash2

KEYS = [5, 17, 1 << 200, UPPER_SENTINEL - 1]


def _root_from_path(leaf: int, siblings, bits) -> int:
    node = leaf
    for sibling, bit in zip(siblings, bits, strict=True):
        node = hash2(sibling, node) if bit else hash2(node, sibling)
    return node


def test_every_gap_path_rebuilds_the_root():
    tree = GapTree(KEYS, depth=3)
    bounds = [0, *KEYS, UPPER_SENTINEL]
    for i in range(len(bounds) - 1):
        path = tree.path_at(i)
        assert (path.lo, path.hi) == (bounds[i], bounds[i + 1])
        assert _root_from_path(hash2(path.lo, path.hi), path.siblings, path.bits) == tree.root


def test_root_is_the_zero_padded_tree_over_the_gap_leaves():
    tree = GapTree(KEYS, depth=3)
    bounds = [0, *KEYS, UPPER_SENTINEL]
    leaves = [hash2(bounds[i], bounds[i + 1]) for i in range(5)] + [0, 0, 0]
    level = leaves
    while len(level) > 1:
        level = [hash2(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    assert tree.root == level[0] == tree_root(leaves[:5], 3)


def test_empty_list_has_one_gap_and_zero_padding():
    tree = GapTree([], depth=2)
    assert tree.root == hash2(hash2(hash2(0, UPPER_SENTINEL), 0), zero_hashes(2)[1])


@pytest.mark.parametrize("key", [pytest.param(5, id="listed"), pytest.param(0, id="lower_sentinel")])
def test_listed_key_has_no_gap(key):
    with pytest.raises(InvalidInputError) as err:
        GapTree(KEYS, depth=3).path_for(key)
    assert err.value.code == "listed_key"


@pytest.mark.parametrize(
    ("keys", "depth"),
    [
        pytest.param([3, 3], 3, id="shared_prefix"),
        pytest.param([0], 3, id="zero_key"),
        pytest.param([UPPER_SENTINEL], 3, id="key_at_upper_sentinel"),
        pytest.param(list(range(1, 9)), 3, id="too_many_for_depth"),
    ],
)
def test_unrepresentable_lists_are_refused(keys, depth):
    with pytest.raises(InvalidInputError):
        GapTree(keys, depth=depth)


def test_key248_is_the_first_31_bytes_big_endian():
    key = bytes(range(32))
    assert key248(key) == int.from_bytes(bytes(range(31)), "big")
    with pytest.raises(InvalidInputError):
        key248(b"short")


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(1, UPPER_SENTINEL - 1), max_size=7), st.integers(0, UPPER_SENTINEL - 1))
def test_gap_strictly_contains_every_unlisted_key(keys, key):
    tree = GapTree(keys, depth=3)
    if key in keys or key == 0:
        return
    path = tree.path_for(key)
    assert path.lo < key < path.hi
    assert _root_from_path(hash2(path.lo, path.hi), path.siblings, path.bits) == tree.root
