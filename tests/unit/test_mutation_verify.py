"""Verification refuses proofs that a prover re-signed with its own key after lying (core/verify.py,
core/context.py, core/proof.py, core/manifest.py).

Each scenario forges one thing, re-signs the manifest and the proof with the prover's real key, and
asserts the verdict and the named check. Each kills a mutant of one of those modules
(``make mutation MODULE=core/verify.py`` and friends; docs/testing.md lists which).
"""

import base64
import json

import pytest

from core.keys import KeyStatus
from core.manifest import sign_manifest
from core.metrics import REGISTRY
from core.modes import CheckStatus, EnforcementMode
from core.proof import parse_proof_bytes, proof_file_bytes, sign_proof
from core.rules import Outcome, Severity
from core.screening import Neighbour, NonMembershipProof
from core.signing import Ed25519Signer
from core.verify import Check, CheckKind, verify_proof, verify_proof_bytes
from tests.world import NOW, World, entry

STRICT, RELAXED, AUDIT = EnforcementMode.STRICT, EnforcementMode.RELAXED, EnforcementMode.AUDIT
OTHER = Ed25519Signer.from_seed(b"\x05" * 32)
SANCTIONED = "Petrov Industrial Holding GmbH,DE,1\n"
SUPPLIERS_RULE = "no_sanctioned_suppliers"


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def good(world):
    return world.build().proof


def checks_of(report):
    return {c.id: c for c in report.checks}


def failing(report):
    return {c.id for c in report.checks if c.status is CheckStatus.FAIL}


def verify(world, proof, mode=STRICT, **kwargs):
    kwargs.setdefault("trust", world.trust)
    return verify_proof(proof, keyring=world.keyring, mode=mode, now=NOW, **kwargs)


def resign(world, proof, manifest=None, **changes):
    """The prover's forgery: change things, re-sign the manifest (if given) and the proof with its key."""
    if manifest is not None:
        changes["manifest"] = sign_manifest(manifest, world.signer)
    return sign_proof(proof.model_copy(update=changes), world.signer)


def with_rule(proof, rule_id, **update):
    return [r.model_copy(update=update) if r.rule_id == rule_id else r for r in proof.rules]


def with_evidence(proof, rule_id, edit):
    evidence = json.loads(json.dumps(next(r for r in proof.rules if r.rule_id == rule_id).evidence))
    edit(evidence)
    return with_rule(proof, rule_id, evidence=evidence)


def test_honest_proof_report_names_everything(world, good):
    report = verify(world, good)
    assert report.result is CheckStatus.OK
    assert (report.policy_id, report.subject, report.kid, report.mode) == (
        good.policy_id,
        "LEI-TEST",
        world.signer.kid,
        STRICT,
    )
    checks = checks_of(report)
    assert checks["ir_hash"] == Check(
        id="ir_hash",
        kind=CheckKind.INTEGRITY,
        status=CheckStatus.OK,
        message="IR hash recomputed and matches",
    )
    assert checks["policy_hash"].message == "IR was compiled from the manifest's policy"
    assert checks["policy_hash"].kind is CheckKind.POLICY
    assert (
        checks["company_root"].message
        == "company root derives from supplier and UBO roots (merkle-blake3-v1)"
    )
    assert checks["proof_signature"].message == f"Ed25519 signature by {world.signer.kid} is valid"
    assert checks["proof_signature"].kind is CheckKind.SIGNATURE
    assert checks["manifest_signature"].message == "manifest signature is valid"
    assert checks["key_status"].kind is CheckKind.KEY
    assert checks["key_status"].message.startswith(f"key {world.signer.kid}: ")
    assert checks["rule:max_tier"].message == "max_supplier_tier range_max 3 holds"
    assert checks["rule:max_tier"].kind is CheckKind.RULE
    assert checks[f"rule:{SUPPLIERS_RULE}"].message == "0 of 5 supplier names are on the sanctions list"
    assert checks["rule:no_sanctioned_ubos"].message == "0 of 2 ubo names are on the sanctions list"
    assert not report.integrity_failed


