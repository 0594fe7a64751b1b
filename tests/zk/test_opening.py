"""Auditor openings: one supplier's record agrees with both the BLAKE3 commitment and the proved Poseidon
batch."""

from __future__ import annotations

import pytest

from core.commitments import supplier_leaf
from core.merkle import MerkleTree
from core.zk.evidence import field_hex
from core.zk.opening import check_opening, open_supplier
from tests.zk import golden, world


def _root() -> bytes:
    return MerkleTree([supplier_leaf(s) for s in world.SUPPLIERS]).root


@pytest.mark.parametrize("row", range(len(world.SUPPLIERS)))
def test_every_row_opens_against_both_commitments(row):
    opening = open_supplier(world.leaves(), world.SUPPLIERS, world.CIRCUIT.batch_size, row)
    assert check_opening(opening, _root(), golden.evidence()) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"name": "Acme Trading GmbH "}, id="other_name_same_key_but_other_blake3_leaf"),
        pytest.param({"tier": 2}, id="other_record_fields"),
        pytest.param({"salt": field_hex(1)}, id="wrong_salt"),
        pytest.param({"row": 1}, id="claimed_at_another_row"),
    ],
)
def test_altered_openings_are_refused(change):
    opening = open_supplier(world.leaves(), world.SUPPLIERS, world.CIRCUIT.batch_size, 0)
    assert check_opening(opening.model_copy(update=change), _root(), golden.evidence())


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"jurisdiction": "de"}, id="jurisdiction_not_an_alpha2_code"),
        pytest.param({"tier": 1 << 16}, id="tier_wider_than_the_circuit"),
    ],
)
def test_an_opening_no_circuit_leaf_can_hold_is_a_named_failure_not_a_crash(change):
    opening = open_supplier(world.leaves(), world.SUPPLIERS, world.CIRCUIT.batch_size, 0)
    failures = check_opening(opening.model_copy(update=change), _root(), golden.evidence())
    assert failures[-1].startswith("record cannot be a circuit leaf: ")
    assert ("jurisdiction" if "jurisdiction" in change else "tier") in failures[-1]
