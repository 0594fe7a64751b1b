"""Screening evidence and the prover's inputs (core/context.py), as a verifier and a prover see them.

A prover re-signs its proof with its own key after forging a possible match (wrong item, listed item,
score outside the near band, a candidate not on the trusted list): the verifier fails the rule's
evidence with a message naming the match. The prover's context discloses the documented scalars and
hashes the committed records into the committed roots.

Each test kills mutants of core/context.py (``make mutation MODULE=core/context.py``).
"""

import json

import pytest

from core.commitments import RootScheme, list_root, supplier_leaf, ubo_leaf
from core.context import ProverContext, PublicContext, possible_match_total, prover_public
from core.errors import InvalidInputError
from core.manifest import sign_manifest
from core.modes import CheckStatus, EnforcementMode
from core.name_keys import KeyVersion
from core.proof import sign_proof
from core.rules import MissingInputError
from core.sanctions import RiskLevel
from core.verify import verify_proof
from tests.world import NOW, World

AUDIT = EnforcementMode.AUDIT
RULE = "no_sanctioned_suppliers"
# Row 0 nearly matches "Kestrel Maritime Services"; row 1 is listed; row 2 is clean.
SUPPLIERS = (
    "name,jurisdiction,tier\nKestrel Maritime Service,NO,1\nPetrov Industrial Holding GmbH,DE,1\n"
    "ACME GmbH,DE,1\n"
)


@pytest.fixture(scope="module")
def world():
    return World(suppliers_csv=SUPPLIERS)


@pytest.fixture(scope="module")
def proof(world):
    return world.build(AUDIT).proof


def evidence_of(proof):
    return json.loads(json.dumps(next(r for r in proof.rules if r.rule_id == RULE).evidence))


def forge_match(world, proof, **update):
    """The prover edits its one possible match and re-signs manifest and proof with its own key."""
    evidence = evidence_of(proof)
    evidence["possible_matches"][0].update(update)
    rules = [r.model_copy(update={"evidence": evidence}) if r.rule_id == RULE else r for r in proof.rules]
    changed = proof.model_copy(
        update={"rules": rules, "manifest": sign_manifest(proof.manifest, world.signer)}
    )
    return sign_proof(changed, world.signer)


def forge_matches(world, proof, matches):
    evidence = evidence_of(proof)
    evidence["possible_matches"] = matches
    rules = [r.model_copy(update={"evidence": evidence}) if r.rule_id == RULE else r for r in proof.rules]
    return sign_proof(proof.model_copy(update={"rules": rules}), world.signer)


def evidence_check(world, proof):
    report = verify_proof(proof, keyring=world.keyring, mode=AUDIT, now=NOW, trust=world.trust)
    return next(c for c in report.checks if c.id == f"evidence:{RULE}"), report


def test_honest_possible_match_on_the_first_item_verifies(world, proof):
    assert evidence_of(proof)["possible_matches"][0]["item"] == 0
    report = verify_proof(proof, keyring=world.keyring, mode=AUDIT, now=NOW, trust=world.trust)
    ids = {c.id: c.status for c in report.checks}
    assert f"evidence:{RULE}" not in ids
    assert ids[f"possible_match:{RULE}"] is CheckStatus.WARN


@pytest.mark.parametrize("score", [9000, 10000], ids=["lowest_near", "exact"])
def test_scores_at_the_ends_of_the_near_band_are_accepted(world, proof, score):
    forged = forge_match(world, proof, score_bp=score)
    report = verify_proof(forged, keyring=world.keyring, mode=AUDIT, now=NOW, trust=world.trust)
    assert f"evidence:{RULE}" not in {c.id for c in report.checks}
    assert report.result is CheckStatus.WARN


@pytest.mark.parametrize(
    ("update", "message"),
    [
        pytest.param(
            {"score_bp": 8999},
            "possible_matches[0] has score 8999, not a near match (9000..10000 bp)",
            id="below_band",
        ),
        pytest.param(
            {"score_bp": 10001},
            "possible_matches[0] has score 10001, not a near match (9000..10000 bp)",
            id="above_band",
        ),
        pytest.param(
            {"score_bp": "9500"},
            "possible_matches[0] has score '9500', not a near match (9000..10000 bp)",
            id="score_text",
        ),
        pytest.param(
            {"item": 1},
            "possible_matches[0] names item 1, not a screened name that is absent from the list",
            id="listed_item",
        ),
        pytest.param(
            {"item": 3},
            "possible_matches[0] names item 3, not a screened name that is absent from the list",
            id="past_the_end",
        ),
        pytest.param(
            {"item": -1},
            "possible_matches[0] names item -1, not a screened name that is absent from the list",
            id="negative",
        ),
        pytest.param(
            {"item": "0"},
            "possible_matches[0] names item '0', not a screened name that is absent from the list",
            id="item_text",
        ),
        pytest.param(
            {"candidate": "acme gmbh"},
            "possible_matches[0]: 'acme gmbh' with refs ['test:2'] is not on the trusted list",
            id="candidate_not_listed",
        ),
        pytest.param(
            {"refs": ["test:3"]},
            "possible_matches[0]: 'kestrel maritime services' with refs ['test:3'] is not on the"
            " trusted list",
            id="wrong_refs",
        ),
        pytest.param({"extra": 1}, "possible_matches[0] is malformed", id="extra_field"),
    ],
)
def test_forged_possible_match_fails_the_evidence_naming_it(world, proof, update, message):
    check, report = evidence_check(world, forge_match(world, proof, **update))
    assert (check.status, check.message) == (CheckStatus.FAIL, message)
    assert report.result is CheckStatus.FAIL