# --- manifest signatures ----------------------------------------------------------------------------


def test_manifest_without_signatures_fails(world, good):
    unsigned = good.manifest.model_copy(update={"signatures": []})
    forged = sign_proof(good.model_copy(update={"manifest": unsigned}), world.signer)
    report = verify(world, forged)
    assert "manifest_signature" in failing(report)
    assert checks_of(report)["manifest_signature"].message == "manifest signature is missing or invalid"
    assert "proof_signature" not in failing(report)
    assert report.integrity_failed


def _manifest_sigs(good, *sigs):
    return good.manifest.model_copy(update={"signatures": list(sigs)})


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s.model_copy(update={"kid": OTHER.kid}), id="unknown_kid"),
        pytest.param(lambda s: s.model_copy(update={"alg": "Ed448"}), id="other_alg"),
        pytest.param(lambda s: s.model_copy(update={"sig": "***"}), id="not_base64"),
        pytest.param(
            lambda s: s.model_copy(update={"sig": base64.b64encode(bytes(64)).decode()}), id="zero_sig"
        ),
    ],
)
def test_bad_manifest_signature_fails(world, good, edit):
    sig = good.manifest.signatures[0]
    forged = sign_proof(good.model_copy(update={"manifest": _manifest_sigs(good, edit(sig))}), world.signer)
    assert "manifest_signature" in failing(verify(world, forged))


def test_one_bad_manifest_signature_among_good_ones_fails(world, good):
    sig = good.manifest.signatures[0]
    bad = sig.model_copy(update={"sig": base64.b64encode(OTHER.sign(b"x")).decode()})
    for sigs in ((sig, bad), (bad, sig)):
        forged = sign_proof(good.model_copy(update={"manifest": _manifest_sigs(good, *sigs)}), world.signer)
        assert "manifest_signature" in failing(verify(world, forged))
    twice = sign_proof(good.model_copy(update={"manifest": _manifest_sigs(good, sig, sig)}), world.signer)
    assert verify(world, twice).result is CheckStatus.OK


def test_manifest_signed_over_other_content_fails(world, good):
    other = good.manifest.model_copy(update={"subject": "LEI-OTHER"})
    moved = other.model_copy(update={"signatures": good.manifest.signatures})
    report = verify(world, sign_proof(good.model_copy(update={"manifest": moved}), world.signer))
    assert "manifest_signature" in failing(report)


# --- proof signature -----------------------------------------------------------------------------


def test_unsigned_proof_fails(world, good):
    report = verify(world, good.model_copy(update={"signature": None}))
    check = checks_of(report)["proof_signature"]
    assert (check.status, check.message) == (CheckStatus.FAIL, "proof is not signed")
    assert report.kid is None and report.result is CheckStatus.FAIL


@pytest.mark.parametrize(
    "update",
    [pytest.param({"alg": "Ed448"}, id="other_alg"), pytest.param({"sig": "!!"}, id="not_base64")],
)
def test_malformed_proof_signature_fails(world, good, update):
    forged = good.model_copy(update={"signature": good.signature.model_copy(update=update)})
    check = checks_of(verify(world, forged))["proof_signature"]
    assert (check.status, check.message) == (CheckStatus.FAIL, "proof signature is invalid")


def test_unknown_proof_kid_fails_with_the_kid_named(world, good):
    forged = sign_proof(good, OTHER)
    checks = checks_of(verify(world, forged))
    assert checks["proof_signature"].message == f"unknown key id {OTHER.kid}: signature cannot be checked"
    assert checks["key_status"].status is CheckStatus.FAIL
    assert "manifest_signature" not in checks


# --- IR and policy ---------------------------------------------------------------------------------


