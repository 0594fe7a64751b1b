"""Signing-key rotation: the pure state machine as tables, the acceptance matrix per phase, and the
service layer (files, census, saga compensation, revoke, attestation chains, hot reload, metrics)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from prometheus_client import generate_latest

from core import rotation, service
from core.errors import CapError, InvalidInputError, KeyError_, RotationError, StorageError
from core.keyring import KeyringMode, KeyringWatcher, bootstrap_keyring, entry_from_metadata, load_keyring
from core.keys import KeyStatus, KeyStore, build_metadata
from core.metrics import REGISTRY, scrape_registry
from core.modes import CheckStatus, EnforcementMode
from core.registry import Registry
from core.rotation import RotationAction, RotationPhase, make_request, parse_duration
from core.settings import Settings
from core.signing import Ed25519Signer
from core.status import observe_status
from core.verify import verify_proof
from tests.world import NOW, World

OLD = Ed25519Signer.from_seed(bytes(range(32)))  # test constants, not secrets
NEW = Ed25519Signer.from_seed(bytes(range(32, 64)))
THIRD = Ed25519Signer.from_seed(bytes(range(64, 96)))
HOUR = timedelta(hours=1)
AFTER_WINDOW = timedelta(days=8)  # past the default 168 h dual-accept window


def _entry(signer: Ed25519Signer):
    return entry_from_metadata(
        build_metadata(signer.public_key_b64, "Test Co", NOW, status=KeyStatus.PENDING)
    )


def _v1():
    return bootstrap_keyring(build_metadata(OLD.public_key_b64, "Test Co", NOW), NOW, "test")


def _run(keyring, phase, *, rollback=False, force=False, at=HOUR, census=0, new=NEW):
    request = make_request(phase, rollback=rollback, force=force, actor="test")
    entry = _entry(new) if phase == 0 and not rollback else None
    return rotation.plan(keyring, request, NOW + at, census=census, new_entry=entry).after


def _through(last_phase, keyring=None):
    keyring = keyring or _v1()
    for phase in range(last_phase + 1):
        keyring = _run(keyring, phase, at=AFTER_WINDOW if phase == 3 else HOUR)
    return keyring


# --- legal sequences ------------------------------------------------------------------------------------

LEGAL = [
    pytest.param(
        [(0, {}), (1, {}), (2, {}), (3, {"at": AFTER_WINDOW})],
        "single-key",
        NEW,
        KeyStatus.RETIRED,
        id="full_rotation_with_dwell",
    ),
    pytest.param(
        [(0, {}), (1, {}), (2, {"force": True}), (3, {"force": True})],
        "single-key",
        NEW,
        KeyStatus.RETIRED,
        id="full_rotation_forced_zero_dwell",
    ),
    pytest.param(
        [(0, {}), (1, {}), (2, {}), (2, {"rollback": True})],
        "dual-accept",
        OLD,
        KeyStatus.ACTIVE,
        id="rollback_sign_switch",
    ),
    pytest.param(
        [(0, {}), (1, {}), (2, {}), (3, {"at": AFTER_WINDOW}), (3, {"rollback": True, "at": AFTER_WINDOW})],
        "dual-accept",
        NEW,
        KeyStatus.ACTIVE,
        id="rollback_decommission",
    ),
    pytest.param(
        [(0, {}), (1, {}), (2, {}), (2, {"rollback": True}), (2, {}), (3, {"force": True})],
        "single-key",
        NEW,
        KeyStatus.RETIRED,
        id="rollback_then_forward_again",
    ),
    pytest.param(
        [(0, {}), (0, {}), (1, {}), (1, {}), (2, {}), (2, {})],
        "dual-accept",
        NEW,
        KeyStatus.ACTIVE,
        id="reruns_are_noops",
    ),
]


@pytest.mark.parametrize(("steps", "mode", "default", "old_status"), LEGAL)
def test_legal_sequences(steps, mode, default, old_status):
    keyring = _v1()
    changes = 0
    for phase, options in steps:
        after = _run(keyring, phase, **options)
        changes += after.version != keyring.version
        if after.version != keyring.version:
            assert after.version == keyring.version + 1
            event = after.history[-1]
            assert (event.version, event.actor, event.kid) == (after.version, "test", NEW.kid)
            assert event.detail.startswith(f"old={OLD.kid} new={NEW.kid}")
        keyring = after
    assert keyring.version == 1 + changes
    assert (keyring.mode.value, keyring.default_signing_kid) == (mode, default.kid)
    assert keyring.entry(OLD.kid).status is old_status


def test_every_phase_rerun_returns_the_same_keyring():
    keyring = _v1()
    for phase in range(4):
        at = AFTER_WINDOW if phase == 3 else HOUR
        keyring = _run(keyring, phase, at=at)
        assert _run(keyring, phase, at=at) is keyring
    assert rotation.current_phase(keyring) is RotationPhase.DECOMMISSION


def test_phase_states_and_pair_are_derived_from_the_keyring():
    keyring = _v1()
    assert rotation.rotation_pair(keyring) is None
    for phase in RotationPhase:
        keyring = _run(keyring, phase, at=AFTER_WINDOW if phase == 3 else HOUR)
        assert rotation.phase_of(keyring, OLD.kid, NEW.kid) is phase
        assert rotation.rotation_pair(keyring) == rotation.RotationPair(old_kid=OLD.kid, new_kid=NEW.kid)


def test_decommission_records_retired_at_and_leaves_dual_accept():
    keyring = _through(3)
    assert keyring.entry(OLD.kid).retired_at == "2026-03-09T12:00:00Z"
    assert keyring.dual_accept_until is None and keyring.mode is KeyringMode.SINGLE_KEY
    assert [e.action for e in keyring.history] == [
        "bootstrap",
        "prepare",
        "dual-accept",
        "sign-switch",
        "decommission",
    ]


@pytest.mark.parametrize(("phase", "start"), [(2, 2), (3, 3)], ids=["2_to_1", "3_to_2"])
def test_rollback_reactivates_old_key_with_a_fresh_window(phase, start):
    keyring = _through(start)
    later = AFTER_WINDOW + timedelta(days=3)
    rolled = _run(keyring, phase, rollback=True, at=later)
    assert rolled.entry(OLD.kid).status is KeyStatus.ACTIVE and rolled.entry(OLD.kid).retired_at is None
    assert rolled.dual_accept_until == "2026-03-19T12:00:00Z"  # now + 168 h
    assert rolled.default_signing_kid == (OLD.kid if phase == 2 else NEW.kid)
    assert rolled.history[-1].action == f"rollback-{'sign-switch' if phase == 2 else 'decommission'}"


def test_a_second_rotation_starts_from_the_new_default():
    keyring = _through(3)
    second = _run(keyring, 0, new=THIRD, at=AFTER_WINDOW)
    assert rotation.rotation_pair(second) == rotation.RotationPair(old_kid=NEW.kid, new_kid=THIRD.kid)
    assert second.entry(THIRD.kid).status is KeyStatus.PENDING


# --- illegal steps --------------------------------------------------------------------------------------

ILLEGAL = [
    pytest.param(-1, 1, {}, "rotation_not_prepared", id="dual_accept_before_prepare"),
    pytest.param(-1, 3, {"force": True}, "rotation_not_prepared", id="decommission_unprepared_even_forced"),
    pytest.param(0, 2, {}, "phase_skipped", id="sign_switch_right_after_prepare"),
    pytest.param(1, 3, {"force": True}, "phase_skipped", id="decommission_skipping_sign_switch"),
    pytest.param(2, 1, {}, "phase_passed", id="dual_accept_after_sign_switch"),
    pytest.param(3, 2, {"at": AFTER_WINDOW}, "phase_passed", id="sign_switch_after_decommission"),
    pytest.param(2, 3, {}, "dual_accept_active", id="decommission_before_window_end"),
    pytest.param(
        2, 3, {"at": AFTER_WINDOW, "census": 4}, "census_not_empty", id="decommission_census_not_empty"
    ),
    pytest.param(1, 2, {"at": AFTER_WINDOW}, "dual_accept_expired", id="sign_switch_after_window_end"),
    pytest.param(1, 1, {"rollback": True}, "rollback_unsupported", id="rollback_phase_1"),
    pytest.param(0, 0, {"rollback": True}, "rollback_unsupported", id="rollback_phase_0"),
    pytest.param(
        3,
        2,
        {"rollback": True, "at": AFTER_WINDOW},
        "rollback_not_applicable",
        id="rollback_2_when_decommissioned",
    ),
    pytest.param(1, 3, {"rollback": True}, "rollback_not_applicable", id="rollback_3_when_dual_accept"),
    pytest.param(1, 0, {"new": THIRD}, "rotation_in_progress", id="second_prepare_while_rotating"),
]


@pytest.mark.parametrize(("reached", "phase", "options", "code"), ILLEGAL)
def test_illegal_steps_raise_rotation_error(reached, phase, options, code):
    keyring = _through(reached) if reached >= 0 else _v1()
    with pytest.raises(RotationError) as info:
        if options.get("new") is THIRD:
            request = make_request(0, new_kid=THIRD.kid)
            rotation.plan(keyring, request, NOW + HOUR, new_entry=_entry(THIRD))
        else:
            _run(keyring, phase, **options)
    assert info.value.code == code


def test_gates_are_skipped_only_by_force():
    keyring = _through(2)
    forced = _run(keyring, 3, force=True, census=9)
    assert forced.entry(OLD.kid).status is KeyStatus.RETIRED and forced.history[-1].detail.endswith("forced")


def test_rollback_of_a_revoked_old_key_is_refused():
    keyring = rotation.revoke(_through(3), OLD.kid, NOW + AFTER_WINDOW, "test")
    with pytest.raises(RotationError) as info:
        _run(keyring, 3, rollback=True, at=AFTER_WINDOW)
    assert info.value.code == "key_revoked"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("168h", timedelta(hours=168)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(minutes=90)),
        (" 90S ", timedelta(seconds=90)),
        ("3650d", timedelta(days=3650)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "168",
        "h",
        "+168h",
        "1w",
        "0h",
        "1h 30m",
        "\u0661h",  # an Arabic-Indic digit: int() takes it, the API's schema pattern does not
        "3651d",
        "99999999999d",  # timedelta overflow (was an OverflowError, a 500 found by the fuzz)
        "1" * 5000 + "s",  # beyond int()'s digit limit
    ],
)
def test_parse_duration_refuses(text):
    with pytest.raises(InvalidInputError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["168h", "1h30m", " 7D ", "0h1m", "3650d", "0s", "00h", "7 d", "a week"])
def test_the_api_schema_pattern_accepts_exactly_what_parses(text):
    """Up to the 3,650-day bound, which a pattern cannot express (longer ones are refused as 422)."""
    import re

    from core.rotation import DURATION_PATTERN

    try:
        parse_duration(text)
        parses = True
    except InvalidInputError:
        parses = False
    assert bool(re.match(DURATION_PATTERN, text)) == parses


def test_make_request_names_the_bad_option():
    with pytest.raises(InvalidInputError) as info:
        make_request(1, new_kid="XYZ")
    assert info.value.details["field"] == "new_kid"
    with pytest.raises(InvalidInputError):
        make_request(4)


# --- acceptance matrix: proofs by the old and the new key in every phase and mode --------------------------

TRUST = World().trust  # the lists the world's proofs were screened against (8 days old at most here)
OLD_PROOF = World(signer=OLD).build().proof
NEW_PROOF = World(signer=NEW).build().proof
OK, WARN, FAIL = CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL

MATRIX = [  # state, at, old-signed (strict, relaxed, audit), new-signed (strict, relaxed, audit)
    pytest.param("v1", HOUR, (OK, OK, OK), (FAIL, FAIL, FAIL), id="before_rotation"),
    pytest.param(0, HOUR, (OK, OK, OK), (FAIL, FAIL, FAIL), id="phase0_prepare_new_pending"),
    pytest.param(1, HOUR, (OK, OK, OK), (OK, OK, OK), id="phase1_dual_accept"),
    pytest.param(2, HOUR, (OK, OK, OK), (OK, OK, OK), id="phase2_sign_switch"),
    pytest.param(2, AFTER_WINDOW, (FAIL, WARN, WARN), (OK, OK, OK), id="phase2_window_over"),
    pytest.param(3, AFTER_WINDOW, (FAIL, WARN, WARN), (OK, OK, OK), id="phase3_decommission"),
    pytest.param("rollback3", AFTER_WINDOW, (OK, OK, OK), (OK, OK, OK), id="rollback_3_to_2"),
    pytest.param("rollback2", HOUR, (OK, OK, OK), (OK, OK, OK), id="rollback_2_to_1"),
    pytest.param("revoked", AFTER_WINDOW, (FAIL, FAIL, FAIL), (OK, OK, OK), id="old_revoked"),
]


def _state(name):
    if name == "v1":
        return _v1()
    if name == "rollback3":
        return _run(_through(3), 3, rollback=True, at=AFTER_WINDOW)
    if name == "rollback2":
        return _run(_through(2), 2, rollback=True)
    if name == "revoked":
        return rotation.revoke(_through(3), OLD.kid, NOW + AFTER_WINDOW, "test")
    return _through(name)


@pytest.mark.parametrize(("state", "at", "old_expected", "new_expected"), MATRIX)
def test_acceptance_matrix(state, at, old_expected, new_expected):
    keyring = _state(state)
    modes = (EnforcementMode.STRICT, EnforcementMode.RELAXED, EnforcementMode.AUDIT)
    for proof, expected in ((OLD_PROOF, old_expected), (NEW_PROOF, new_expected)):
        for mode, want in zip(modes, expected, strict=True):
            report = verify_proof(proof, keyring=keyring, mode=mode, now=NOW + at, trust=TRUST)
            key = next(c for c in report.checks if c.id == "key_status")
            assert (key.status, report.result) == (want, want), (proof.signature.kid, mode, key.message)


# --- compensation, revoke, values, probe (pure) ------------------------------------------------------------


def test_revert_restores_content_under_a_higher_version():
    before = _through(1)
    after = _run(before, 2)
    reverted = rotation.revert(after, before, NOW + HOUR, "test", "probe failed")
    assert reverted.version == after.version + 1
    assert reverted.model_dump(exclude={"version", "history"}) == before.model_dump(
        exclude={"version", "history"}
    )
    assert reverted.history[:-1] == after.history and reverted.history[-1].action == "revert"


def test_revoke_rules():
    keyring = _through(1)
    with pytest.raises(RotationError) as info:
        rotation.revoke(keyring, OLD.kid, NOW, "test")
    assert info.value.code == "revoke_default_key"
    aborted = rotation.revoke(keyring, NEW.kid, NOW, "test", "compromised before use")
    assert aborted.mode is KeyringMode.SINGLE_KEY and aborted.dual_accept_until is None
    assert aborted.version == keyring.version + 1 and rotation.rotation_pair(aborted) is None
    assert rotation.revoke(aborted, NEW.kid, NOW, "test") is aborted
    restarted = _run(aborted, 0, new=THIRD)  # an aborted rotation does not block the next one
    assert restarted.entry(THIRD.kid).status is KeyStatus.PENDING


@pytest.mark.parametrize(
    ("phase", "mode", "default", "until"),
    [
        (0, "single-key", OLD, False),
        (1, "dual-accept", OLD, True),
        (2, "dual-accept", NEW, True),
        (3, "single-key", NEW, False),
    ],
)
def test_signing_values_block(phase, mode, default, until):
    values = rotation.signing_values(_through(phase), "/keys")
    assert values.mode.value == mode and values.default_key == f"/keys/{default.kid}.pem"
    assert (values.dual_accept_until is not None) is until
    assert {k.kid: k.path for k in values.keys}[NEW.kid] == f"/keys/{NEW.kid}.pem"


def test_probe_signer_refuses_a_signer_that_is_not_the_default():
    keyring = _through(2)
    assert rotation.probe_signer(keyring, NEW, NOW + HOUR) == NEW.kid
    with pytest.raises(RotationError) as info:
        rotation.probe_signer(keyring, OLD, NOW + HOUR)
    assert info.value.code == "rotation_probe_failed"


def test_dry_run_diff_lists_every_change():
    before = _through(2)
    diff = rotation.keyring_diff(before, _run(before, 3, at=AFTER_WINDOW))
    assert diff[0] == "version: 4 -> 5" and "mode: dual-accept -> single-key" in diff
    assert f"key {OLD.kid}: active -> retired, retired_at 2026-03-09T12:00:00Z" in diff


# --- service layer on real files -------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    service.keygen(settings, now=NOW, owner="Test Co")
    return settings


def _rotate(settings, phase, at=HOUR, **options):
    request = make_request(phase, actor="test", **options)
    return service.rotate_signing_key(settings, request, NOW + at, confirm=lambda plan: True)


def _files(settings):
    return settings.layout.keyring.read_bytes(), (settings.data_dir / service.SIGNING_VALUES_FILE).read_text()


def test_service_rotation_writes_keyring_store_values_and_attestation(settings):
    store = KeyStore(settings.layout)
    (old,) = store.list()
    prepared = _rotate(settings, 0)
    new = prepared.new_kid
    assert store.get(new).status is KeyStatus.PENDING
    assert (settings.layout.private_key_path(new).stat().st_mode & 0o777) == 0o600
    attestation = json.loads(prepared.attestation.read_text())
    assert (attestation["attestation"]["signer_kid"], attestation["attestation"]["subject_kid"]) == (
        old.kid,
        new,
    )
    assert "PRIVATE" not in prepared.attestation.read_text()
    _rotate(settings, 1)
    assert store.get(new).status is KeyStatus.ACTIVE
    switched = _rotate(settings, 2)
    assert switched.verified_signer == new and service.default_signer(settings).kid == new
    values = yaml.safe_load(_files(settings)[1])["verifier"]["signing"]
    assert values["mode"] == "dual-accept" and values["default_key"] == f"/keys/{new}.pem"
    assert values["dual_accept_until"] == load_keyring(settings.layout.keyring).dual_accept_until
    _rotate(settings, 3, at=AFTER_WINDOW)
    assert store.get(old.kid).status is KeyStatus.RETIRED
    assert yaml.safe_load(_files(settings)[1])["verifier"]["signing"]["mode"] == "single-key"


def test_service_dry_run_and_noop_change_nothing(settings):
    before = settings.layout.keyring.read_bytes()
    preview = service.rotate_signing_key(settings, make_request(0), NOW, dry_run=True)
    assert (
        preview.dry_run
        and not preview.noop
        and "+ key <new key, generated when applied> (pending)" in preview.diff
    )
    assert settings.layout.keyring.read_bytes() == before and len(KeyStore(settings.layout).list()) == 1
    assert not (settings.data_dir / service.SIGNING_VALUES_FILE).exists()
    _rotate(settings, 0)
    snapshot = _files(settings)
    assert _rotate(settings, 0).noop and _files(settings) == snapshot


def test_service_needs_confirmation_for_phases_2_and_3(settings):
    _rotate(settings, 0), _rotate(settings, 1)
    request = make_request(2)
    with pytest.raises(RotationError) as info:
        service.rotate_signing_key(settings, request, NOW + HOUR, confirm=lambda plan: False)
    assert info.value.code == "rotation_rejected"
    assert service.rotate_signing_key(settings, make_request(2, force=True), NOW + HOUR).verified_signer


def _sign_entries(settings, signer_kid, at, count=2):
    signer = KeyStore(settings.layout).signer(signer_kid)
    with Registry(settings.layout.registry_db) as registry:
        for i in range(count):
            registry.register(
                b'{"p":%d}' % i,
                b'{"m":%d}' % i,
                subject="LEI",
                policy_hash="0x00",
                ir_hash="x",
                company_root="0x01",
                supplier_root="0x02",
                ubo_root="0x03",
                result="OK",
                accepted=True,
                signer=signer,
                now=at,
            )


def test_census_of_recent_old_key_entries_blocks_decommission(settings):
    old = KeyStore(settings.layout).list()[0].kid
    _rotate(settings, 0), _rotate(settings, 1), _rotate(settings, 2)
    _sign_entries(settings, old, NOW + AFTER_WINDOW - timedelta(hours=2))  # a replica still signing with old
    with pytest.raises(RotationError) as info:
        _rotate(settings, 3, at=AFTER_WINDOW)
    assert info.value.code == "census_not_empty" and info.value.details["found"] == 2
    assert _rotate(settings, 3, at=AFTER_WINDOW, census_window="1h").census == 0  # outside a shorter window


def test_census_passes_when_old_entries_are_older_than_the_window(settings):
    old = KeyStore(settings.layout).list()[0].kid
    _sign_entries(settings, old, NOW)
    _rotate(settings, 0), _rotate(settings, 1), _rotate(settings, 2)
    assert _rotate(settings, 3, at=AFTER_WINDOW).census == 0


def test_failing_step_is_compensated_in_reverse(settings):
    _rotate(settings, 0), _rotate(settings, 1)
    before_keyring = load_keyring(settings.layout.keyring)
    before_values = _files(settings)[1]
    new = before_keyring.history[-1].kid
    settings.layout.private_key_path(new).unlink()  # the signer check after the write will fail
    with pytest.raises(KeyError_) as info:
        _rotate(settings, 2)
    assert info.value.code == "private_key_missing"
    now = load_keyring(settings.layout.keyring)
    assert now.version == before_keyring.version + 2 and now.history[-1].action == "revert"
    assert now.model_dump(exclude={"version", "history"}) == before_keyring.model_dump(
        exclude={"version", "history"}
    )
    assert _files(settings)[1].splitlines()[1:] == before_values.splitlines()[1:]


def test_failing_prepare_revokes_the_generated_key(settings, monkeypatch):
    def broken(*args, **kwargs):
        raise StorageError("disk full", transient=False)

    monkeypatch.setattr(service, "write_signing_values", broken)
    with pytest.raises(StorageError):
        _rotate(settings, 0)
    keys = {k.status for k in KeyStore(settings.layout).list()}
    assert keys == {KeyStatus.ACTIVE, KeyStatus.REVOKED}
    keyring = load_keyring(settings.layout.keyring)
    assert len(keyring.keys) == 1 and keyring.version == 3  # prepare (v2), then revert (v3)
    monkeypatch.undo()
    assert _rotate(settings, 0).version_after == 4  # a fresh phase 0 is possible again


def test_concurrent_keyring_change_is_a_conflict(settings):
    keyring = load_keyring(settings.layout.keyring)
    plan = service.plan_rotation(keyring, make_request(0), NOW)
    service.revoke_signing_key(settings, _stray_key(settings), NOW)  # someone else bumped the version
    with pytest.raises(CapError) as info:
        service.write_rotation_keyring(settings, plan)
    assert info.value.code == "keyring_changed"


def _stray_key(settings):
    meta = KeyStore(settings.layout).generate("Test Co", NOW, status=KeyStatus.PENDING)
    keyring = load_keyring(settings.layout.keyring)
    entry = entry_from_metadata(meta)
    bumped = keyring.model_copy(update={"version": keyring.version + 1, "keys": (*keyring.keys, entry)})
    service.save_local_keyring(settings, bumped, NOW)  # another writer, signed like every writer
    return meta.kid


def test_revoke_in_store_and_keyring(settings):
    (
        _rotate(settings, 0),
        _rotate(settings, 1),
        _rotate(settings, 2, force=True),
        _rotate(settings, 3, force=True),
    )
    keyring = load_keyring(settings.layout.keyring)
    old = keyring.history[-1].detail.split()[0].removeprefix("old=")
    revoked = service.revoke_signing_key(settings, old, NOW, reason="compromise drill")
    assert revoked.version == keyring.version + 1 and revoked.entry(old).status is KeyStatus.REVOKED
    assert KeyStore(settings.layout).get(old).status is KeyStatus.REVOKED
    with pytest.raises(RotationError) as info:
        service.revoke_signing_key(settings, revoked.default_signing_kid, NOW)
    assert info.value.code == "revoke_default_key"


def test_attestation_chain_across_two_rotations_and_tampering(settings, tmp_path):
    files = []
    for _ in range(2):
        files.append(_rotate(settings, 0).attestation)
        _rotate(settings, 1), _rotate(settings, 2, force=True), _rotate(settings, 3, force=True)
    checked = service.verify_attestation_files(settings, files, NOW + AFTER_WINDOW)
    keyring = load_keyring(settings.layout.keyring)
    assert checked.chain.ok and checked.chain.head_kid == keyring.default_signing_kid
    assert checked.head_acceptance.status is CheckStatus.OK
    reordered = service.verify_attestation_files(settings, files[::-1], NOW + AFTER_WINDOW)
    assert not reordered.chain.ok and reordered.chain.failed_index == 1

    data = json.loads(files[1].read_text())
    data["attestation"]["subject_public_key"] = THIRD.public_key_b64
    data["attestation"]["subject_kid"] = THIRD.kid
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data))
    broken = service.verify_attestation_files(settings, [files[0], tampered], NOW + AFTER_WINDOW)
    assert not broken.chain.ok and broken.chain.failed_index == 1 and "signature" in broken.chain.reason


def test_watcher_follows_every_rotation_and_refuses_a_keyring_rollback(settings):
    watcher = KeyringWatcher(settings.layout.keyring, cooldown_seconds=0)
    assert watcher.current(NOW).version == 1
    _rotate(settings, 0)
    old_bytes = settings.layout.keyring.read_bytes()
    _rotate(settings, 1)
    keyring = watcher.current(NOW + HOUR)
    new = keyring.history[-1].kid
    assert keyring.version == 3 and watcher.acceptance(new, EnforcementMode.STRICT, NOW + HOUR).status is OK
    settings.layout.keyring.write_bytes(old_bytes)  # a restored or replayed older keyring
    assert watcher.current(NOW + HOUR).version == 3 and watcher.last_error.code == "keyring_rollback"
    with pytest.raises(RotationError):
        load_keyring(settings.layout.keyring, min_version=3)


def test_rotation_metrics(settings):
    def sample(name, labels=None):
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    rotations = sample("cap_key_rotations_total")
    _rotate(settings, 0), _rotate(settings, 1)
    assert sample("cap_key_rotations_total") == rotations + 2
    _rotate(settings, 1)  # a no-op is not a rotation
    assert sample("cap_key_rotations_total") == rotations + 2
    created = sample("cap_signatures_created_total", {"kid": NEW.kid})
    verified = sample("cap_signatures_verified_total", {"kid": NEW.kid, "status": "fail"})
    World(signer=NEW).build()
    verify_proof(
        NEW_PROOF, keyring=_v1(), mode=EnforcementMode.STRICT, now=NOW, trust=TRUST
    )  # unknown kid: not counted
    verify_proof(
        NEW_PROOF, keyring=_through(0), mode=EnforcementMode.STRICT, now=NOW, trust=TRUST
    )  # pending: fail
    assert sample("cap_signatures_created_total", {"kid": NEW.kid}) == created + 1
    assert sample("cap_signatures_verified_total", {"kid": NEW.kid, "status": "fail"}) == verified + 1


def test_rotation_gauges_are_computed_from_the_keyring_at_scrape_time(settings):
    """Phase and window come from the keyring each scrape, not from whichever process rotated last."""
    _rotate(settings, 0), _rotate(settings, 1)
    keyring = load_keyring(settings.layout.keyring)
    text = generate_latest(scrape_registry(observe_status(settings.layout, keyring, NOW + HOUR + HOUR)))
    assert b"cap_key_rotation_phase 1.0" in text
    assert b"cap_dual_accept_time_remaining_seconds 601200.0" in text  # 167 h left
    later = generate_latest(scrape_registry(observe_status(settings.layout, _through(3), NOW)))
    assert b"cap_key_rotation_phase 3.0" in later and b"cap_dual_accept_time_remaining_seconds 0.0" in later
    assert REGISTRY.get_sample_value("cap_key_rotation_phase") is None  # no process keeps a value


# --- task wrappers (.fn, no Prefect server) -----------------------------------------------------------------


def test_storage_tasks_use_the_shared_retry_condition_and_steps_do_not_retry():
    from tasks import rotation as t
    from tasks.retry import retry_transient

    assert t.write_keyring.retry_condition_fn is retry_transient is t.load_keyring.retry_condition_fn
    assert t.apply.retries == 0 and t.verify_signer.retries == 0


def test_task_fns_call_the_service(settings):
    from tasks import rotation as t

    keyring = t.load_keyring.fn(settings).unquote()  # quoted: Prefect cannot walk a Keyring
    request = make_request(0, actor="test")
    prepared = t.prepare_key.fn(settings, keyring, request, NOW)
    plan = t.apply.fn(keyring, request, NOW, 0, prepared)
    assert plan.step.action is RotationAction.PREPARE and plan.step.new_kid == prepared.meta.kid
    written = t.write_keyring.fn(settings, plan).unquote()
    assert t.verify_signer.fn(settings, written, NOW) == keyring.default_signing_kid
    assert t.census.fn(settings, written, request, NOW) == 0
