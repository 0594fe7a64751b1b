"""The keyring watcher's reload decisions (core/keyring.py, KeyringWatcher): when it re-reads, which floor a
replacement must clear, and what its errors name.

Each case kills a mutant of core/keyring.py (``make mutation MODULE=core/keyring.py``): the behaviour is read
through the watcher's public surface (``current``, ``acceptance``, ``refresh``, ``last_error``,
``loaded_at``) only.
"""

from datetime import timedelta

import pytest

from core.errors import CapError, IntegrityError, InvalidInputError, NotFoundError, RotationError
from core.fsio import atomic_write
from core.keyring import (
    KEYRING_SCHEMA,
    HistoryEvent,
    Keyring,
    KeyringMode,
    KeyringWatcher,
    bootstrap_keyring,
    entry_from_metadata,
    floor_path,
    keyring_file_bytes,
    load_keyring,
    parse_keyring,
    read_floor,
    save_keyring,
)
from core.keys import KeyStatus, format_timestamp
from core.modes import CheckStatus, EnforcementMode
from tests.vectorgen import gen_keys

NOW = gen_keys.NOW
LATER = NOW + timedelta(hours=1)
ROOT = gen_keys.metadata(gen_keys.SEED_ROOT)
NEXT = gen_keys.metadata(gen_keys.SEED_NEXT)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _v1() -> Keyring:
    return bootstrap_keyring(ROOT, NOW, "ops")


def _bump(keyring: Keyring, **changes) -> Keyring:
    version = keyring.version + 1
    event = HistoryEvent(version=version, action="test", actor="ops", at=format_timestamp(NOW))
    return keyring.model_copy(update={"version": version, "history": (*keyring.history, event), **changes})


def _dual(keyring: Keyring, days: int = 7) -> Keyring:
    return _bump(
        keyring,
        mode=KeyringMode.DUAL_ACCEPT,
        keys=(*keyring.keys, entry_from_metadata(NEXT)),
        dual_accept_until=format_timestamp(NOW + timedelta(days=days)),
    )


def _place(path, keyring: Keyring) -> None:
    """Put ``keyring`` in the file without touching the floor (an operator copying a file in)."""
    atomic_write(path, keyring_file_bytes(keyring))


@pytest.fixture
def watched(tmp_path):
    path = tmp_path / "keyring.json"
    save_keyring(path, _v1())
    return path, KeyringWatcher(path, cooldown_seconds=30, clock=Clock())


def test_a_fresh_watcher_reports_no_error_and_no_load_time(watched):
    path, watcher = watched
    assert watcher.last_error is None and watcher.loaded_at is None and watcher.path == path


def test_an_unchanged_file_is_not_reloaded(watched):
    _, watcher = watched
    watcher.current(NOW)
    watcher.current(LATER)
    assert watcher.loaded_at == NOW


def test_an_unchanged_file_is_not_reloaded_when_a_generation_file_exists(tmp_path):
    path = tmp_path / "keyring.json"
    save_keyring(path, _v1())
    (tmp_path / "generation.json").write_text("{}")
    watcher = KeyringWatcher(path, generation_path=tmp_path / "generation.json")
    assert watcher.current(NOW).version == 1 and watcher.loaded_at == NOW
    watcher.current(LATER)
    assert watcher.loaded_at == NOW


def test_within_one_generation_the_held_version_is_the_floor_even_without_a_floor_file(tmp_path):
    path = tmp_path / "keyring.json"
    save_keyring(path, _dual(_v1()))
    (tmp_path / "generation.json").write_text("{}")
    watcher = KeyringWatcher(path, generation_path=tmp_path / "generation.json")
    assert watcher.current(NOW).version == 2
    floor_path(path).unlink()
    _place(path, _v1())
    assert watcher.current(NOW).version == 2
    assert isinstance(watcher.last_error, RotationError) and watcher.last_error.code == "keyring_rollback"


def test_a_newer_keyring_is_followed_when_the_floor_file_is_gone(watched):
    path, watcher = watched
    watcher.current(NOW)
    floor_path(path).unlink()
    _place(path, _dual(_v1()))
    assert watcher.current(LATER).version == 2 and watcher.last_error is None
    assert read_floor(floor_path(path)) is None  # the watcher only reads the floor


def test_a_persisted_floor_above_the_held_version_is_honoured(watched):
    path, watcher = watched
    assert watcher.current(NOW).version == 1
    v2 = _dual(_v1())
    v3 = _bump(v2)
    save_keyring(path, v3)  # floor 3
    _place(path, v2)  # then an older copy is put back before the watcher looked
    assert watcher.current(NOW).version == 1
    assert isinstance(watcher.last_error, RotationError) and watcher.last_error.code == "keyring_rollback"


def test_a_broken_replacement_is_refused_naming_the_file(watched):
    path, watcher = watched
    watcher.current(NOW)
    path.write_text("{broken")
    watcher.current(NOW)
    error = watcher.last_error
    assert isinstance(error, InvalidInputError) and error.details["file"] == str(path)


def test_a_reused_version_is_refused_with_a_message_naming_the_file(watched):
    path, watcher = watched
    watcher.current(NOW)
    _place(path, _v1().model_copy(update={"keys": (*_v1().keys, entry_from_metadata(NEXT))}))
    watcher.current(NOW)
    error = watcher.last_error
    assert isinstance(error, RotationError) and error.code == "keyring_version_reused"
    assert error.message == "keyring changed without a new version"
    assert error.details == {"file": str(path), "found": 1, "expected": "> 1"}


