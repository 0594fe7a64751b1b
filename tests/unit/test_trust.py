"""Trust anchors and bound disclosures: each attack built for real and re-signed with the prover's own key.

A forger who holds the prover's key can sign anything; what must still fail is every proof whose parts
contradict each other or the verifier's own trust anchors, and what cannot be checked must say so.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from core.context import PublicContext
from core.modes import CheckStatus, EnforcementMode
from core.proof import sign_proof
from core.rules import evaluate_rule
from core.sanctions import SanctionsEntry
from core.trust import PinnedPolicy, TrustAnchors, TrustedLists
from core.verify import CheckKind, summary_line, verify_proof
from tests.world import NOW, POLICY, World

STRICT, RELAXED, AUDIT = EnforcementMode.STRICT, EnforcementMode.RELAXED, EnforcementMode.AUDIT
NEAR = "Kestrel Maritime Service,DE,1\n"  # one letter short of a listed name: a possible match
SCREEN = "no_sanctioned_suppliers"
LIST_RULES = {"rule:max_high_risk_suppliers", "rule:no_sanctioned_suppliers", "rule:no_sanctioned_ubos"}


def failing(report):
    return {c.id for c in report.checks if c.status is CheckStatus.FAIL}


def check(report, id_):
    return next(c for c in report.checks if c.id == id_)


def verify(world, proof, mode=STRICT, trust=None, now=NOW):
    return verify_proof(proof, keyring=world.keyring, mode=mode, now=now, trust=trust or world.trust)


def resigned(world, proof, **changes):
    return sign_proof(proof.model_copy(update=changes), world.signer)


def with_evidence(proof, rule_id, edit):
    rules = []
    for r in proof.rules:
        if r.rule_id == rule_id:
            ev = json.loads(json.dumps(r.evidence))
            edit(ev)
            r = r.model_copy(update={"evidence": ev})
        rules.append(r)
    return rules


def consistent(world, proof, public):
    """Forge ``public`` and re-derive every comparison rule from it, as a careful forger would."""
    ctx = PublicContext(proof.manifest, public)
    by_id = {r.id: r for r in proof.ir.rules}
    rules = [
        r if "list_root" in r.evidence else evaluate_rule(by_id[r.rule_id], ctx, r.evidence)
        for r in proof.rules
    ]
    return resigned(world, proof, public=public, rules=rules)


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def near_world():
    return World(suppliers_csv=World().suppliers_csv + NEAR)


# --- list roots -------------------------------------------------------------------------------------


def test_honest_proof_verifies_against_the_trusted_lists(world):
    report = verify(world, world.build().proof)
    assert report.result is CheckStatus.OK, [c for c in report.checks if c.status is not CheckStatus.OK]
    assert check(report, "list_root").status is CheckStatus.OK
    assert world.lists.root_hex in check(report, "list_root").message


def test_a_list_of_the_provers_choosing_fails_closed_naming_both_roots(world):
    fake = World(listed=(SanctionsEntry(source="fake", entry_id="1", primary_name="Harmless Person"),))
    lenient = fake.build().proof  # same prover key; the proof is internally perfect
    assert verify(fake, lenient).result is CheckStatus.OK  # against its own lists it would pass
    report = verify(world, lenient)
    assert report.result is CheckStatus.FAIL
    assert {"list_root", *LIST_RULES} == failing(report)
    message = check(report, "list_root").message
    assert fake.lists.root_hex in message and world.lists.root_hex in message and "origin" not in message
    assert "test" in message  # the trusted root's origin and sources are named


@pytest.mark.parametrize(
    ("mode", "status"),
    [(STRICT, CheckStatus.FAIL), (RELAXED, CheckStatus.FAIL), (AUDIT, CheckStatus.WARN)],
    ids=["strict", "relaxed", "audit"],
)
def test_untrusted_root_is_a_high_violation_in_each_mode(mode, status):
    w = World()
    report = verify(w, w.build(mode).proof, mode=mode, trust=TrustAnchors())
    assert check(report, "list_root").status is status
    assert check(report, "rule:no_sanctioned_suppliers").status is status
    assert report.result is status


def test_no_trusted_lists_tells_the_operator_how_to_install_them(world):
    report = verify(world, world.build().proof, trust=TrustAnchors())
    message = check(report, "list_root").message
    assert "no trusted lists" in message and "cap lists build" in message and "--lists" in message


def test_lists_older_than_the_maximum_age_fail_the_same_way(world):
    stale = World(lists_built_at=NOW - timedelta(days=15)).build().proof
    report = verify(world, stale)
    assert {"list_root", *LIST_RULES} == failing(report)
    assert "15 days old" in check(report, "list_root").message
    longer = world.trust.model_copy(update={"max_list_age": timedelta(days=30)})
    assert verify(world, stale, trust=longer).result is CheckStatus.OK
    assert "list_root" in failing(verify(world, world.build().proof, now=NOW + timedelta(days=14, seconds=1)))


def test_lists_claiming_a_future_build_time_are_refused(world):
    future = World(lists_built_at=NOW + timedelta(hours=1)).build().proof
    assert "future" in check(verify(world, future), "list_root").message


def test_a_manifest_without_its_lists_build_time_is_refused(world):
    proof = world.build().proof
    bare = proof.manifest.model_copy(update={"lists": None})
    report = verify(world, resigned(world, proof, manifest=bare.model_copy(update={"signatures": []})))
    assert "does not say when" in check(report, "list_root").message


def test_a_jurisdiction_root_other_than_the_trusted_one_is_untrusted(world):
    other = World(high_risk={"KP": World().high_risk["KP"]}).build().proof  # same sanctions, other levels
    assert "list_root" in failing(verify(world, other))


def test_any_of_several_trusted_lists_is_accepted(world):
    fake = World(listed=(SanctionsEntry(source="fake", entry_id="1", primary_name="Harmless Person"),))
    both = TrustAnchors(
        lists=(*world.trust.lists, TrustedLists(origin="--lists other", lists=fake.lists_file))
    )
    assert verify(world, fake.build().proof, trust=both).result is CheckStatus.OK


def test_a_proof_without_list_rules_needs_no_lists():
    drop = ("require_statement_roots", "no_sanctioned", "max_high_risk")
    policy = "".join(line for line in POLICY.splitlines(keepends=True) if not line.strip().startswith(drop))
    w = World(policy_text=policy, with_lists=False, high_risk=None)
    report = verify(w, w.build().proof, trust=TrustAnchors())
    assert report.result is CheckStatus.OK and "list_root" not in {c.id for c in report.checks}


# --- policy pinning -----------------------------------------------------------------------------------


def test_policy_pin(world):
    proof = world.build().proof
    right = TrustAnchors(
        lists=world.trust.lists, policies=(PinnedPolicy(hash=proof.manifest.policy.hash, origin="t"),)
    )
    wrong = TrustAnchors(
        lists=world.trust.lists, policies=(PinnedPolicy(hash="0x" + "ab" * 32, origin="--x"),)
    )
    assert check(verify(world, proof, trust=right), "policy_pin").status is CheckStatus.OK
    report = verify(world, proof, mode=AUDIT, trust=wrong)
    assert report.result is CheckStatus.FAIL and "0x" + "ab" * 32 in check(report, "policy_pin").message


# --- bound counts ----------------------------------------------------------------------------------------


def test_forged_count(world):
    proof = world.build().proof
    report = verify(world, resigned(world, proof, public={**proof.public, "ubo_count": 3}))
    assert {
        "evidence:no_sanctioned_ubos",
        "evidence:ubo_count_min",
        "evidence:require_at_least_one_ubo",
    } <= failing(report)


def test_dropped_screened_item(world):
    proof = world.build().proof

    def drop(ev):
        ev["items"].pop()
        ev["count"] -= 1

    report = verify(world, resigned(world, proof, rules=with_evidence(proof, SCREEN, drop)))
    assert failing(report) == {f"evidence:{SCREEN}"}
    assert "different number" in check(report, f"evidence:{SCREEN}").message


def test_honest_possible_match_is_reported_and_checked_against_the_trusted_list(near_world):
    proof = near_world.build().proof
    assert proof.public["possible_match_count"] == 1
    report = verify(near_world, proof)
    assert report.result is CheckStatus.WARN and not failing(report)
    assert check(report, f"possible_match:{SCREEN}").status is CheckStatus.WARN


def test_dropped_possible_match(near_world):
    proof = near_world.build().proof
    forged = resigned(
        near_world, proof, rules=with_evidence(proof, SCREEN, lambda ev: ev["possible_matches"].clear())
    )
    report = verify(near_world, forged)
    assert failing(report) == {"public:possible_match_count"}


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        pytest.param(
            lambda m: m.update(candidate="someone else"), "not on the trusted list", id="invented_candidate"
        ),
        pytest.param(lambda m: m.update(refs=["test:9"]), "not on the trusted list", id="wrong_refs"),
        pytest.param(lambda m: m.update(item=99), "names item 99", id="item_out_of_range"),
        pytest.param(lambda m: m.update(score_bp=8000), "not a near match", id="score_below_threshold"),
        pytest.param(lambda m: m.update(extra=1), "malformed", id="extra_field"),
    ],
)
def test_forged_possible_match(near_world, edit, needle):
    proof = near_world.build().proof
    forged = resigned(
        near_world, proof, rules=with_evidence(proof, SCREEN, lambda ev: edit(ev["possible_matches"][0]))
    )
    report = verify(near_world, forged)
    assert failing(report) == {f"evidence:{SCREEN}"}
    assert needle in check(report, f"evidence:{SCREEN}").message


def test_possible_match_on_a_listed_item_is_refused():
    w = World(suppliers_csv=World().suppliers_csv + "Petrov Industrial Holding GmbH,DE,1\n" + NEAR)
    proof = w.build().proof
    listed = next(
        i
        for i, it in enumerate(next(r for r in proof.rules if r.rule_id == SCREEN).evidence["items"])
        if "listed" in it
    )
    forged = resigned(
        w, proof, rules=with_evidence(proof, SCREEN, lambda ev: ev["possible_matches"][0].update(item=listed))
    )
    assert "absent" in check(verify(w, forged), f"evidence:{SCREEN}").message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("max_supplier_tier", 0, id="tier_zero_with_suppliers"),
        pytest.param("high_risk_supplier_count", 6, id="high_risk_above_supplier_count"),
        pytest.param("high_risk_supplier_count", -1, id="high_risk_negative"),
        pytest.param("supplier_count", True, id="count_not_an_integer"),
    ],
)
def test_forged_scalar_fails_even_when_every_rule_is_re_derived(world, name, value):
    proof = world.build().proof
    report = verify(world, consistent(world, proof, {**proof.public, name: value}))
    assert f"public:{name}" in failing(report)


def test_high_risk_count_without_a_jurisdiction_root_is_refused():
    w = World(with_lists=False)  # a high-risk count disclosed, but no jurisdiction root to count against
    report = verify(w, w.build().proof, trust=TrustAnchors())
    assert "public:high_risk_supplier_count" in failing(report)


def test_a_consistent_forgery_of_an_attested_scalar_is_reported_as_attested(world):
    """What cannot be proved is not shown as proved: the report names it as the prover's attestation."""
    proof = world.build().proof
    report = verify(world, consistent(world, proof, {**proof.public, "max_supplier_tier": 1}))
    assert report.result is CheckStatus.OK
    attested = check(report, "attested:max_supplier_tier")
    assert attested.kind is CheckKind.ATTESTED and "max_supplier_tier 1" in attested.message


