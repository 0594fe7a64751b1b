"""The mcl Groth16 verifier: agrees with py_ecc, batch verification, and the guards around the mclbn256
wheel."""

from __future__ import annotations

import pytest

from core.errors import ConfigError, InvalidInputError
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


def _snarkjs_vk(vk) -> dict:
    def g1(p):
        return [p[0], p[1], "1"]

    def g2(p):
        return [list(p[0]), list(p[1]), ["1", "0"]]

    return {
        "protocol": "groth16",
        "curve": "bn128",
        "nPublic": vk.n_public,
        "vk_alpha_1": g1(vk.alpha_1),
        "vk_beta_2": g2(vk.beta_2),
        "vk_gamma_2": g2(vk.gamma_2),
        "vk_delta_2": g2(vk.delta_2),
        "IC": [g1(p) for p in vk.ic],
    }


def test_a_vk_with_an_ic_point_at_infinity_is_degenerate_and_counts_only_as_development():
    from core.zk.evidence import Failure, TrustedVk, check_screening
    from core.zk.groth16 import proof_from_snarkjs, vk_from_snarkjs

    doc = _snarkjs_vk(golden.vk())
    assert vk_from_snarkjs(doc) == golden.vk() and not golden.vk().degenerate
    doc["IC"][5] = ["0", "1", "0"]  # activeCount unbound: what a tau = 1 phase 1 gives
    vk = vk_from_snarkjs(doc)
    assert vk.degenerate
    mcl.g1(vk.ic[5])  # the neutral element loads (the timing-only setup's vk must verify)
    ev, commitment = golden.evidence(), golden.commitment()
    pins = {vk.vk_hash: TrustedVk(vk, world.CIRCUIT.name, 2, 3, production=True)}
    moved = ev.model_copy(update={"vk_hash": vk.vk_hash})
    strict = check_screening(moved, commitment, pins, [ev.gap_root], world.HIGH_RISK)
    assert [f for f, _ in strict.failures] == [Failure.UNTRUSTED_VK]
    assert strict.failures[0][1] == "vk is degenerate (a public input is unbound) (NOT FOR PRODUCTION)"
    # a proof point is never allowed to be the point at infinity
    proof = {"pi_a": ["0", "1", "0"], "pi_b": doc["vk_beta_2"], "pi_c": doc["vk_alpha_1"]}
    with pytest.raises(InvalidInputError):
        proof_from_snarkjs(proof)


def test_g1_points_decode_to_what_mcl_itself_decodes_and_off_curve_or_unreduced_ones_are_refused():
    import ctypes

    lib = mcl.library()
    q = 21888242871839275222246405745257275088696311157297823662689037894645226208583  # BN254 base field
    proof, _ = _items()[0]
    for xy in (proof.a, proof.c, *golden.vk().ic, golden.vk().alpha_1):
        ours, theirs = mcl.g1(xy), mcl.G1()
        raw = f"1 {xy[0]} {xy[1]}".encode()
        assert lib.mclBnG1_setStr(ctypes.byref(theirs), raw, len(raw), 10) == 0
        assert lib.mclBnG1_isEqual(ctypes.byref(ours), ctypes.byref(theirs)) == 1
        assert lib.mclBnG1_isValid(ctypes.byref(ours)) == 1
    x, y = proof.a
    for bad in ((x, str(int(y) + 1)), (str(int(x) + q), y), (x, str(q - int(y) + q))):
        with pytest.raises(mcl.PointError):
            mcl.g1(bad)
    assert mcl.g1((x, str(q - int(y))))  # -A is on the curve too


def test_large_batches_split_over_threads_accept_valid_and_reject_a_bad_point_or_input():
    items = _items() * 12  # 36 proofs: past mcl.PARALLEL_FROM, decoding and Miller loops run on 2 threads
    assert len(items) >= mcl.PARALLEL_FROM
    assert batch_verify(golden.vk(), items)
    proof, public = items[30]
    tampered = [*items[:30], (proof, (*public[:3], public[3] + 1, *public[4:])), *items[31:]]
    assert not batch_verify(golden.vk(), tampered)
    outside = proof.model_copy(update={"b": pyecc_oracle.g2_point_outside_subgroup()})
    assert not batch_verify(golden.vk(), [*items[:33], (outside, public), *items[34:]])  # raised in a thread


def test_split_pairing_product_equals_the_single_one(monkeypatch):
    items = _items() * 12
    points = [(mcl.g1(p.a), mcl.g2(p.b)) for p, _ in items]
    g1s, g2s = [a for a, _ in points], [b for _, b in points]
    # Π e(A_i, B_i) is not 1, but Π e(A_i, B_i) · Π e(-A_i, B_i) is: the same verdicts split or not
    both = ([*g1s, *[mcl.neg(a) for a in g1s]], [*g2s, *g2s])
    assert not mcl.pairing_product_is_one(g1s, g2s) and mcl.pairing_product_is_one(*both)
    monkeypatch.setattr(mcl, "PARALLEL_FROM", 10**9)
    assert not mcl.pairing_product_is_one(g1s, g2s) and mcl.pairing_product_is_one(*both)


def _verify_in_child(conn) -> None:
    conn.send(batch_verify(golden.vk(), _items() * 12))


def test_a_forked_child_verifies_large_batches_with_its_own_threads():
    # mutmut, multiprocessing's fork start method and pre-fork servers fork after the parent used the pool;
    # an inherited pool has no threads, and a map on it used to wait forever.
    import multiprocessing

    assert batch_verify(golden.vk(), _items() * 12)  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_verify_in_child, args=(child,))
    process.start()
    try:
        assert parent.poll(60), "the forked child hung on the inherited thread pool"
        assert parent.recv() is True
    finally:
        process.kill()
        process.join()
