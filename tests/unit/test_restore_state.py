"""State that holds together across restores and rotations (issue 16): the signed keyring, the rollback
floor that survives a restart, the data-dir generation followed by a watcher, registry writes during a
restore, and entry ids that are never handed out twice. Real files, real SQLite, in-process services."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from core import service
from core.backup import service as backups
from core.errors import ConfigError, IntegrityError, RotationError, StorageError
from core.generation import generation_number, replacing_state, writing_state
from core.keyring import KeyringWatcher, keyring_file_bytes, read_floor
from core.keyring_chain import LinkSigner, append_link, chain_guard, read_chain
from core.keys import KeyStatus, build_metadata
from core.registry import Registry
from core.rotation import RotationPhase, RotationRequest
from core.settings import Settings
from core.signing import Ed25519Signer
from tests.unit.test_backup_service import NOW, real_state

HOUR = timedelta(hours=1)
ATTACKER = Ed25519Signer.from_seed(bytes(range(100, 132)))  # a test constant, not a secret


def _rotate(settings, phase, at=HOUR, **kw):
    request = RotationRequest(phase=RotationPhase(phase), force=True, duration=HOUR, **kw)
    return service.rotate_signing_key(settings, request, NOW + at, confirm=lambda plan: True)


def _with_attacker_key(settings):
    """The live keyring one version up with the attacker's key active — what a file write can do."""
    keyring = service.load_local_keyring(settings)
    entry = build_metadata(ATTACKER.public_key_b64, "Mallory", NOW)
    extra = keyring.keys[0].model_copy(
        update={"kid": entry.kid, "public_key": entry.public_key, "status": KeyStatus.ACTIVE}
    )
    return keyring.model_copy(update={"version": keyring.version + 1, "keys": (*keyring.keys, extra)})


def _watcher(settings):
    layout = settings.layout
    guard = chain_guard(layout.keyring, settings.operator_public_keys)
    return KeyringWatcher(layout.keyring, generation_path=layout.generation_file, guard=guard)


# --- signed keyring ---------------------------------------------------------------------------------------


def test_every_keyring_change_is_signed_by_the_outgoing_signer(tmp_path):
    settings = real_state(tmp_path / "var")
    _rotate(settings, 0)
    _rotate(settings, 1)
    _rotate(settings, 2)
    links = read_chain(settings.layout.keyring_chain).links
    assert [link.signer for link in links] == [LinkSigner.BOOTSTRAP] + [LinkSigner.OUTGOING] * 3
    old, new = links[0].default_signing_kid, links[-1].default_signing_kid
    assert [link.signer_kid for link in links[1:]] == [old, old, old] and new != old
    assert service.load_local_keyring(settings).version == links[-1].version


@pytest.mark.parametrize("link_by", ["none", "attacker_as_outgoing", "attacker_as_operator"])
def test_a_higher_version_adding_an_attackers_key_is_refused(tmp_path, link_by):
    settings = real_state(tmp_path / "var")
    watcher = _watcher(settings)
    assert watcher.current(NOW).version == 1
    forged = _with_attacker_key(settings)
    data = keyring_file_bytes(forged)
    if link_by == "attacker_as_outgoing":
        append_link(settings.layout.keyring, forged, data, ATTACKER, LinkSigner.OUTGOING)
    elif link_by == "attacker_as_operator":
        append_link(settings.layout.keyring, forged, data, ATTACKER, LinkSigner.OPERATOR)
    settings.layout.keyring.write_bytes(data)
    with pytest.raises(IntegrityError) as info:
        service.load_local_keyring(settings)
    assert info.value.code == "keyring_signature_invalid"
    held = watcher.current(NOW + HOUR)
    assert held.version == 1 and held.entry(ATTACKER.kid) is None
    assert watcher.last_error.code == "keyring_signature_invalid"


def test_the_same_change_signed_by_the_outgoing_signer_is_accepted(tmp_path):
    """Positive control for the test above: only the signature differs."""
    settings = real_state(tmp_path / "var")
    watcher = _watcher(settings)
    watcher.current(NOW)
    forged = _with_attacker_key(settings)
    service.save_local_keyring(settings, forged, NOW)
    assert watcher.current(NOW + HOUR).entry(ATTACKER.kid) is not None