def test_attested_checks_and_the_summary_line(world):
    report = verify(world, world.build().proof)
    attested = {c.id for c in report.checks if c.kind is CheckKind.ATTESTED}
    assert attested == {
        "attested:counts",
        "attested:max_supplier_tier",
        "attested:high_risk_supplier_count",
        "attested:screened_names",
        "attested:possible_matches",
    }
    assert all(c.status is CheckStatus.OK for c in report.checks if c.kind is CheckKind.ATTESTED)
    line = summary_line(report)
    proved, attested_part = line.split("; attested")
    assert "list_root" in proved and "proof_signature" in proved and "screened_names" not in proved
    assert "screened_names" in attested_part and "not ok" not in line
    failed = summary_line(verify(world, world.build().proof, trust=TrustAnchors()))
    assert "not ok: list_root" in failed


# --- loading the anchors (core.anchors) ------------------------------------------------------------------


def test_anchors_load_installed_and_given_lists_and_the_age_from_settings(tmp_path, world):
    from core.anchors import InstalledListsWatcher, trust_anchors
    from core.screening import save_lists
    from core.settings import Settings

    settings = Settings.from_env({"CAP_DATA_DIR": str(tmp_path / "var"), "CAP_MAX_LIST_AGE_DAYS": "3"})
    assert trust_anchors(settings).lists == () and trust_anchors(settings).max_list_age == timedelta(days=3)
    watcher = InstalledListsWatcher(settings)
    assert watcher.current() == ()
    installed = settings.layout.lists_dir / "lists.json"
    installed.parent.mkdir(parents=True)
    save_lists(installed, world.lists_file)
    given = save_lists(tmp_path / "other.json", World(high_risk=None).lists_file)
    anchors = trust_anchors(settings, lists=[given])
    assert [t.origin for t in anchors.lists] == [f"installed {installed}", f"--lists {given}"]
    assert watcher.current()[0].lists.sanctions_root == world.lists.root_hex
    installed.unlink()
    assert watcher.current() == ()  # reloaded: nothing installed any more