def test_proof_policy_id_must_be_the_irs(world, good):
    report = verify(world, resign(world, good, policy_id="another-policy"))
    assert failing(report) == {"policy_hash"}
    assert report.policy_id == "another-policy"


def test_manifest_policy_hash_must_be_the_irs(world, good):
    policy = good.manifest.policy.model_copy(update={"hash": "sha3-256:" + "ab" * 32})
    report = verify(world, resign(world, good, manifest=good.manifest.model_copy(update={"policy": policy})))
    assert "policy_hash" in failing(report)
    assert checks_of(report)["policy_hash"].message.startswith(f"IR policy hash {good.ir.policy_hash} is not")


def test_proof_ir_hash_field_must_be_the_irs(world, good):
    report = verify(world, resign(world, good, ir_hash="sha3-256:" + "cd" * 32))
    assert failing(report) == {"ir_hash"}
    assert "recomputed" in checks_of(report)["ir_hash"].message


# --- roots and the given manifest ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["supplier_root", "ubo_root"])
def test_malformed_root_fails_company_root_naming_the_field(world, good, field):
    manifest = good.manifest.model_copy(update={field: "0x1234"})
    report = verify(world, resign(world, good, manifest=manifest))
    assert "company_root" in failing(report)
    assert f"(field {field})" in checks_of(report)["company_root"].message


@pytest.mark.parametrize(
    ("update", "named"),
    [
        pytest.param({"subject": "LEI-OTHER"}, "subject", id="subject"),
        pytest.param({"ubo_root": "0x" + "11" * 32}, "ubo_root", id="ubo_root"),
        pytest.param({"company_commitment_root": "0x" + "22" * 32}, "company_commitment_root", id="company"),
        pytest.param({"root_scheme": "flat"}, "root_scheme", id="scheme"),
    ],
)
def test_given_manifest_must_match_field_by_field(world, good, update, named):
    given = good.manifest.model_copy(update=update)
    check = checks_of(verify(world, good, manifest=given))["manifest_match"]
    assert check.status is CheckStatus.FAIL
    assert check.message == f"given manifest differs from the proof's in {named}"


def test_given_manifest_with_another_policy_hash_fails(world, good):
    policy = good.manifest.policy.model_copy(update={"hash": "sha3-256:" + "ab" * 32})
    check = checks_of(verify(world, good, manifest=good.manifest.model_copy(update={"policy": policy})))
    assert check["manifest_match"].message == "given manifest differs from the proof's in policy.hash"
    same = checks_of(verify(world, good, manifest=good.manifest))["manifest_match"]
    assert (same.status, same.message) == (CheckStatus.OK, "given manifest matches the proof")


def test_registry_check_is_part_of_the_report(world, good):
    seen = []

    def registry(proof, forms):
        seen.append(proof.policy_id)
        return Check(
            id="registry", kind=CheckKind.REGISTRY, status=CheckStatus.WARN, message="not registered"
        )

    report = verify(world, good, registry=registry)
    assert seen == [good.policy_id]
    assert report.result is CheckStatus.WARN and checks_of(report)["registry"].message == "not registered"


# --- rule results ---------------------------------------------------------------------------------


def test_rule_the_prover_could_not_evaluate_is_a_high_violation():
    w = World(high_risk=None)
    proof = w.build(RELAXED).proof
    assert next(r for r in proof.rules if r.rule_id == "max_high_risk_suppliers").result is Outcome.ERROR
    rule = "rule:max_high_risk_suppliers"
    relaxed = checks_of(verify(w, proof, RELAXED))[rule]
    assert relaxed.status is CheckStatus.FAIL
    assert relaxed.message.startswith("high violation: cannot evaluate")
    assert checks_of(verify(w, proof, AUDIT))[rule].status is CheckStatus.WARN