def test_pinned_operator_keys_require_an_operator_anchored_chain(tmp_path):
    operator = Ed25519Signer.generate()
    key_file = tmp_path / "operator.pem"
    key_file.write_bytes(operator.to_pem())
    key_file.chmod(0o600)
    pinned = Settings(data_dir=tmp_path / "var", operator_public_keys=(operator.public_key_b64,))
    unpinned_dir = real_state(tmp_path / "tofu")
    tofu = Settings(data_dir=unpinned_dir.data_dir, operator_public_keys=(operator.public_key_b64,))
    with pytest.raises(IntegrityError) as info:
        service.load_local_keyring(tofu)  # self-signed bootstrap: refused once an operator key is pinned
    assert info.value.code == "keyring_signature_invalid"
    anchored = pinned.model_copy(update={"operator_key_file": key_file})
    service.keygen(anchored, now=NOW)
    assert read_chain(pinned.layout.keyring_chain).links[0].signer is LinkSigner.OPERATOR
    assert service.load_local_keyring(pinned).version == 1
    pinned.layout.keyring_chain.unlink()
    with pytest.raises(IntegrityError) as info:
        service.load_local_keyring(pinned)
    assert info.value.code == "keyring_unsigned"


def test_rollback_to_an_older_signed_keyring_is_refused_after_a_restart(tmp_path):
    settings = real_state(tmp_path / "var")
    saved = {p: p.read_bytes() for p in (settings.layout.keyring, settings.layout.keyring_chain)}
    _rotate(settings, 0)
    _rotate(settings, 1)
    assert read_floor(settings.layout.keyring_floor) == 3
    for path, data in saved.items():  # the old, validly signed keyring (and its chain) put back
        path.write_bytes(data)
    with pytest.raises(RotationError) as info:
        service.load_local_keyring(settings)  # a new process: nothing held in memory
    assert info.value.code == "keyring_rollback"
    fresh = _watcher(settings)
    with pytest.raises(RotationError):
        fresh.current(NOW)


# --- restore: generation, floor, keyring decision ---------------------------------------------------------


def test_restore_raises_the_generation_and_keeps_the_floor(tmp_path):
    settings = real_state(tmp_path / "var")
    old = backups.backup_now(settings, now=NOW).manifest.backup_id
    _rotate(settings, 0)
    _rotate(settings, 1)
    before = generation_number(settings.data_dir)
    assert before == 3  # keygen, phase 0, phase 1
    watcher = _watcher(settings)
    assert watcher.current(NOW + HOUR).version == 3
    backups.restore_now(settings, old, now=NOW + HOUR, keyring_merge=True)
    assert generation_number(settings.data_dir) == before + 1
    assert read_floor(settings.layout.keyring_floor) == 3
    assert watcher.current(NOW + HOUR).version == 3 and watcher.last_error is None


def test_an_allowed_key_rollback_is_followed_by_watchers_through_the_generation(tmp_path):
    settings = real_state(tmp_path / "var")
    old = backups.backup_now(settings, now=NOW).manifest.backup_id
    _rotate(settings, 0)
    watcher = _watcher(settings)
    assert watcher.current(NOW + HOUR).version == 2
    backups.restore_now(settings, old, now=NOW + HOUR, allow_key_rollback=True)
    assert read_floor(settings.layout.keyring_floor) == 1
    assert watcher.current(NOW + HOUR).version == 1 and watcher.last_error is None
    # the same lower file without a new generation (no restore) stays refused
    ring = json.loads(settings.layout.keyring.read_text())
    stale = KeyringWatcher(settings.layout.keyring, generation_path=settings.layout.generation_file)
    assert stale.current(NOW).version == ring["version"]


