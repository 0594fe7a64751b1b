"""Malicious witnesses against circuits/screen_batch.circom must not yield a proof.

Two layers, because a witness generator's checks are not the circuit's:

* input level: a cheating prover feeds the honest witness generator impossible inputs (a listed key, a widened
  gap, a non-prefix slot mask, a wrong count); the generator's ``===`` assertions refuse, naming the template;
* witness level: a cheating prover skips the generator and edits the witness itself. An independent R1CS
  evaluator (tests/zk/r1cs.py) shows which constraint rejects the edit, and ``snarkjs wtns check`` agrees.
  This is what catches an under-constrained signal (``<--`` without a matching ``===``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from core.zk.evidence import field_hex
from core.zk.gaptree import UPPER_SENTINEL
from core.zk.toolchain import CIRCUIT_SOURCE, ZkToolError, calculate_witness, check_witness
from core.zk.witness import ScreenedLeaf, batch_input, batch_root, batches
from tests.zk import golden, r1cs, world


def _at(template: str, statement: str) -> str:
    """A pattern for the generator's error at ``statement`` (located in the circuit source, not
    hard-coded)."""
    lines = CIRCUIT_SOURCE.read_text().splitlines()
    (line,) = [i + 1 for i, text in enumerate(lines) if text.strip() == statement]
    return rf"{template}_\d+ line: {line}\b"


@cache
def constraints() -> list[r1cs.Constraint]:
    return r1cs.read_constraints(world.setup().compiled.r1cs)


@cache
def wires() -> dict[str, int]:
    return r1cs.wires_by_name(world.setup().compiled.sym)


def _witness(inputs: dict, path: Path) -> list[int]:
    calculate_witness(world.setup().compiled, inputs, path)
    return r1cs.read_witness(path)


def _honest_inputs(batch_index: int) -> dict:
    return batch_input(batches(world.leaves(), 2)[batch_index], world.CIRCUIT, world.gaps(), world.risk())


def _set_slot(inputs: dict, slot: int, key: int, lo: int, hi: int, gap_index: int) -> dict:
    path = world.gaps().path_at(gap_index)
    inputs = {k: (list(v) if isinstance(v, list) else v) for k, v in inputs.items()}
    inputs["key"][slot], inputs["lo"][slot], inputs["hi"][slot] = str(key), str(lo), str(hi)
    inputs["siblings"][slot] = [str(s) for s in path.siblings]
    inputs["pathBits"][slot] = [str(b) for b in path.bits]
    return inputs


def _listed_key_in_its_lower_gap(inputs: dict) -> dict:
    bounds = world.gaps().bounds
    return _set_slot(inputs, 0, bounds[2], bounds[1], bounds[2], 1)  # key == hi: not strictly inside


def _listed_key_in_a_widened_gap(inputs: dict) -> dict:
    bounds = world.gaps().bounds
    return _set_slot(
        inputs, 0, bounds[2], bounds[1], bounds[3], 1
    )  # (s1, s3) skips s2; path of the real gap 1


def _listed_key_with_lo_above_it(inputs: dict) -> dict:
    bounds = world.gaps().bounds
    return _set_slot(inputs, 0, bounds[2], bounds[2], bounds[3], 2)  # key == lo


def _slot_mask_not_a_prefix(inputs: dict) -> dict:
    return {**inputs, "enabled": ["0", "1"], "activeCount": "1"}


def _count_above_mask(inputs: dict) -> dict:
    return {**inputs, "enabled": ["1", "0"], "activeCount": "2"}


@pytest.mark.parametrize(
    ("forge", "template"),
    [
        pytest.param(_listed_key_in_its_lower_gap, "Num2Bits_", id="listed_key"),
        pytest.param(_listed_key_with_lo_above_it, "Num2Bits_", id="listed_key_as_lower_bound"),
        pytest.param(
            _listed_key_in_a_widened_gap,
            _at("ScreenSlot", "enabled * (path.root - gapRoot) === 0;"),
            id="widened_gap",
        ),
        pytest.param(
            _slot_mask_not_a_prefix,
            _at("ScreenBatch", "enabled[j] * (1 - enabled[j - 1]) === 0;"),
            id="slot_mask_not_a_prefix",
        ),
        pytest.param(
            _count_above_mask, _at("ScreenBatch", "activeCount === total;"), id="count_above_enabled_slots"
        ),
    ],
)
def test_impossible_inputs_are_refused_by_the_witness_generator(forge, template, tmp_path):
    with pytest.raises(ZkToolError) as err:
        calculate_witness(world.setup().compiled, forge(_honest_inputs(0)), tmp_path / "w.wtns")
    assert re.search(f"Error in template {template}", err.value.message), err.value.message


def test_honest_witness_satisfies_every_constraint(tmp_path):
    witness = _witness(_honest_inputs(2), tmp_path / "w.wtns")
    assert r1cs.broken(constraints(), witness) == []
    check_witness(world.setup().compiled, tmp_path / "w.wtns")


def _failing_wires(witness: list[int]) -> list[set[int]]:
    return [constraints()[i].wires for i in r1cs.broken(constraints(), witness)]


def test_disabled_slot_with_a_non_zero_leaf_breaks_the_gating_constraint(tmp_path):
    # Batch 2 holds one supplier: slot 1 is disabled and its leaf must be 0.
    honest = tmp_path / "w.wtns"
    witness = _witness(_honest_inputs(2), honest)
    leaf, leaf_hash = wires()["main.slots[1].leaf"], wires()["main.slots[1].leafHash.out"]
    assert witness[leaf] == 0
    forged = list(witness)
    forged[leaf] = 12345
    assert any({leaf, leaf_hash} <= w for w in _failing_wires(forged))  # leaf === enabled * leafHash.out
    r1cs.write_witness(honest, forged, tmp_path / "forged.wtns")
    with pytest.raises(ZkToolError):
        check_witness(world.setup().compiled, tmp_path / "forged.wtns")


def test_key_outside_the_committed_tree_cannot_output_the_committed_batch_root(tmp_path):
    # Screen a clean key the commitment does not hold, then claim the committed batch root as output.
    committed = batches(world.leaves(), 2)[0]
    stranger = ScreenedLeaf(
        key=(world.gaps().bounds[1] + 1), salt=committed[0].salt, blake_leaf=committed[0].blake_leaf
    )
    assert stranger.key < world.gaps().bounds[2] < UPPER_SENTINEL
    swapped = [stranger, committed[1]]
    path = tmp_path / "w.wtns"
    witness = _witness(batch_input(swapped, world.CIRCUIT, world.gaps(), world.risk()), path)
    assert witness[1] == batch_root(swapped, world.CIRCUIT) != batch_root(committed, world.CIRCUIT)
    forged = list(witness)
    forged[1] = batch_root(committed, world.CIRCUIT)  # wire 1 is the public output batchRoot
    assert r1cs.broken(constraints(), forged)
    r1cs.write_witness(path, forged, tmp_path / "forged.wtns")
    with pytest.raises(ZkToolError):
        check_witness(world.setup().compiled, tmp_path / "forged.wtns")
    assert field_hex(forged[1]) == golden.evidence().batches[0].batch_root  # what the proof claims


def test_listed_key_patched_into_an_honest_witness_breaks_the_range_checks(tmp_path):
    witness = _witness(_honest_inputs(0), tmp_path / "w.wtns")
    forged = list(witness)
    key = wires()["main.key[0]"]
    forged[key] = world.gaps().bounds[2]
    below, above = wires()["main.slots[0].below"], wires()["main.slots[0].above"]
    failing = _failing_wires(forged)
    assert any(key in w and (below in w or above in w) for w in failing)


def test_tier_wider_than_16_bits_is_refused_by_the_range_check(tmp_path):
    # 2^16 + 3 would pack into the leaf as tier 1 of jurisdiction code + 3: the range check refuses it.
    inputs = _honest_inputs(0)
    inputs = {**inputs, "tier": [str((1 << 16) + 3), inputs["tier"][1]]}
    with pytest.raises(ZkToolError) as err:
        calculate_witness(world.setup().compiled, inputs, tmp_path / "w.wtns")
    assert re.search(r"Error in template Num2Bits_\d+", err.value.message), err.value.message


@pytest.mark.parametrize(
    ("batch_index", "output", "claimed"),
    [
        pytest.param(1, 2, 2, id="max_tier_lowered"),  # batch 1 holds a tier-3 supplier
        pytest.param(2, 3, 0, id="high_risk_count_hidden"),  # batch 2 holds the supplier in CN
    ],
)
def test_forged_attribute_outputs_break_the_constraints(batch_index, output, claimed, tmp_path):
    path = tmp_path / "w.wtns"
    witness = _witness(_honest_inputs(batch_index), path)
    # wires 1..3 are the public outputs batchRoot, maxTier, highRiskCount
    expected = world.evidence().batches[batch_index]
    assert (witness[2], witness[3]) == (expected.max_tier, expected.high_risk_count)
    assert witness[output] != claimed
    forged = list(witness)
    forged[output] = claimed
    assert r1cs.broken(constraints(), forged)
    r1cs.write_witness(path, forged, tmp_path / "forged.wtns")
    with pytest.raises(ZkToolError):
        check_witness(world.setup().compiled, tmp_path / "forged.wtns")


def test_high_risk_flag_cleared_inside_the_slot_breaks_is_zero(tmp_path):
    # Clear the CN supplier's flag and the count together: IsZero's constraints refuse it.
    witness = _witness(_honest_inputs(2), tmp_path / "w.wtns")
    flag, listed = wires()["main.slots[0].highRisk"], wires()["main.slots[0].listed.out"]
    assert witness[flag] == witness[listed] == 1
    forged = list(witness)
    forged[flag] = forged[listed] = forged[3] = 0
    failing = _failing_wires(forged)
    assert any(listed in w for w in failing)
