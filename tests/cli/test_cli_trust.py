"""``cap verify`` as a verifier with its own trust anchors, in subprocesses on the real OFAC and UN extracts.

The attack of issue 15: a prover whose supplier is on OFAC's list builds its proof against a list of its
own choosing; the stock CLI must refuse it (exit 3) with ``list_root`` naming both roots.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import EXAMPLES, Cap
from tests.cli.test_cli_lifecycle import POLICY, SUPPLIERS, UBOS, _lists

LISTED = "HESA TRADE CENTER,DE,1\n"  # an OFAC SDN entity (alias of ent 10536 in the extract)


def _prove(cap, suppliers_text, lists_path, tag, *extra):
    suppliers = cap.write(f"suppliers_{tag}.csv", suppliers_text)
    ubos = cap.write("ubos.csv", UBOS)
    build = cap.root / "build"
    assert cap("commit", "--suppliers", suppliers, "--ubos", ubos, "--out", build / f"c_{tag}.json").code == 0
    manifest = build / f"m_{tag}.json"
    r = cap(
        "manifest",
        "build",
        "--commitments",
        build / f"c_{tag}.json",
        "--policy",
        POLICY,
        "--lists",
        lists_path,
        "--out",
        manifest,
    )
    assert r.code == 0, r.stderr
    proof = build / f"p_{tag}.json"
    r = cap(
        "proof",
        "build",
        "--manifest",
        manifest,
        "--policy",
        POLICY,
        "--suppliers",
        suppliers,
        "--ubos",
        ubos,
        "--lists",
        lists_path,
        "--out",
        proof,
        "--json",
        *extra,
    )
    return r, proof


def _checks(result):
    return {c["id"]: c for c in result.json()["checks"]}


def _fake_lists(cap):
    fake = cap.write("fake.csv", "name,birthdate,nationality\nHarmless Person,,\n")
    out = cap.root / "build" / "fake_lists.json"
    r = cap(
        "lists", "build", "--csv", fake, "--high-risk", EXAMPLES / "high_risk.csv", "--out", out, "--json"
    )
    assert r.code == 0, r.stderr
    return out, r.json()["sanctions_root"]


@pytest.fixture(scope="module")
def verifier(tmp_path_factory):
    """One data dir that proves and verifies: a key, the real lists built and installed, an honest proof."""
    cap = Cap(tmp_path_factory.mktemp("verifier"))
    assert cap("keys", "keygen", "--owner", "Test GmbH").code == 0
    honest = _lists(cap)
    built, proof = _prove(cap, SUPPLIERS, cap.root / "build" / "lists.json", "honest", "--enforce")
    assert built.code == 0, built.stderr
    return cap, honest["sanctions_root"], proof


def test_fake_list_attack_fails_with_list_root_naming_both_roots(verifier):
    cap, honest_root, honest_proof = verifier
    fake_path, fake_root = _fake_lists(cap)
    built, proof = _prove(cap, SUPPLIERS + LISTED, fake_path, "fake", "--enforce")
    assert built.code == 0 and built.json()["verdict"] == "OK"  # against its own list, the prover sees no hit
    verified = cap("verify", "--proof", proof, "--json")
    assert verified.code == 3, verified.stdout + verified.stderr
    checks = _checks(verified)
    assert checks["list_root"]["status"] == "fail"
    assert fake_root in checks["list_root"]["message"] and honest_root in checks["list_root"]["message"]
    assert "sdn.csv" in checks["list_root"]["message"]  # the trusted root's sources
    assert checks["rule:no_sanctioned_suppliers"]["status"] == "fail"

    human = cap("verify", "--proof", honest_proof)  # the honest proof verifies, and says what it proved
    assert human.code == 0, human.stdout
    summary = next(line for line in human.stdout.splitlines() if line.startswith("proved:"))
    assert "list_root" in summary and "attested (prover's signature): counts" in summary


def test_installed_list_older_than_the_maximum_age_fails(cap):
    assert cap("keys", "keygen", "--owner", "Test GmbH").code == 0
    small = cap.write("small.csv", "name,birthdate,nationality\nKestrel Maritime Services,,\n")
    lists = cap.root / "build" / "small_lists.json"
    r = cap(
        "lists", "build", "--csv", small, "--high-risk", EXAMPLES / "high_risk.csv", "--out", lists, "--json"
    )
    assert r.code == 0, r.stderr
    old = json.loads(lists.read_text())
    old["generated_at"] = "2020-01-01T00:00:00Z"  # not part of any root: the build time the manifest carries
    lists.write_text(json.dumps(old))
    assert cap("lists", "install", lists).code == 0
    built, proof = _prove(cap, SUPPLIERS, lists, "old", "--enforce")
    assert built.code == 0, built.stderr
    verified = cap("verify", "--proof", proof, "--json")
    assert verified.code == 3
    message = _checks(verified)["list_root"]["message"]
    assert "2020-01-01T00:00:00Z" in message and "older than the maximum 14 days" in message
    assert cap("verify", "--proof", proof, "--max-list-age-days", "100000").code == 0


def test_verifier_without_installed_lists_fails_closed_and_says_how_to_install(verifier, tmp_path):
    prover, _, proof = verifier
    cap = Cap(tmp_path)  # a customer: the prover's keyring, no lists installed
    keyring = Path(prover.env["CAP_DATA_DIR"]) / "keyring.json"
    verified = cap("verify", "--proof", proof, "--keyring", keyring, "--json")
    assert verified.code == 3
    message = _checks(verified)["list_root"]["message"]
    assert "no trusted lists" in message and "--install" in message and "cap lists refresh" in message
    lists = prover.root / "build" / "lists.json"
    given = cap("verify", "--proof", proof, "--keyring", keyring, "--lists", lists, "--json")
    assert given.code == 0, given.stdout
    assert "--lists" in _checks(given)["list_root"]["message"]


def test_policy_pinning(verifier):
    cap, _, proof = verifier
    assert cap("verify", "--proof", proof, "--policy", POLICY).code == 0
    other = cap("verify", "--proof", proof, "--policy", EXAMPLES / "lksg_v2.policy.yml", "--json")
    assert other.code == 3 and _checks(other)["policy_pin"]["status"] == "fail"
    wrong = cap("verify", "--proof", proof, "--expect-policy-hash", "0x" + "ab" * 32, "--json")
    assert wrong.code == 3 and "0x" + "ab" * 32 in _checks(wrong)["policy_pin"]["message"]
    bad = cap("verify", "--proof", proof, "--expect-policy-hash", "nonsense")
    assert bad.code == 2 and "expect_policy_hash" in bad.stderr


def test_a_broken_lists_file_is_refused_before_install(verifier, tmp_path):
    cap, honest_root, _ = verifier
    doc = json.loads((cap.root / "build" / "lists.json").read_text())
    doc["sanctions_root"] = "0x" + "00" * 32
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    r = cap("lists", "install", broken)
    assert r.code != 0 and "sanctions_root" in (r.stderr + r.stdout)
    installed = json.loads((Path(cap.env["CAP_DATA_DIR"]) / "lists" / "lists.json").read_text())
    assert installed["sanctions_root"] == honest_root