def test_error_claimed_as_pass_is_caught():
    w = World(high_risk=None)
    proof = w.build(RELAXED).proof
    rules = with_rule(proof, "max_high_risk_suppliers", result=Outcome.PASS)
    check = checks_of(verify(w, resign(w, proof, rules=rules), RELAXED))["evidence:max_high_risk_suppliers"]
    assert check.status is CheckStatus.FAIL and check.kind is CheckKind.EVIDENCE
    assert check.message == "proof claims pass but re-evaluation gives error"


def test_claimed_severity_must_be_the_irs(world, good):
    rules = with_rule(good, "max_tier", severity=Severity.LOW)
    check = checks_of(verify(world, resign(world, good, rules=rules)))["evidence:max_tier"]
    assert check.status is CheckStatus.FAIL and check.message.startswith("recorded evidence")


def test_claimed_evidence_must_be_what_the_inputs_give(world, good):
    rules = with_rule(good, "max_tier", evidence={"lhs": 1, "rhs": 3})
    assert "evidence:max_tier" in failing(verify(world, resign(world, good, rules=rules)))


def test_result_for_a_rule_not_in_the_ir_fails(world, good):
    extra = good.rules[0].model_copy(update={"rule_id": "invented"})
    check = checks_of(verify(world, resign(world, good, rules=[*good.rules, extra])))["rule_results"]
    assert check.status is CheckStatus.FAIL
    assert check.message == "results for rules that are not active in the IR: invented"


def test_violation_status_follows_mode_and_severity():
    w = World(suppliers_csv=World().suppliers_csv + "Tehran Parts,IR,1\n")
    proof = w.build(AUDIT).proof
    rule = "rule:max_high_risk_suppliers"
    assert checks_of(verify(w, proof, STRICT))[rule].status is CheckStatus.FAIL
    relaxed = checks_of(verify(w, proof, RELAXED))[rule]
    assert (relaxed.status, relaxed.message) == (
        CheckStatus.WARN,
        "medium violation: high_risk_supplier_count range_max 0 violated",
    )


def test_possible_match_is_a_warning_for_review():
    w = World(suppliers_csv=World().suppliers_csv + "Kestrel Maritime Service,NO,1\n")
    proof = w.build().proof
    report = verify(w, proof, STRICT)
    check = checks_of(report)[f"possible_match:{SUPPLIERS_RULE}"]
    assert (check.status, check.kind) == (CheckStatus.WARN, CheckKind.EVIDENCE)
    assert check.message == "1 possible sanctions matches need human review"
    assert checks_of(report)[f"rule:{SUPPLIERS_RULE}"].message.endswith("; 1 possible matches for review")
    assert report.result is CheckStatus.WARN


# --- screening evidence (core/context.py) ------------------------------------------------------------


def test_listed_supplier_proved_absent_by_relabelled_neighbours_is_caught():
    """Issue 15: a listed key 'proved' absent with a neighbour whose index is not its proof's index."""
    w = World(suppliers_csv=World().suppliers_csv + SANCTIONED)
    proof = w.build(AUDIT).proof
    lists = w.lists
    evidence = json.loads(json.dumps(next(r for r in proof.rules if r.rule_id == SUPPLIERS_RULE).evidence))
    (at,) = [i for i, item in enumerate(evidence["items"]) if "listed" in item]
    key = bytes.fromhex(evidence["items"][at]["key"][2:])
    i = lists.keys.index(key)
    assert 0 < i < lists.count - 1, "the fixture list must have neighbours on both sides"

    def nb(index, real):
        return Neighbour(index=index, key="0x" + lists.keys[real].hex(), proof=lists.tree.prove(real))

    forged_item = NonMembershipProof(
        key="0x" + key.hex(), tree_size=lists.count, predecessor=nb(i - 1, i - 1), successor=nb(i, i + 1)
    )
    evidence["items"][at] = {"key": "0x" + key.hex(), "absent": forged_item.model_dump(mode="json")}
    rules = with_rule(proof, SUPPLIERS_RULE, evidence=evidence, result=Outcome.PASS)
    report = verify(w, resign(w, proof, rules=rules), AUDIT)
    check = checks_of(report)[f"evidence:{SUPPLIERS_RULE}"]
    assert check.status is CheckStatus.FAIL
    assert check.message == f"evidence item {at}: Merkle proof does not verify against the root"


