"""Operations combined, as an operator runs them (issue 16): backups taken across a key rotation stay
restorable, and restoring an older backup after a rotation gives a clear keyring decision.

Every command is the real ``cap`` entry point in a subprocess on a tmp data dir."""

from __future__ import annotations

import json

ROTATION = [
    ("--phase", "0"),
    ("--phase", "1", "--duration", "1h"),
    ("--phase", "2"),
    ("--phase", "3", "--force"),
]


def _keyring(cap):
    return json.loads((cap.root / "var" / "keyring.json").read_text())


def test_backup_after_phase_0_restores_verify_only(cap):
    """The issue's repro: phase 0 writes keys/<kid>.attestation.json; restore step 6 must understand it."""
    assert cap("keys", "keygen").code == 0
    assert cap("keys", "rotate", "--phase", "0", "--force").code == 0
    made = cap("backup")
    assert made.code == 0, made.stderr
    checked = cap("restore", "--backup", made.stdout.strip(), "--verify-only")
    assert checked.code == 0, checked.stderr


def test_every_rotation_phase_backs_up_and_verifies_then_the_newest_restores(cap):
    assert cap("keys", "keygen").code == 0
    backups = []
    for args in ROTATION:
        step = cap("keys", "rotate", *args, "--force")
        assert step.code == 0, (args, step.stderr)
        made = cap("backup")
        assert made.code == 0, made.stderr
        bid = made.stdout.strip()
        checked = cap("restore", "--backup", bid, "--verify-only", "--json")
        assert checked.code == 0, (args, checked.stderr)
        backups.append((bid, _keyring(cap)["version"]))
    before = _keyring(cap)
    restored = cap("restore", "--backup", backups[-1][0], "--json")
    assert restored.code == 0, restored.stderr
    assert _keyring(cap) == before
    assert cap("keys", "list").code == 0


def test_older_backup_after_rotation_is_refused_with_the_options_then_merged(cap):
    assert cap("keys", "keygen").code == 0
    old = cap("backup").stdout.strip()
    for args in ROTATION:
        assert cap("keys", "rotate", *args, "--force").code == 0
    live = _keyring(cap)
    retired = [k["kid"] for k in live["keys"] if k["status"] == "retired"]
    assert retired
    checked = cap("restore", "--backup", old, "--verify-only", "--json")
    assert checked.code == 0, checked.stderr
    decision = [c for s in checked.json()["steps"] for c in s["checks"] if c["id"] == "keyring_decision"]
    assert decision and "--keyring merge" in decision[0]["message"]
    refused = cap("restore", "--backup", old)
    assert refused.code == 4
    assert "keyring_rollback" in refused.stderr and "--keyring merge" in refused.stderr
    assert "unreadable" not in refused.stderr
    assert _keyring(cap) == live
    merged = cap("restore", "--backup", old, "--keyring", "merge", "--json")
    assert merged.code == 0, merged.stderr
    after = _keyring(cap)
    assert after["version"] >= live["version"]
    assert {k["kid"]: k["status"] for k in after["keys"]}[retired[0]] == "retired"
    assert after["default_signing_kid"] == live["default_signing_kid"]
