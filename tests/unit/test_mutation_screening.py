"""Non-membership and membership proofs that lie about positions never verify (core/screening.py).

The attacks named in issue 15: a listed key "proved" absent by neighbours whose declared indices are
adjacent while their inclusion proofs sit further apart; a successor-only proof not at index 0; a
predecessor-only proof not at the last index. Each case kills a mutant of core/screening.py
(``make mutation MODULE=core/screening.py``).
"""

import pytest

from core.merkle import EMPTY_ROOT, MerkleTree
from core.screening import (
    MembershipProof,
    Neighbour,
    NonMembershipProof,
    SanctionsList,
    verify_membership,
    verify_non_membership,
)

LISTS = SanctionsList({f"name {i}": [f"t:{i}"] for i in range(6)}, ["test"])
KEYS, TREE, ROOT = LISTS.keys, LISTS.tree, LISTS.root


def hx(key):
    return "0x" + key.hex()


def neighbour(index, proof_index=None, key_index=None):
    """Neighbour claiming ``index``; its key and inclusion proof may come from other positions."""
    proof_index = index if proof_index is None else proof_index
    key_index = proof_index if key_index is None else key_index
    return Neighbour(index=index, key=hx(KEYS[key_index]), proof=TREE.prove(proof_index))


def absent(key, pred=None, succ=None, size=len(KEYS)):
    return NonMembershipProof(key=hx(key), tree_size=size, predecessor=pred, successor=succ)


def between(i):
    """A 32-byte key strictly between KEYS[i] and KEYS[i + 1] (not listed)."""
    key = bytearray(KEYS[i])
    key[-1] ^= 0x01 if key[-1] & 1 == 0 else 0x00
    key = (
        bytes(key) if KEYS[i] < bytes(key) < KEYS[i + 1] else KEYS[i][:31] + bytes([(KEYS[i][31] + 1) % 256])
    )
    assert KEYS[i] < key < KEYS[i + 1]
    return key


def test_honest_proofs_verify():
    for i in range(len(KEYS) - 1):
        key = between(i)
        assert verify_non_membership(key, LISTS.prove_absent(key), ROOT)
    for key in KEYS:
        assert verify_membership(key, LISTS.prove_present(key), ROOT)


def test_listed_key_cannot_be_proved_absent_by_relabelled_neighbours():
    """Predecessor at 1, successor really at 3 but labelled 2: the listed key at 2 would vanish."""
    listed = KEYS[2]
    forged = absent(listed, pred=neighbour(1), succ=neighbour(2, proof_index=3))
    assert not verify_non_membership(listed, forged, ROOT)


def test_neighbour_whose_key_is_not_at_its_proof_index_fails():
    forged = absent(between(1), pred=neighbour(1), succ=neighbour(2, proof_index=2, key_index=3))
    assert not verify_non_membership(between(1), forged, ROOT)


def test_successor_only_proof_must_be_at_index_0():
    key = between(1)  # really between KEYS[1] and KEYS[2]
    assert not verify_non_membership(key, absent(key, succ=neighbour(2)), ROOT)
    smallest = bytes(32)
    assert smallest < KEYS[0]
    assert verify_non_membership(smallest, absent(smallest, succ=neighbour(0)), ROOT)


def test_predecessor_only_proof_must_be_at_the_last_index():
    key = between(1)
    assert not verify_non_membership(key, absent(key, pred=neighbour(1)), ROOT)
    largest = b"\xff" * 32
    assert verify_non_membership(largest, absent(largest, pred=neighbour(len(KEYS) - 1)), ROOT)


def test_neighbours_must_be_adjacent():
    key = between(1)
    assert not verify_non_membership(key, absent(key, pred=neighbour(1), succ=neighbour(3)), ROOT)
    assert not verify_non_membership(key, absent(key, pred=neighbour(0), succ=neighbour(2)), ROOT)


def test_neighbours_must_be_on_the_right_side_of_the_key():
    key = between(2)
    # the real neighbours of between(2) are 2 and 3; 1 and 2 are adjacent but both below the key
    assert not verify_non_membership(key, absent(key, pred=neighbour(1), succ=neighbour(2)), ROOT)
    assert not verify_non_membership(key, absent(key, pred=neighbour(3), succ=neighbour(4)), ROOT)


def test_neighbour_proof_must_be_for_the_claimed_tree_size():
    small = MerkleTree(KEYS[:4])
    key = between(3)
    pred = Neighbour(index=3, key=hx(KEYS[3]), proof=small.prove(3))
    assert verify_non_membership(key, absent(key, pred=pred, size=4), small.root)
    assert not verify_non_membership(key, absent(key, pred=pred, size=len(KEYS)), ROOT)
    honest = LISTS.prove_absent(key)
    assert not verify_non_membership(key, honest.model_copy(update={"tree_size": len(KEYS) + 1}), ROOT)


def test_proof_for_another_key_fails():
    key, other = between(1), between(3)
    assert not verify_non_membership(key, LISTS.prove_absent(other), ROOT)
    assert not verify_non_membership(key[:31], LISTS.prove_absent(key), ROOT)
    assert not verify_membership(KEYS[0], LISTS.prove_present(KEYS[1]), ROOT)
    assert not verify_membership(KEYS[0][:31], LISTS.prove_present(KEYS[0]), ROOT)


def test_proof_against_another_root_fails():
    key = between(1)
    other = SanctionsList({"someone else": ["x"]}, ["x"]).root
    assert not verify_non_membership(key, LISTS.prove_absent(key), other)
    assert not verify_membership(KEYS[0], LISTS.prove_present(KEYS[0]), other)


def test_empty_tree_proves_absence_only_with_no_neighbours_and_the_empty_root():
    key = between(0)
    empty = absent(key, size=0)
    assert verify_non_membership(key, empty, EMPTY_ROOT)
    assert not verify_non_membership(key, empty, ROOT)
    assert not verify_non_membership(key, absent(key, succ=neighbour(0), size=0), EMPTY_ROOT)
    assert not verify_non_membership(key, absent(key, pred=neighbour(0), size=0), EMPTY_ROOT)


def test_no_neighbours_in_a_non_empty_tree_is_not_a_proof():
    key = between(0)
    assert not verify_non_membership(key, absent(key), ROOT)


@pytest.mark.parametrize("index", [0, 3, 5])
def test_listed_key_has_no_absence_proof_and_absent_key_no_membership_proof(index):
    from core.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as caught:
        LISTS.prove_absent(KEYS[index])
    assert caught.value.code == "key_is_listed"
    with pytest.raises(InvalidInputError) as caught:
        LISTS.prove_present(between(min(index, 4)))
    assert caught.value.code == "key_not_listed"
    assert LISTS.contains(KEYS[index]) and not LISTS.contains(between(min(index, 4)))


def test_membership_proof_with_wrong_index_fails():
    proof = LISTS.prove_present(KEYS[2])
    moved = MembershipProof(key=proof.key, proof=proof.proof.model_copy(update={"index": 3}))
    assert not verify_membership(KEYS[2], moved, ROOT)


def test_absence_proofs_at_both_ends_are_built_with_one_neighbour():
    low, high = bytes(32), b"\xff" * 32
    assert LISTS.prove_absent(low).predecessor is None and LISTS.prove_absent(low).successor.index == 0
    top = LISTS.prove_absent(high)
    assert top.successor is None and top.predecessor.index == len(KEYS) - 1
    assert top.tree_size == len(KEYS)