def test_same_lower_file_without_a_restore_is_refused_by_a_running_watcher(tmp_path):
    settings = real_state(tmp_path / "var")
    saved = {p: p.read_bytes() for p in (settings.layout.keyring, settings.layout.keyring_chain)}
    _rotate(settings, 0)
    watcher = _watcher(settings)
    assert watcher.current(NOW + HOUR).version == 2
    for path, data in saved.items():
        path.write_bytes(data)
    assert watcher.current(NOW + HOUR).version == 2
    assert watcher.last_error.code == "keyring_rollback"


# --- registry during and after a restore ------------------------------------------------------------------


def _register(settings, n):
    signer = service.default_signer(settings)
    with writing_state(settings.data_dir), Registry(settings.layout.registry_db) as registry:
        return registry.register(
            f'{{"n": {n}}}'.encode(),
            b"{}",
            subject="S",
            policy_hash="p",
            ir_hash="i",
            company_root="c",
            supplier_root="s",
            ubo_root="u",
            result="OK",
            accepted=True,
            signer=signer,
            now=NOW,
        )


def _ids(settings):
    with Registry(settings.layout.registry_db) as registry:
        return sorted(e.id for e in registry.entries())


def test_entry_ids_are_never_reused_after_restoring_an_older_backup(tmp_path):
    settings = real_state(tmp_path / "var")
    _register(settings, 1)
    old = backups.backup_now(settings, now=NOW).manifest.backup_id
    lost = [_register(settings, n).id for n in (2, 3)]
    backups.restore_now(settings, old, now=NOW)
    assert _ids(settings) == ["proof_001"]
    fresh = _register(settings, 4).id
    assert fresh not in lost and fresh == "proof_004"


def test_a_registry_write_during_a_restore_lands_in_the_restored_state(tmp_path):
    settings = real_state(tmp_path / "var")
    _register(settings, 1)
    bid = backups.backup_now(settings, now=NOW).manifest.backup_id
    written: list[str] = []
    writer = threading.Thread(target=lambda: written.append(_register(settings, 2).id))

    def hook(event):
        if event == "before:swap":
            writer.start()  # blocks on the state lock until the restore commits

    backups.restore_now(settings, bid, now=NOW, hook=hook)
    writer.join(timeout=30)
    assert written == ["proof_002"] and _ids(settings) == ["proof_001", "proof_002"]


def test_a_registry_write_that_cannot_wait_fails_retryably(tmp_path):
    settings = real_state(tmp_path / "var")
    with (
        replacing_state(settings.data_dir),
        pytest.raises(StorageError) as info,
        writing_state(settings.data_dir, wait=0.2),
    ):
        pass
    assert info.value.code == "state_restoring" and info.value.transient


def test_backups_carry_chain_and_floor_but_never_private_keys(tmp_path):
    settings = real_state(tmp_path / "var")
    _rotate(settings, 0)
    manifest = backups.backup_now(settings, now=NOW).manifest
    paths = {f.path for f in manifest.files}
    assert {"keyring.json", "keyring.chain.json", "keyring.floor.json"} <= paths
    assert not [p for p in paths if p.endswith(".pem")]


def test_an_operator_re_anchors_an_unsigned_keyring_and_only_a_pinned_one_can(tmp_path):
    operator, stranger = Ed25519Signer.generate(), Ed25519Signer.generate()
    files = {}
    for name, signer in (("operator", operator), ("stranger", stranger)):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(signer.to_pem())
        files[name].chmod(0o600)
    tofu = real_state(tmp_path / "var")  # self-signed bootstrap, made before the operator key was pinned
    pinned = Settings(data_dir=tofu.data_dir, operator_public_keys=(operator.public_key_b64,))
    with pytest.raises(IntegrityError) as info:
        service.load_local_keyring(pinned)
    assert info.value.code == "keyring_signature_invalid"
    with pytest.raises(ConfigError):
        service.anchor_keyring(pinned.model_copy(update={"operator_key_file": files["stranger"]}), NOW)
    anchored = service.anchor_keyring(pinned.model_copy(update={"operator_key_file": files["operator"]}), NOW)
    assert service.load_local_keyring(pinned) == anchored and anchored.version == 2
    assert read_chain(pinned.layout.keyring_chain).links[-1].signer is LinkSigner.OPERATOR