def test_acceptance_loads_at_the_given_time_and_a_known_kid_does_not_use_up_the_refresh(watched):
    _, watcher = watched
    assert watcher.acceptance(ROOT.kid, EnforcementMode.STRICT, NOW).status is CheckStatus.OK
    assert watcher.loaded_at == NOW
    assert watcher.refresh(LATER) is True  # the known kid did not trigger (and cool down) a refresh
    assert watcher.loaded_at == LATER


def test_an_unknown_kid_refresh_reloads_at_the_given_time(watched):
    _, watcher = watched
    watcher.current(NOW)
    outsider = gen_keys.signer(gen_keys.SEED_OUTSIDER).kid
    assert watcher.acceptance(outsider, EnforcementMode.STRICT, LATER).status is CheckStatus.FAIL
    assert watcher.loaded_at == LATER
    assert watcher.refresh(LATER) is False  # that refresh started the cool-down


def test_acceptance_through_the_watcher_honours_the_mode(tmp_path):
    path = tmp_path / "keyring.json"
    save_keyring(path, _dual(_v1(), days=1))
    watcher = KeyringWatcher(path)
    after = NOW + timedelta(days=2)
    assert watcher.acceptance(NEXT.kid, EnforcementMode.RELAXED, after).status is CheckStatus.WARN
    assert watcher.acceptance(NEXT.kid, EnforcementMode.STRICT, after).status is CheckStatus.FAIL


def test_a_new_generation_reload_happens_at_the_given_time(tmp_path):
    path = tmp_path / "keyring.json"
    save_keyring(path, _v1())
    generation = tmp_path / "generation.json"
    watcher = KeyringWatcher(path, generation_path=generation)
    watcher.current(NOW)
    generation.write_text('{"n": 2}')
    watcher.current(LATER)
    assert watcher.loaded_at == LATER and watcher.last_error is None


def test_in_single_key_mode_a_leftover_dual_accept_date_does_not_retire_a_second_active_key(tmp_path):
    path = tmp_path / "keyring.json"
    second = entry_from_metadata(NEXT, status=KeyStatus.ACTIVE)
    save_keyring(
        path,
        _bump(_v1(), keys=(*_v1().keys, second), dual_accept_until=format_timestamp(NOW + timedelta(days=1))),
    )
    watcher = KeyringWatcher(path)
    verdict = watcher.acceptance(NEXT.kid, EnforcementMode.STRICT, NOW + timedelta(days=2))
    assert verdict.status is CheckStatus.OK and verdict.reason == f"key {NEXT.kid} is active"


# --- what the keyring and floor files' errors say ---------------------------------------------------------


def test_a_missing_keyring_file_is_named(tmp_path):
    path = tmp_path / "keyring.json"
    with pytest.raises(NotFoundError) as caught:
        load_keyring(path)
    assert caught.value.code == "keyring_not_found" and caught.value.message == "keyring file not found"
    assert caught.value.details["file"] == str(path)


def test_a_keyring_that_is_not_json_names_the_file_the_format_and_the_schema(tmp_path):
    path = tmp_path / "keyring.json"
    path.write_text("{not json")
    with pytest.raises(InvalidInputError) as caught:
        load_keyring(path)
    error = caught.value
    assert error.message.startswith("keyring is not JSON")
    assert error.details["file"] == str(path) and error.details["expected"] == KEYRING_SCHEMA


def test_a_structurally_wrong_keyring_names_the_source_it_was_given():
    broken = _v1().model_copy(update={"default_signing_kid": NEXT.kid})  # default not among the keys
    with pytest.raises(CapError) as caught:
        parse_keyring(keyring_file_bytes(broken), source="/data/keyring.json")
    assert caught.value.details["file"] == "/data/keyring.json"


def test_history_beyond_the_keyring_version_names_the_order_problem():
    event = HistoryEvent(version=3, action="test", actor="ops", at=format_timestamp(NOW))
    broken = _bump(_v1()).model_copy(update={"history": (*_v1().history, event)})
    with pytest.raises(IntegrityError) as caught:
        parse_keyring(keyring_file_bytes(broken), source="k.json")
    error = caught.value
    assert (error.code, error.message) == ("keyring_history_order", "history versions are not monotonic")
    assert error.details["found"] == 3 and error.details["expected"] == "between 1 and 2"


def test_a_rollback_names_the_file_the_version_found_and_the_floor():
    with pytest.raises(RotationError) as caught:
        parse_keyring(keyring_file_bytes(_v1()), source="k.json", min_version=2)
    error = caught.value
    assert error.message == "keyring version is older than the one already trusted"
    assert error.details == {"file": "k.json", "found": 1, "expected": ">= 2"}


def test_saving_an_older_keyring_never_lowers_the_floor(tmp_path):
    path = tmp_path / "keyring.json"
    save_keyring(path, _bump(_dual(_v1())))
    assert read_floor(floor_path(path)) == 3
    save_keyring(path, _v1())  # an operator writing an older keyring on purpose
    assert read_floor(floor_path(path)) == 3


def test_a_malformed_floor_file_is_named_with_its_schema(tmp_path):
    path = tmp_path / "keyring.floor.json"
    path.write_text('{"schema": "cap-keyring-floor.v1", "version": 0}')
    with pytest.raises(InvalidInputError) as caught:
        read_floor(path)
    error = caught.value
    assert error.message.startswith("invalid keyring floor")
    assert error.details["file"] == str(path) and error.details["expected"] == "cap-keyring-floor.v1"
    assert error.details["field"] == "version"