@pytest.mark.parametrize("match", [["item", 0], "kestrel", 7], ids=["list", "text", "number"])
def test_possible_match_that_is_not_an_object_is_malformed(world, proof, match):
    evidence = evidence_of(proof)
    check, _ = evidence_check(world, forge_matches(world, proof, [evidence["possible_matches"][0], match]))
    assert (check.status, check.message) == (CheckStatus.FAIL, "possible_matches[1] is malformed")


def test_possible_match_total_counts_only_screening_lists(proof):
    assert possible_match_total(proof.rules) == 1 == proof.public["possible_match_count"]
    odd = [r.model_copy(update={"evidence": {"possible_matches": [1, 2]}}) for r in proof.rules]
    assert possible_match_total(odd) == 0
    text = [
        r.model_copy(update={"evidence": {"list_root": "0x", "possible_matches": "ab"}}) for r in proof.rules
    ]
    assert possible_match_total(text) == 0


# --- the prover's side ---------------------------------------------------------------------------------


def test_key_version_is_recorded_only_when_not_v1():
    v1 = World(suppliers_csv=SUPPLIERS).build(AUDIT).proof
    assert "key_version" not in evidence_of(v1)
    v2 = World(suppliers_csv=SUPPLIERS, key_version=KeyVersion.V2).build(AUDIT).proof
    assert evidence_of(v2)["key_version"] == "screening-key.v2"


def test_prover_discloses_counts_highest_tier_and_high_risk_count(world):
    public = prover_public(world.suppliers, world.ubos, {"NO": RiskLevel.HIGH, "DE": RiskLevel.HIGH})
    assert public == {
        "supplier_count": 3,
        "ubo_count": 2,
        "max_supplier_tier": 1,
        "high_risk_supplier_count": 3,
    }
    assert prover_public([], world.ubos, None) == {
        "supplier_count": 0,
        "ubo_count": 2,
        "max_supplier_tier": 0,
    }
    assert prover_public(world.suppliers, [], {"DE": RiskLevel.MEDIUM})["high_risk_supplier_count"] == 0


def _context(world):
    manifest = world.manifest()
    return ProverContext(manifest, world.suppliers, world.ubos, world.lists, {"supplier_count": 3}), manifest


def test_prover_hashes_are_the_leaves_of_the_committed_roots(world):
    ctx, manifest = _context(world)
    suppliers, ubos = ctx.lookup("supplier_hashes"), ctx.lookup("ubo_hashes")
    assert all(h.startswith("0x") and len(h) == 66 for h in suppliers + ubos)
    leaves = [bytes.fromhex(h[2:]) for h in suppliers]
    assert "0x" + list_root(leaves, RootScheme.MERKLE).hex() == manifest.supplier_root
    assert leaves == [supplier_leaf(s) for s in world.suppliers]
    ubo_leaves = [bytes.fromhex(h[2:]) for h in ubos]
    assert "0x" + list_root(ubo_leaves, RootScheme.MERKLE).hex() == manifest.ubo_root
    assert ubo_leaves == [ubo_leaf(u) for u in world.ubos]
    assert ctx.lookup("supplier_count") == 3


def test_prover_refuses_an_unknown_input_and_an_unscreenable_one(world):
    ctx, _ = _context(world)
    with pytest.raises(MissingInputError) as exc:
        ctx.lookup("SUPPLIER_HASHES")
    assert exc.value.message == "no input named 'SUPPLIER_HASHES'"
    with pytest.raises(MissingInputError) as exc:
        ctx.screen("max_supplier_tier", "sanctions_root", None)
    assert exc.value.message == "'max_supplier_tier' cannot be screened"
    assert exc.value.details["field"] == "max_supplier_tier"
    assert exc.value.details["expected"] == "supplier_hashes or ubo_hashes"
    assert exc.value.code == "missing_input"