def test_listed_supplier_is_reported_with_its_count():
    w = World(suppliers_csv=World().suppliers_csv + SANCTIONED)
    report = verify(w, w.build(AUDIT).proof, RELAXED)
    check = checks_of(report)[f"rule:{SUPPLIERS_RULE}"]
    assert check.status is CheckStatus.FAIL
    assert check.message == "critical violation: 1 of 6 supplier names are on the sanctions list"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda ev: ev.update(list_root="0x" + "00" * 32),
            "evidence for supplier_hashes is not over the manifest's sanctions_root",
            id="other_list_root",
        ),
        pytest.param(lambda ev: ev.update(count=4), "different number", id="count"),
        pytest.param(lambda ev: ev["items"].pop(), "different number", id="item_dropped"),
        pytest.param(lambda ev: ev.update(items="none"), "different number", id="items_not_a_list"),
        pytest.param(lambda ev: ev["items"][0].pop("key"), "evidence item 0 is malformed", id="no_key"),
        pytest.param(
            lambda ev: ev["items"][1].update(key="0x" + "00" * 32),
            "evidence item 1: Merkle proof",
            id="other_key",
        ),
        pytest.param(
            lambda ev: ev["items"][2].update(absent={"key": 1}),
            "evidence item 2 is malformed",
            id="bad_absent",
        ),
        pytest.param(
            lambda ev: ev["items"][3].update(listed=ev["items"][3].pop("absent")),
            "evidence item 3 is malformed",
            id="absent_relabelled_listed",
        ),
    ],
)
def test_screening_evidence_must_check_out(world, good, edit, message):
    rules = with_evidence(good, SUPPLIERS_RULE, edit)
    check = checks_of(verify(world, resign(world, good, rules=rules)))[f"evidence:{SUPPLIERS_RULE}"]
    assert check.status is CheckStatus.FAIL
    assert message in check.message


def test_evidence_missing_entirely_fails(world, good):
    rules = with_rule(good, SUPPLIERS_RULE, evidence={})
    assert f"evidence:{SUPPLIERS_RULE}" in failing(verify(world, resign(world, good, rules=rules)))


def test_without_a_sanctions_root_the_screening_rules_fail_closed():
    w = World(with_lists=False)
    report = verify(w, w.build(AUDIT).proof, RELAXED)
    checks = checks_of(report)
    assert checks[f"rule:{SUPPLIERS_RULE}"].status is CheckStatus.FAIL
    assert "cannot be evaluated without trusted lists" in checks[f"rule:{SUPPLIERS_RULE}"].message
    assert checks["list_root"].status is CheckStatus.FAIL
    assert checks["rule:require_statement_root_sanctions_root"].status is CheckStatus.FAIL


@pytest.mark.parametrize(
    ("public", "failed"),
    [
        pytest.param(
            {"supplier_count": True},
            {f"evidence:{SUPPLIERS_RULE}", "evidence:supplier_count_max", "public:supplier_count"},
            id="bool_count",
        ),
        pytest.param(
            {"max_supplier_tier": None}, {"evidence:max_tier", "public:max_supplier_tier"}, id="dropped"
        ),
    ],
)
def test_disclosed_scalars_that_are_missing_or_wrong_typed_fail(world, good, public, failed):
    values = {k: v for k, v in {**good.public, **public}.items() if v is not None}
    report = verify(world, resign(world, good, public=values))
    assert failing(report) == failed
    for check_id in failed - {"public:supplier_count", "public:max_supplier_tier"}:
        assert checks_of(report)[check_id].message == "proof claims pass but re-evaluation gives error"


