"""v3 screening evidence: the golden vector verifies, and each way of breaking it fails on the rule it breaks.

Every case is the committed golden evidence changed in one way (no proving needed). Failures are named by
:class:`core.zk.evidence.Failure`; the pairing check is reached only when every cheap rule passed, so the
cases that tamper with what the proof proves (public inputs) must fail on ``zk_proof_invalid`` itself.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.errors import VerificationError
from core.zk.evidence import (
    BatchProof,
    Failure,
    ScreeningCommitment,
    ScreeningEvidence,
    check_screening,
    field_hex,
    screening_root,
    verify_screening,
)
from core.zk.groth16 import VerifyingKey
from core.zk.poseidon import P
from tests.zk import golden, world


def _check(
    ev: ScreeningEvidence,
    commitment: ScreeningCommitment | None = None,
    trusted=None,
    roots=None,
    high_risk=world.HIGH_RISK,
):
    return check_screening(
        ev,
        commitment or golden.commitment(),
        trusted if trusted is not None else golden.trusted(),
        roots if roots is not None else [golden.doc()["gap_root"]],
        high_risk,
        allow_development=True,
    )


def test_golden_evidence_verifies():
    result = _check(golden.evidence())
    assert result.ok, result.failures
    verify_screening(
        golden.evidence(),
        golden.commitment(),
        golden.trusted(),
        [golden.doc()["gap_root"]],
        world.HIGH_RISK,
        allow_development=True,
    )
    assert (golden.evidence().max_tier, golden.evidence().high_risk_count) == (3, 1)


def test_development_vk_is_refused_unless_allowed():
    ev, roots = golden.evidence(), [golden.doc()["gap_root"]]
    result = check_screening(ev, golden.commitment(), golden.trusted(), roots, world.HIGH_RISK)
    assert [f for f, _ in result.failures] == [Failure.UNTRUSTED_VK]
    assert "development" in result.failures[0][1]


def _with_batches(ev: ScreeningEvidence, batches: list[BatchProof], **changes) -> ScreeningEvidence:
    return ev.model_copy(update={"batches": tuple(batches), **changes})


def _consistent(
    ev: ScreeningEvidence, batches: list[BatchProof], count: int
) -> tuple[ScreeningEvidence, ScreeningCommitment]:
    """Evidence and a commitment that agree on ``batches`` (as a lying prover would sign them)."""
    roots = [int(b.batch_root, 16) for b in batches]
    root = screening_root(ev.batch_size, count, roots)
    changed = _with_batches(ev, batches, count=count, screening_root=root)
    return changed, ScreeningCommitment(batch_size=ev.batch_size, count=count, screening_root=root)


def _swap_public_root(ev: ScreeningEvidence) -> tuple[ScreeningEvidence, ScreeningCommitment]:
    # A prover claims another root for batch 0 and signs the matching commitment: only the pairing sees it.
    batches = list(ev.batches)
    batches[0] = batches[0].model_copy(
        update={"batch_root": field_hex((int(batches[0].batch_root, 16) + 1) % P)}
    )
    return _consistent(ev, batches, ev.count)


def _last_count_raised(ev: ScreeningEvidence) -> tuple[ScreeningEvidence, ScreeningCommitment]:
    # Claim the partial last batch holds 2 suppliers instead of 1, with a commitment signed for 6: the layout
    # rules pass, the proof (made for activeCount = 1) must not.
    batches = list(ev.batches)
    batches[-1] = batches[-1].model_copy(update={"active_count": 2})
    return _consistent(ev, batches, ev.count + 1)


def _max_tier_lowered(ev: ScreeningEvidence) -> tuple[ScreeningEvidence, ScreeningCommitment]:
    # Batch 1 holds the tier-3 supplier; claim its highest tier is 2 (a policy capping tiers at 2 would pass).
    batches = list(ev.batches)
    batches[1] = batches[1].model_copy(update={"max_tier": 2})
    return _with_batches(ev, batches), golden.commitment()


def _high_risk_hidden(ev: ScreeningEvidence) -> tuple[ScreeningEvidence, ScreeningCommitment]:
    # Batch 2 holds the supplier in CN (high-risk): claim it holds none.
    batches = list(ev.batches)
    batches[2] = batches[2].model_copy(update={"high_risk_count": 0})
    return _with_batches(ev, batches), golden.commitment()


def _proof_of_other_batch(ev: ScreeningEvidence) -> tuple[ScreeningEvidence, ScreeningCommitment]:
    batches = list(ev.batches)
    batches[1] = batches[1].model_copy(update={"proof": batches[0].proof})
    return ev.model_copy(update={"batches": tuple(batches)}), golden.commitment()


CASES: list[
    tuple[str, Callable[[ScreeningEvidence], tuple[ScreeningEvidence, ScreeningCommitment]], Failure]
] = [
    ("tampered_batch_root_with_matching_commitment", _swap_public_root, Failure.PROOF_INVALID),
    ("last_batch_count_raised_consistently", _last_count_raised, Failure.PROOF_INVALID),
    ("proof_moved_to_another_batch", _proof_of_other_batch, Failure.PROOF_INVALID),
    ("max_tier_lowered", _max_tier_lowered, Failure.PROOF_INVALID),
    ("high_risk_supplier_hidden", _high_risk_hidden, Failure.PROOF_INVALID),
]


@pytest.mark.parametrize(("mutate", "failure"), [pytest.param(m, f, id=i) for i, m, f in CASES])
def test_tampered_public_inputs_fail_the_pairing_check(mutate, failure):
    ev, commitment = mutate(golden.evidence())
    result = _check(ev, commitment)
    assert [f for f, _ in result.failures] == [failure]


def test_other_list_root_is_untrusted_and_does_not_verify_either():
    ev = golden.evidence()
    other = field_hex(12345)
    # untrusted: the verifier only accepts list roots it trusts
    assert Failure.UNTRUSTED_LIST_ROOT in [
        f for f, _ in _check(ev.model_copy(update={"gap_root": other})).failures
    ]
    # even a verifier that trusted the other root rejects: the proofs were made against the real one
    result = _check(ev.model_copy(update={"gap_root": other}), roots=[other])
    assert [f for f, _ in result.failures] == [Failure.PROOF_INVALID]


def test_high_risk_set_is_the_verifiers_not_the_provers():
    # The verifier's trusted lists name another HIGH set: refused by name before any pairing ...
    result = _check(golden.evidence(), high_risk=("CN", "IR", "RU"))
    assert [f for f, _ in result.failures] == [Failure.UNTRUSTED_HIGH_RISK]
    assert "['CN', 'RU']" in result.failures[0][1]
    # ... and evidence relabelled to the verifier's set does not verify: the proofs counted against CN, RU.
    relabelled = golden.evidence().model_copy(update={"high_risk": ("CN", "IR", "RU")})
    result = _check(relabelled, high_risk=("CN", "IR", "RU"))
    assert [f for f, _ in result.failures] == [Failure.PROOF_INVALID]
    # Proofs counted against CN, RU cannot pass for proofs counted against no set (no jurisdiction root).
    result = _check(golden.evidence().model_copy(update={"high_risk": ()}), high_risk=())
    assert [f for f, _ in result.failures] == [Failure.PROOF_INVALID]


def test_other_commitment_is_rejected():
    other = golden.commitment().model_copy(update={"screening_root": "0x" + "ab" * 32})
    assert [f for f, _ in _check(golden.evidence(), other).failures] == [Failure.COMMITMENT_MISMATCH]


def test_wrong_count_is_rejected():
    other = golden.commitment().model_copy(update={"count": 6})
    failures = [f for f, _ in _check(golden.evidence(), other).failures]
    assert Failure.COUNT_MISMATCH in failures


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda b: b[:-1], id="last_batch_omitted"),
        pytest.param(lambda b: b[1:], id="first_batch_omitted"),
        pytest.param(lambda b: [b[0], b[0], b[2]], id="batch_duplicated_in_place_of_another"),
        pytest.param(lambda b: [*b, b[2]], id="batch_duplicated_appended"),
        pytest.param(lambda b: [b[1], b[0], b[2]], id="batches_reordered"),
    ],
)
def test_omitted_duplicated_or_reordered_batches_are_rejected(edit):
    ev = golden.evidence()
    changed = _with_batches(ev, edit(list(ev.batches)))
    result = _check(changed)
    assert not result.ok
    assert {f for f, _ in result.failures} <= {Failure.BATCH_LAYOUT, Failure.COMMITMENT_MISMATCH}


def test_untrusted_vk_is_rejected_before_any_pairing():
    result = _check(golden.evidence(), trusted={})
    assert [f for f, _ in result.failures] == [Failure.UNTRUSTED_VK]
    with pytest.raises(VerificationError) as err:
        verify_screening(golden.evidence(), golden.commitment(), {}, [golden.doc()["gap_root"]])
    assert err.value.code == "untrusted_vk"


def test_a_different_vk_under_the_claimed_hash_is_rejected():
    # A verifier whose pin table maps the proof's vk hash to some other key must not use that key.
    vk = golden.vk()
    other = VerifyingKey.model_validate({**vk.model_dump(), "ic": (vk.ic[1], vk.ic[0], *vk.ic[2:])})
    pins = {vk.vk_hash: golden.trusted(other)[other.vk_hash]}
    assert [f for f, _ in _check(golden.evidence(), trusted=pins).failures] == [Failure.UNTRUSTED_VK]


def test_vk_pinned_for_another_circuit_shape_is_rejected():
    pins = golden.trusted()
    (entry,) = pins.values()
    pins = {golden.vk().vk_hash: entry.__class__(entry.vk, "screen-b4-d3", 4, 3, production=False)}
    assert [f for f, _ in _check(golden.evidence(), trusted=pins).failures] == [Failure.UNTRUSTED_VK]


def test_malformed_batch_root_is_reported_not_raised():
    ev = golden.evidence()
    batches = list(ev.batches)
    batches[0] = batches[0].model_copy(update={"batch_root": field_hex(P)[:-1] + "z"})
    assert Failure.MALFORMED in [f for f, _ in _check(_with_batches(ev, batches)).failures]


def test_each_failure_names_its_rule_and_says_why():
    ev, commitment = golden.evidence(), golden.commitment()
    wrong_scheme = _check(ev.model_copy(update={"scheme": "other"}))
    assert wrong_scheme.failures == ((Failure.WRONG_SCHEME, "expected screen-groth16-bn254-v1"),)
    assert (
        _check(ev, commitment.model_copy(update={"scheme": "other"})).failures[0][0] is Failure.WRONG_SCHEME
    )
    other_size = _check(ev, commitment.model_copy(update={"batch_size": 4}))
    assert (Failure.BATCH_LAYOUT, "batch size differs from the commitment's") in other_size.failures
    (entry,) = golden.trusted().values()
    shape = {golden.vk().vk_hash: entry.__class__(entry.vk, "screen-b4-d3", 4, 3, production=False)}
    assert _check(ev, trusted=shape).failures == (
        (Failure.UNTRUSTED_VK, "vk is pinned for another circuit shape"),
    )
    dev = check_screening(ev, commitment, golden.trusted(), [golden.doc()["gap_root"]], world.HIGH_RISK)
    assert dev.failures == ((Failure.UNTRUSTED_VK, "vk is a development key (NOT FOR PRODUCTION)"),)
    bad_proof = _with_batches(
        ev, [ev.batches[0].model_copy(update={"proof": ev.batches[1].proof}), *ev.batches[1:]]
    )
    assert _check(bad_proof).failures == ((Failure.PROOF_INVALID, "a batch proof does not verify"),)
    other_root = commitment.model_copy(update={"screening_root": "0x" + "ab" * 32})
    assert _check(ev, other_root).failures == (
        (Failure.COMMITMENT_MISMATCH, "batch roots do not rebuild the signed screening root"),
    )
    malformed_gap = ev.model_copy(update={"gap_root": "0x" + "zz" * 32})
    (malformed,) = [m for f, m in _check(malformed_gap, roots=[malformed_gap.gap_root]).failures]
    assert malformed == "not a field element (field gap_root); expected 0x + 64 hex"
    batches = list(ev.batches)
    batches[1] = batches[1].model_copy(update={"batch_root": "0x12"})
    (malformed,) = [m for f, m in _check(_with_batches(ev, batches)).failures if f is Failure.MALFORMED]
    assert "batches[1].batch_root" in malformed


def test_verify_screening_refuses_development_keys_by_default_and_names_every_failure():
    ev, roots = golden.evidence(), [golden.doc()["gap_root"]]
    with pytest.raises(VerificationError) as err:
        verify_screening(ev, golden.commitment(), golden.trusted(), roots, world.HIGH_RISK)
    assert err.value.code == "untrusted_vk" and "development key" in err.value.message
    assert err.value.details["failures"] == ["untrusted_vk"]
    other = golden.commitment().model_copy(update={"count": 6, "screening_root": "0x" + "ab" * 32})
    with pytest.raises(VerificationError) as err:
        verify_screening(ev, other, {}, roots, world.HIGH_RISK)
    assert err.value.details["failures"] == [
        "untrusted_vk",
        "count_mismatch",
        "screening_commitment_mismatch",
    ]


@pytest.mark.parametrize(
    ("text", "message", "expected"),
    [
        pytest.param("0x12", "not a field element", "0x + 64 hex", id="short"),
        pytest.param("0x" + "zz" * 32, "not a field element", "0x + 64 hex", id="not_hex"),
        pytest.param(field_hex(P), "field element not reduced", "< BN254 r", id="equal_to_r"),
        pytest.param("0x" + "ff" * 32, "field element not reduced", "< BN254 r", id="above_r"),
    ],
)
def test_field_elements_are_canonical_and_errors_name_the_field(text, message, expected):
    from core.errors import InvalidInputError
    from core.zk.evidence import parse_field

    with pytest.raises(InvalidInputError) as err:
        parse_field(text, "gap_root")
    assert (err.value.message, err.value.details["field"], err.value.details["expected"]) == (
        message,
        "gap_root",
        expected,
    )
    assert parse_field(field_hex(P - 1), "gap_root") == P - 1
    batch = golden.evidence().batches[0].model_copy(update={"batch_root": text})
    with pytest.raises(InvalidInputError) as err:
        batch.public_signals(0, world.risk())
    assert err.value.details["field"] == "batch_root"