def test_large_installed_lists_are_frozen_out_of_the_cyclic_collector(tmp_path, world, monkeypatch):
    import gc

    from core import anchors
    from core.screening import save_lists
    from core.settings import Settings

    settings = Settings.from_env({"CAP_DATA_DIR": str(tmp_path / "var")})
    installed = settings.layout.lists_dir / "lists.json"
    installed.parent.mkdir(parents=True)
    save_lists(installed, world.lists_file)
    gc.unfreeze()
    try:
        anchors.InstalledListsWatcher(settings).current()
        assert gc.get_freeze_count() == 0  # a small list: left alone
        monkeypatch.setattr(anchors, "FREEZE_FROM", len(world.lists_file.keys))
        held = anchors.InstalledListsWatcher(settings).current()
        assert gc.get_freeze_count() > 0
        assert all(o is not held[0].lists for o in gc.get_objects())  # not walked by collections
        gc.unfreeze()
        assert any(o is held[0].lists for o in gc.get_objects())  # (what the line above tells apart)
    finally:
        gc.unfreeze()


def test_bad_max_list_age_setting_names_the_variable():
    from core.errors import InvalidInputError
    from core.settings import Settings

    with pytest.raises(InvalidInputError) as info:
        Settings.from_env({"CAP_MAX_LIST_AGE_DAYS": "0"})
    assert info.value.details["field"] == "max_list_age_days"