# --- bytes --------------------------------------------------------------------------------------------


def _failed_reports():
    return REGISTRY.get_sample_value("cap_verify_results_total", {"result": "fail"}) or 0.0


def test_unreadable_bytes_are_one_failed_format_check_naming_the_file(world):
    before = _failed_reports()
    report = verify_proof_bytes(
        b"{}", keyring=world.keyring, mode=AUDIT, now=NOW, trust=world.trust, source="p.json"
    )
    assert _failed_reports() == before + 1
    (check,) = report.checks
    assert (check.id, check.kind, check.status) == ("proof_format", CheckKind.INTEGRITY, CheckStatus.FAIL)
    assert "file p.json" in check.message
    assert report.mode is AUDIT and report.integrity_failed
    unnamed = verify_proof_bytes(b"{}", keyring=world.keyring, mode=AUDIT, now=NOW, trust=world.trust)
    assert "file <proof>" in unnamed.checks[0].message


def test_bytes_verification_passes_the_given_manifest_and_registry_on(world, good):
    data = proof_file_bytes(good)
    other = good.manifest.model_copy(update={"subject": "LEI-OTHER", "ubo_root": "0x" + "11" * 32})

    def registry(proof, forms):
        return Check(id="registry", kind=CheckKind.REGISTRY, status=CheckStatus.OK, message="registered")

    report = verify_proof_bytes(
        data,
        keyring=world.keyring,
        mode=STRICT,
        now=NOW,
        trust=world.trust,
        manifest=other,
        registry=registry,
    )
    checks = checks_of(report)
    assert checks["manifest_match"].message == "given manifest differs from the proof's in ubo_root, subject"
    assert checks["registry"].message == "registered"


def test_rule_failure_alone_is_not_an_integrity_failure():
    w = World(suppliers_csv=World().suppliers_csv + SANCTIONED)
    report = verify(w, w.build(AUDIT).proof)
    assert report.result is CheckStatus.FAIL and not report.integrity_failed


def test_stored_bytes_round_trip(world, good):
    data = proof_file_bytes(good)
    assert parse_proof_bytes(data) == good and data.endswith(b"}\n")
    assert (
        verify_proof_bytes(data, keyring=world.keyring, mode=STRICT, now=NOW, trust=world.trust).result
        is CheckStatus.OK
    )


def _signatures(kid, status):
    return REGISTRY.get_sample_value("cap_signatures_verified_total", {"kid": kid, "status": status}) or 0.0


def test_signature_checks_are_counted_by_kid_and_status(world, good):
    kid = world.signer.kid
    ok, failed = _signatures(kid, "ok"), _signatures(kid, "fail")
    verify(world, good)
    forged = good.model_copy(update={"signature": good.signature.model_copy(update={"sig": "!!"})})
    verify(world, forged)
    assert (_signatures(kid, "ok"), _signatures(kid, "fail")) == (ok + 1, failed + 1)


def _adaptive(good, expr, when="p"):
    from core.policy.ir import Activation, Adaptivity, Predicate

    rules = tuple(r.id for r in good.ir.rules)
    adaptivity = Adaptivity(
        predicates=(Predicate(id="p", expr=expr),), activations=(Activation(when=when, rules=rules),)
    )
    return good.ir.model_copy(update={"adaptivity": adaptivity})


def test_rule_selection_that_cannot_be_evaluated_fails_as_a_policy_check(world, good):
    report = verify(world, resign(world, good, ir=_adaptive(good, "p", when="undeclared")))
    check = checks_of(report)["rule_selection"]
    assert (check.kind, check.status) == (CheckKind.POLICY, CheckStatus.FAIL)
    assert check.message.startswith("activation refers to unknown predicate 'undeclared'")


def test_rule_selection_reads_the_disclosed_scalars(world, good):
    forged = resign(world, good, ir=_adaptive(good, "screened"), public={**good.public, "screened": True})
    checks = checks_of(verify(world, forged))
    assert "rule_selection" not in checks
    assert checks["rule:max_tier"].status is CheckStatus.OK