def test_prover_screening_refuses_without_the_manifests_list(world):
    manifest = world.manifest()
    ctx = ProverContext(manifest, world.suppliers, world.ubos, None, {})
    with pytest.raises(MissingInputError) as exc:
        ctx.screen("supplier_hashes", "sanctions_root", None)
    assert (exc.value.message, exc.value.details["field"]) == (
        "no sanctions list was given",
        "sanctions_root",
    )
    other = manifest.model_copy(update={"sanctions_root": "0x" + "11" * 32})
    ctx = ProverContext(other, world.suppliers, world.ubos, world.lists, {})
    with pytest.raises(MissingInputError) as exc:
        ctx.screen("supplier_hashes", "sanctions_root", None)
    assert exc.value.message == "manifest sanctions_root is not the loaded list's root"
    assert exc.value.details["field"] == "sanctions_root"


def test_prover_screens_every_item_after_a_listed_one_and_keeps_every_match(world):
    # its own build, not the module's cached proof: the mutation run credits a function only to the tests
    # that call it, and this test is the one that reads the prover's message
    proof = world.build(AUDIT).proof
    evidence = evidence_of(proof)
    assert [next(k for k in item if k != "key") for item in evidence["items"]] == [
        "absent",
        "listed",
        "absent",
    ]
    assert evidence["count"] == 3 and len(evidence["possible_matches"]) == 1
    assert json.loads(json.dumps(evidence)) == evidence  # JSON-native: what the proof file holds
    rule = next(r for r in proof.rules if r.rule_id == RULE)
    assert rule.message == "1 of 3 supplier names are on the sanctions list; 1 possible matches for review"


def test_evidence_under_an_unknown_or_other_key_version_fails(world, proof):
    v2 = World(suppliers_csv=SUPPLIERS, key_version=KeyVersion.V2)
    v2_proof = v2.build(AUDIT).proof
    report = verify_proof(v2_proof, keyring=v2.keyring, mode=AUDIT, now=NOW, trust=v2.trust)
    assert f"evidence:{RULE}" not in {c.id for c in report.checks}
    for version, message in [
        (
            "screening-key.v9",
            "evidence uses screening key version 'screening-key.v9'; this verifier knows"
            " screening-key.v1, screening-key.v2",
        ),
        (
            None,
            "evidence for supplier_hashes screened names under screening-key.v1, but the trusted list"
            " with this root keys them under screening-key.v2",
        ),
    ]:
        evidence = evidence_of(v2_proof)
        evidence.pop("key_version")
        if version:
            evidence["key_version"] = version
        rules = [
            r.model_copy(update={"evidence": evidence}) if r.rule_id == RULE else r for r in v2_proof.rules
        ]
        forged = sign_proof(v2_proof.model_copy(update={"rules": rules}), v2.signer)
        check, _ = evidence_check(v2, forged)
        assert (check.status, check.message) == (CheckStatus.FAIL, message)


def test_public_context_names_what_the_proof_does_not_disclose(world, proof):
    ctx = PublicContext(proof.manifest, {"supplier_count": 3, "max_supplier_tier": 1})
    with pytest.raises(MissingInputError) as exc:
        ctx.lookup("ubo_count")
    assert (exc.value.message, exc.value.details["field"]) == (
        "proof discloses no input named 'ubo_count'",
        "ubo_count",
    )
    with pytest.raises(MissingInputError) as exc:
        ctx.screen("max_supplier_tier", "sanctions_root", evidence_of(proof))
    assert (exc.value.message, exc.value.details["field"]) == (
        "'max_supplier_tier' cannot be screened",
        "max_supplier_tier",
    )


def test_prover_lookup_names_the_missing_input(world):
    ctx, _ = _context(world)
    with pytest.raises(MissingInputError) as exc:
        ctx.lookup("nothing")
    assert exc.value.details["field"] == "nothing"


def test_a_root_the_manifest_lacks_is_named_and_only_root_names_have_a_present_flag(world, proof):
    manifest = proof.manifest.model_copy(update={"jurisdiction_root": None})
    ctx = PublicContext(manifest, {"supplier_count": 3})
    with pytest.raises(MissingInputError) as exc:
        ctx.lookup("jurisdiction_root")
    assert (exc.value.message, exc.value.details["field"]) == (
        "manifest has no jurisdiction_root",
        "jurisdiction_root",
    )
    assert ctx.lookup("jurisdiction_root_present") is False
    assert ctx.lookup("sanctions_root_present") is True
    # "subject" is a manifest field but not a root variable: no "_present" flag for it
    with pytest.raises(MissingInputError) as exc:
        ctx.lookup("subject_present")
    assert exc.value.message == "proof discloses no input named 'subject_present'"


def test_a_malformed_manifest_list_root_is_refused_naming_the_root_variable(world, proof):
    """A prover writes a sanctions_root that is not a digest into its manifest and its evidence alike."""
    bad = "0x" + "zz" * 32
    manifest = proof.manifest.model_copy(update={"sanctions_root": bad})
    evidence = evidence_of(proof) | {"list_root": bad}
    ctx = PublicContext(manifest, {"supplier_count": 3})
    with pytest.raises(InvalidInputError) as exc:
        ctx.screen("supplier_hashes", "sanctions_root", evidence)
    assert exc.value.details["field"] == "sanctions_root"
