"""The mcl Groth16 verifier: agrees with py_ecc, batch verification, and the guards around the mclbn256
wheel."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.zk import mcl
from core.zk.groth16 import batch_verify, verify
from core.zk.poseidon import P
from tests.zk import golden, pyecc_oracle, world


def _items():
    ev = golden.evidence()
    gap_root = int(ev.gap_root, 16)
    return [(b.proof, b.public_signals(gap_root, world.risk())) for b in ev.batches]


def test_mcl_and_py_ecc_agree_on_a_valid_and_a_tampered_proof():
    proof, public = _items()[0]
    tampered = (*public[:4], public[4] - 1, *public[5:])
    assert verify(golden.vk(), proof, public) is True
    assert pyecc_oracle.verify(golden.vk(), proof, public) is True
    assert verify(golden.vk(), proof, tampered) is False
    assert pyecc_oracle.verify(golden.vk(), proof, tampered) is False


def test_batch_verification_accepts_all_valid_and_rejects_one_bad_among_many():
    items = _items() * 4
    assert batch_verify(golden.vk(), items)
    proof, public = items[5]
    bad = [*items[:5], (proof, (public[0], (public[1] + 1) % P, *public[2:])), *items[6:]]
    assert not batch_verify(golden.vk(), bad)
    assert not batch_verify(golden.vk(), [])


@pytest.mark.parametrize(
    "public",
    [
        pytest.param(lambda p: (*p, 0), id="extra_public_input"),
        pytest.param(lambda p: p[:-1], id="missing_public_input"),
        pytest.param(lambda p: (p[0] + P, *p[1:]), id="unreduced_public_input_aliasing_the_same_scalar"),
    ],
)
def test_public_input_shape_and_range_are_enforced(public):
    proof, values = _items()[0]
    assert not verify(golden.vk(), proof, public(values))


def test_off_curve_g1_point_is_rejected():
    proof, public = _items()[0]
    moved = proof.model_copy(update={"c": (proof.c[0], str((int(proof.c[1]) + 1) % P))})
    assert not verify(golden.vk(), moved, public)


def test_g2_point_outside_the_subgroup_is_rejected_because_order_checks_are_on():
    outside = pyecc_oracle.g2_point_outside_subgroup()
    with pytest.raises(mcl.PointError):
        mcl.g2(outside)
    lib = mcl.library()
    lib.mclBn_verifyOrderG2(0)  # the wheel's default: the same point is then accepted
    try:
        mcl.g2(outside)
    finally:
        lib.mclBn_verifyOrderG2(1)
    proof, public = _items()[0]
    assert not verify(golden.vk(), proof.model_copy(update={"b": outside}), public)


def test_a_wheel_that_does_not_match_the_pin_is_refused(monkeypatch):
    mcl.library.cache_clear()
    monkeypatch.setattr(mcl, "PINNED_SHA256", "0" * 64)
    try:
        with pytest.raises(ConfigError) as err:
            mcl.library()
        assert "pinned" in err.value.message
    finally:
        monkeypatch.undo()
        mcl.library.cache_clear()
    proof, public = _items()[0]
    assert verify(golden.vk(), proof, public)
