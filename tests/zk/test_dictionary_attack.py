"""A verifier who knows every real supplier name tries to recover suppliers from a v3 proof: it must get 0.

The attacker derives, for every candidate record, everything the prover could have leaked (screening key in
hex, key248 in hex and decimal, the BLAKE3 supplier leaf and its field form, the unsalted Poseidon leaf) and
searches the evidence and the commitment for it; then it tries every pair of candidates against every batch
root under guessable salts. The control runs the same attack on the same suppliers committed without salts
(and on a key-disclosing v2-style evidence) and must recover all of them, so a 0 means the salts work, not a
blind attack.
"""

from __future__ import annotations

import itertools

from core.canonical import canonical_bytes
from core.commitments import Supplier, supplier_leaf
from core.screening import screening_key
from core.zk.gaptree import key248
from core.zk.poseidon import poseidon
from core.zk.witness import ScreenedLeaf, batch_root, batches, blake_field
from tests.zk import golden, world

DECOYS = [Supplier(f"Decoy Supplier {i} GmbH", "DE", 1 + i % 3) for i in range(40)]
GUESSABLE_SALTS = (0, 1)


def _traces(s: Supplier) -> set[str]:
    key, leaf = screening_key(s.name), supplier_leaf(s)
    k248, blake = key248(key), blake_field(leaf)
    values = {k248, blake, poseidon((k248,)), *(poseidon((k248, salt, blake)) for salt in GUESSABLE_SALTS)}
    texts = {key.hex(), leaf.hex(), key.hex()[:62]}
    for v in values:
        texts |= {str(v), f"{v:064x}", f"{v:x}"}
    return texts


def _attack(blob: bytes, batch_roots: list[int], candidates: list[Supplier]) -> set[str]:
    text = blob.decode()
    found = {c.name for c in candidates if any(t in text for t in _traces(c))}
    leaves = [
        (c.name, ScreenedLeaf(key248(screening_key(c.name)), salt, blake_field(supplier_leaf(c))))
        for c in candidates
        for salt in GUESSABLE_SALTS
    ]
    wanted = set(batch_roots)
    for name, leaf in leaves:
        if batch_root([leaf], world.CIRCUIT) in wanted:
            found.add(name)
    for (a, la), (b, lb) in itertools.permutations(leaves, 2):
        if batch_root([la, lb], world.CIRCUIT) in wanted:
            found |= {a, b}
    return found


def _candidates() -> list[Supplier]:
    return [*world.SUPPLIERS, *DECOYS[:6]]


def test_v3_evidence_reveals_no_supplier():
    ev, commitment = golden.evidence(), golden.commitment()
    blob = canonical_bytes(ev) + canonical_bytes(commitment)
    roots = [int(b.batch_root, 16) for b in ev.batches]
    assert _attack(blob, roots, _candidates()) == set()


def test_control_the_same_attack_recovers_every_unsalted_or_disclosed_supplier():
    unsalted = [ScreenedLeaf(leaf.key, 0, leaf.blake_leaf) for leaf in world.leaves()]
    roots = [batch_root(b, world.CIRCUIT) for b in batches(unsalted, world.CIRCUIT.batch_size)]
    assert _attack(b"{}", roots, _candidates()) == {s.name for s in world.SUPPLIERS}
    disclosed = canonical_bytes({"keys": ["0x" + screening_key(s.name).hex() for s in world.SUPPLIERS]})
    assert _attack(disclosed, [], _candidates()) == {s.name for s in world.SUPPLIERS}
