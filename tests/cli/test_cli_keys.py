"""``cap keys`` attest / verify-chain / rotate / revoke in real subprocesses, with exit codes."""

from __future__ import annotations

import json

import pytest


def _keyring(cap):
    return json.loads((cap.root / "var" / "keyring.json").read_text())


@pytest.fixture
def rotated(cap):
    """A data directory taken through phases 0-2 (2 confirmed on stdin)."""
    assert cap("keys", "keygen", "--owner", "Test GmbH").code == 0
    for args, stdin in ((("--phase", "0"), None), (("--phase", "1"), None), (("--phase", "2"), "y\n")):
        r = cap("keys", "rotate", *args, "--json", input=stdin)
        assert r.code == 0, r.stderr
    return cap


def test_rotation_through_the_cli_with_gates_dry_run_and_revoke(rotated):
    cap = rotated
    keyring = _keyring(cap)
    old, new = keyring["keys"][0]["kid"], keyring["keys"][1]["kid"]
    assert (
        keyring["version"] == 4 and keyring["default_signing_kid"] == new and keyring["mode"] == "dual-accept"
    )

    gated = cap("keys", "rotate", "--phase", "3", "--json")
    assert gated.code == 2 and json.loads(gated.stderr.splitlines()[0])["error"] == "dual_accept_active"
    dry = cap("keys", "rotate", "--phase", "3", "--force", "--dry-run", "--json")
    assert dry.code == 0 and dry.json()["dry_run"] and _keyring(cap)["version"] == 4
    assert any(line.startswith(f"key {old}: active -> retired") for line in dry.json()["diff"])

    done = cap("keys", "rotate", "--phase", "3", "--force", "--json")
    assert done.code == 0, done.stderr
    assert done.json()["verified_signer"] == new and _keyring(cap)["version"] == 5
    values = (cap.root / "var" / "helm-signing-values.yaml").read_text()
    assert "mode: single-key" in values and f"default_key: /keys/{new}.pem" in values

    keys = cap("keys", "list", "--json").json()["keys"]
    listed = {k["kid"]: (k["store_status"], k["keyring_status"], k["default_signer"]) for k in keys}
    assert listed == {old: ("retired", "retired", False), new: ("active", "active", True)}
    assert cap("keys", "revoke", new).code == 2  # the default signer: rotate first
    revoked = cap("keys", "revoke", old, "--reason", "drill", "--json")
    assert revoked.code == 0 and revoked.json()["keyring_version"] == 6
    assert {k["kid"]: k["status"] for k in _keyring(cap)["keys"]}[old] == "revoked"


def test_attest_and_verify_chain_with_a_tampered_attestation(rotated):
    cap = rotated
    keyring = _keyring(cap)
    old, new = keyring["keys"][0]["kid"], keyring["keys"][1]["kid"]
    made = cap.root / "made.json"
    assert cap("keys", "attest", "--signer", old, "--subject", new, "--out", made).code == 0
    ok = cap("keys", "verify-chain", made, "--json")
    assert ok.code == 0, ok.stdout + ok.stderr
    assert ok.json()["chain"]["head_kid"] == new and ok.json()["head_acceptance"]["status"] == "ok"
    phase0 = cap.root / "var" / "keys" / f"{new}.attestation.json"
    assert cap("keys", "verify-chain", phase0, "--root", old).code == 0

    data = json.loads(made.read_text())
    data["attestation"]["attested_at"] = "2020-01-01T00:00:00Z"
    tampered = cap.write("tampered.json", json.dumps(data))
    broken = cap("keys", "verify-chain", tampered, "--json")
    assert broken.code == 4 and broken.json()["chain"]["reason"] == "signature does not verify"


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (("--phase", "1", "--rollback"), 2, "rollback_unsupported"),
        (("--phase", "1", "--duration", "soon"), 2, "invalid_input"),
        (("--phase", "2", "--via-prefect"), 2, "config_error"),
    ],
    ids=["rollback_phase_1", "bad_duration", "via_prefect_without_server"],
)
def test_rotate_refusals(cap, args, code, error):
    assert cap("keys", "keygen").code == 0
    cap.env.pop("PREFECT_API_URL", None)
    r = cap("keys", "rotate", *args, "--json")
    assert r.code == code, r.stderr
    assert json.loads(r.stderr.splitlines()[0])["error"] == error