def test_results_for_several_inactive_rules_are_all_named(world, good):
    extra = [good.rules[0].model_copy(update={"rule_id": rid}) for rid in ("invented", "other")]
    check = checks_of(verify(world, resign(world, good, rules=[*good.rules, *extra])))["rule_results"]
    assert check.message == "results for rules that are not active in the IR: invented, other"


def test_registry_gets_the_proofs_byte_forms_and_results_are_counted(world, good):
    seen = []

    def registry(proof, forms):
        seen.append(forms.file_bytes())
        return Check(id="registry", kind=CheckKind.REGISTRY, status=CheckStatus.OK, message="registered")

    before = REGISTRY.get_sample_value("cap_verify_results_total", {"result": "ok"}) or 0.0
    verify(world, good, registry=registry)
    assert seen == [proof_file_bytes(good)]
    assert REGISTRY.get_sample_value("cap_verify_results_total", {"result": "ok"}) == before + 1


# --- gaps found by the first mutation wave: manifest match, manifest signer, possible matches ------------


@pytest.mark.parametrize(
    ("update", "field"),
    [
        pytest.param({"sanctions_root": "0x" + "11" * 32}, "sanctions_root", id="sanctions_root"),
        pytest.param({"jurisdiction_root": "0x" + "22" * 32}, "jurisdiction_root", id="jurisdiction_root"),
        pytest.param({"lists": None}, "lists", id="lists"),
        pytest.param({"created_at": "2026-03-02T12:00:00Z"}, "created_at", id="created_at"),
        pytest.param({"time_anchor": {"kind": "tsa"}}, "time_anchor", id="time_anchor"),
    ],
)
def test_given_manifest_must_match_every_signed_field(world, good, update, field):
    """A verifier holding the company's published manifest must notice a proof over a manifest that
    differs in any signed field, e.g. a proof re-built against another sanctions list and re-signed."""
    forged_manifest = good.manifest.model_copy(update=update)
    forged = resign(world, good, manifest=forged_manifest)
    report = verify(world, forged, manifest=good.manifest)
    check = checks_of(report)["manifest_match"]
    assert (check.status, check.kind) == (CheckStatus.FAIL, CheckKind.INTEGRITY)
    assert check.message == f"given manifest differs from the proof's in {field}"
    assert report.integrity_failed


def test_given_manifest_signed_by_another_key_still_matches(world, good):
    """Only the signed content must match: the given manifest's own signatures are not compared."""
    countersigned = sign_manifest(good.manifest, OTHER)
    report = verify(world, good, manifest=countersigned)
    assert checks_of(report)["manifest_match"].status is CheckStatus.OK
    assert report.result is CheckStatus.OK


def _two_key_world(world, manifest_key_status, manifest_valid_to="2027-03-01T12:00:00Z"):
    """The prover's keyring also lists OTHER (status given) — the key its manifest is signed with."""
    other = entry(
        world.keyring.keys[0],
        kid=OTHER.kid,
        public_key=OTHER.public_key_b64,
        status=manifest_key_status,
        valid_to=manifest_valid_to,
    )
    return world.keyring.model_copy(update={"keys": (*world.keyring.keys, other)})


def _manifest_by_other(world, good):
    """A manifest signed with OTHER inside a proof signed with the prover's active key."""
    return sign_proof(good.model_copy(update={"manifest": sign_manifest(good.manifest, OTHER)}), world.signer)


@pytest.mark.parametrize(
    ("status", "mode", "expected"),
    [
        pytest.param(KeyStatus.REVOKED, AUDIT, CheckStatus.FAIL, id="revoked_audit"),
        pytest.param(KeyStatus.REVOKED, STRICT, CheckStatus.FAIL, id="revoked_strict"),
        pytest.param(KeyStatus.PENDING, RELAXED, CheckStatus.FAIL, id="pending"),
        pytest.param(KeyStatus.RETIRED, STRICT, CheckStatus.FAIL, id="retired_strict"),
        pytest.param(KeyStatus.RETIRED, RELAXED, CheckStatus.WARN, id="retired_relaxed"),
        pytest.param(KeyStatus.ACTIVE, STRICT, CheckStatus.OK, id="active"),
    ],
)
def test_manifest_signers_key_status_is_judged_like_the_proof_signers(world, good, status, mode, expected):
    keyring = _two_key_world(world, status)
    forged = _manifest_by_other(world, good)
    report = verify_proof(forged, keyring=keyring, mode=mode, now=NOW, trust=world.trust)
    checks = checks_of(report)
    assert checks["manifest_signature"].status is CheckStatus.OK  # the signature itself is valid
    assert checks["key_status"].status is CheckStatus.OK  # the proof's key is the active one
    check = checks["manifest_key_status"]
    assert (check.kind, check.status) == (CheckKind.KEY, expected)
    assert check.message.startswith(f"manifest key {OTHER.kid}: key {OTHER.kid} ")
    assert report.result is worst_of(expected, report)


def worst_of(expected, report):
    return expected if expected is not CheckStatus.OK else report.result


def test_manifest_signed_by_an_unknown_key_names_it(world, good):
    report = verify(world, _manifest_by_other(world, good))
    checks = checks_of(report)
    assert checks["manifest_key_status"].status is CheckStatus.FAIL
    assert f"key {OTHER.kid} is not in keyring" in checks["manifest_key_status"].message
    assert checks["manifest_signature"].status is CheckStatus.FAIL


def test_manifest_signed_by_the_proof_key_needs_no_second_key_check(world, good):
    assert "manifest_key_status" not in checks_of(verify(world, good))


def test_one_revoked_manifest_signer_among_active_ones_fails(world, good):
    keyring = _two_key_world(world, KeyStatus.REVOKED)
    both = good.manifest.model_copy(
        update={"signatures": [*good.manifest.signatures, *sign_manifest(good.manifest, OTHER).signatures]}
    )
    forged = sign_proof(good.model_copy(update={"manifest": both}), world.signer)
    report = verify_proof(forged, keyring=keyring, mode=AUDIT, now=NOW, trust=world.trust)
    assert checks_of(report)["manifest_key_status"].status is CheckStatus.FAIL
    assert f"key {OTHER.kid} is revoked" in checks_of(report)["manifest_key_status"].message


@pytest.mark.parametrize("value", ["Petrov Holding", "x", {"item": 0}], ids=["string", "one_char", "dict"])
def test_possible_matches_that_are_not_a_list_fail_the_evidence(world, good, value):
    forged = resign(
        world,
        good,
        rules=with_evidence(good, SUPPLIERS_RULE, lambda e: e.__setitem__("possible_matches", value)),
    )
    report = verify(world, forged, AUDIT)
    checks = checks_of(report)
    check = checks[f"evidence:{SUPPLIERS_RULE}"]
    assert (check.status, check.message) == (
        CheckStatus.FAIL,
        "evidence for supplier_hashes has no possible_matches list",
    )
    assert f"possible_match:{SUPPLIERS_RULE}" not in checks
    assert report.result is CheckStatus.FAIL


def test_given_manifest_published_before_the_proof_matches(world, good):
    """`cap manifest build` publishes the manifest before the proof exists: unsigned, proof info unset."""
    published = world.manifest()
    assert published.proof != good.manifest.proof and not published.signatures
    report = verify(world, good, manifest=published)
    assert checks_of(report)["manifest_match"].status is CheckStatus.OK
    lying = published.model_copy(update={"sanctions_root": "0x" + "11" * 32})
    assert checks_of(verify(world, good, manifest=lying))["manifest_match"].status is CheckStatus.FAIL
