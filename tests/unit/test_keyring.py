"""The keyring: structure, rollback protection, the acceptance matrix and the hot-reloading watcher."""

import json
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.canonical import canonical_bytes
from core.errors import IntegrityError, InvalidInputError, KeyError_, NotFoundError, RotationError
from core.keyring import (
    HistoryEvent,
    Keyring,
    KeyringMode,
    KeyringWatcher,
    bootstrap_keyring,
    entry_from_metadata,
    key_acceptance,
    load_keyring,
    save_keyring,
    validate_keyring,
)
from core.keys import KeyStatus, format_timestamp
from core.modes import CheckStatus, EnforcementMode
from tests.vectorgen import VECTORS_DIR, gen_keys

NOW = gen_keys.NOW
ROOT = gen_keys.metadata(gen_keys.SEED_ROOT)
NEXT = gen_keys.metadata(gen_keys.SEED_NEXT)


def _vector(name: str) -> dict:
    return json.loads((VECTORS_DIR / "keys" / name).read_text(encoding="utf-8"))


def _v1() -> Keyring:
    return bootstrap_keyring(ROOT, NOW, "ops")


def _bump(keyring: Keyring, **changes) -> Keyring:
    version = keyring.version + 1
    event = HistoryEvent(version=version, action="test", actor="ops", at=format_timestamp(NOW))
    return keyring.model_copy(update={"version": version, "history": (*keyring.history, event), **changes})


def _dual(keyring: Keyring) -> Keyring:
    return _bump(
        keyring,
        mode=KeyringMode.DUAL_ACCEPT,
        keys=(*keyring.keys, entry_from_metadata(NEXT)),
        dual_accept_until=format_timestamp(NOW + timedelta(days=7)),
    )


# --- structure and files ---------------------------------------------------------------------------------


def test_bootstrap_matches_vector():
    vec = _vector("keyring_v1_bootstrap.json")
    keyring = _v1().model_copy(
        update={"history": (_v1().history[0].model_copy(update={"actor": "ops@example.com"}),)}
    )
    assert canonical_bytes(keyring).decode() == vec["canonical"]
    assert keyring.version == 1 and keyring.default_entry.status is KeyStatus.ACTIVE


def test_bootstrap_promotes_pending_and_refuses_revoked():
    pending = ROOT.model_copy(update={"status": KeyStatus.PENDING})
    assert bootstrap_keyring(pending, NOW, "ops").default_entry.status is KeyStatus.ACTIVE
    with pytest.raises(RotationError):
        bootstrap_keyring(ROOT.model_copy(update={"status": KeyStatus.REVOKED}), NOW, "ops")


def test_round_trip(tmp_path):
    path = tmp_path / "keyring.json"
    keyring = _dual(_v1())
    save_keyring(path, keyring)
    assert load_keyring(path) == keyring
    assert path.read_text().startswith('{\n  "schema": "cap-keyring.v1",')


@pytest.mark.parametrize(
    ("version", "min_version", "refused"),
    [
        pytest.param(2, 3, True, id="lower_refused"),
        pytest.param(3, 3, False, id="equal_ok"),
        pytest.param(4, 3, False, id="higher_ok"),
        pytest.param(2, None, False, id="no_floor"),
    ],
)
def test_rollback_protection(tmp_path, version, min_version, refused):
    path = tmp_path / "keyring.json"
    save_keyring(path, _v1().model_copy(update={"version": version}))
    if refused:
        with pytest.raises(RotationError) as info:
            load_keyring(path, min_version=min_version)
        assert info.value.code == "keyring_rollback"
        assert info.value.details["file"] == str(path)
    else:
        assert load_keyring(path, min_version=min_version).version == version


def _with_dup(k: Keyring) -> Keyring:
    return k.model_copy(update={"keys": (*k.keys, k.keys[0])})


@pytest.mark.parametrize(
    ("broken", "error", "code"),
    [
        pytest.param(_with_dup, IntegrityError, "keyring_duplicate_kid", id="duplicate_kid"),
        pytest.param(
            lambda k: k.model_copy(
                update={
                    "keys": (k.keys[0].model_copy(update={"kid": NEXT.kid}),),
                    "default_signing_kid": NEXT.kid,
                }
            ),
            IntegrityError,
            "key_kid_mismatch",
            id="kid_not_derived",
        ),
        pytest.param(
            lambda k: k.model_copy(update={"default_signing_kid": NEXT.kid}),
            KeyError_,
            "keyring_default_missing",
            id="default_missing",
        ),
        pytest.param(
            lambda k: k.model_copy(
                update={"keys": (k.keys[0].model_copy(update={"status": KeyStatus.RETIRED}),)}
            ),
            KeyError_,
            "keyring_default_inactive",
            id="default_retired",
        ),
        pytest.param(
            lambda k: k.model_copy(update={"mode": KeyringMode.DUAL_ACCEPT}),
            InvalidInputError,
            "invalid_input",
            id="dual_without_until",
        ),
        pytest.param(
            lambda k: _bump(k).model_copy(update={"history": tuple(reversed(_bump(k).history))}),
            IntegrityError,
            "keyring_history_order",
            id="history_not_monotonic",
        ),
        pytest.param(
            lambda k: k.model_copy(update={"history": (k.history[0].model_copy(update={"version": 5}),)}),
            IntegrityError,
            "keyring_history_order",
            id="history_ahead_of_version",
        ),
    ],
)
def test_invalid_keyrings_are_refused_naming_the_file(tmp_path, broken, error, code):
    bad = broken(_v1())
    with pytest.raises(error) as info:
        validate_keyring(bad, source="keyring.json")
    assert info.value.code == code and info.value.details["file"] == "keyring.json"
    path = tmp_path / "keyring.json"
    path.write_bytes(canonical_bytes(bad))
    with pytest.raises(error):
        load_keyring(path)
    with pytest.raises(error):
        save_keyring(tmp_path / "other.json", bad)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param("{not json", None, id="not_json"),
        pytest.param('{"schema": "cap-keyring.v1"}', "version", id="missing_fields"),
        pytest.param('{"schema": "cap-keyring.v2", "version": 1}', "schema", id="wrong_schema"),
    ],
)
def test_malformed_keyring_files(tmp_path, text, field):
    path = tmp_path / "keyring.json"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        load_keyring(path)
    assert info.value.details["file"] == str(path)
    assert info.value.details.get("field") == field


def test_missing_keyring_file(tmp_path):
    with pytest.raises(NotFoundError) as info:
        load_keyring(tmp_path / "nope.json")
    assert info.value.code == "keyring_not_found"


# --- acceptance ------------------------------------------------------------------------------------------

S, R, A = EnforcementMode.STRICT, EnforcementMode.RELAXED, EnforcementMode.AUDIT
OK, WARN, FAIL = CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL
KEYRING = gen_keys.acceptance_keyring()
H = timedelta(hours=1)


def _kid(seed: bytes) -> str:
    return gen_keys.signer(seed).kid


MATRIX = [
    # (case, kid, at, strict, relaxed, audit)
    ("default_active", _kid(gen_keys.SEED_ROOT), NOW + H, OK, OK, OK),
    ("dual_accept_within_window", _kid(gen_keys.SEED_NEXT), NOW + H, OK, OK, OK),
    ("dual_accept_at_window_end", _kid(gen_keys.SEED_NEXT), NOW + timedelta(days=7), OK, OK, OK),
    ("dual_accept_after_window", _kid(gen_keys.SEED_NEXT), NOW + timedelta(days=8), FAIL, WARN, WARN),
    ("retired", _kid(gen_keys.SEED_RETIRED), NOW + H, FAIL, WARN, WARN),
    ("revoked", _kid(gen_keys.SEED_REVOKED), NOW + H, FAIL, FAIL, FAIL),
    ("pending", _kid(gen_keys.SEED_PENDING), NOW + H, FAIL, FAIL, FAIL),
    ("active_expired", _kid(gen_keys.SEED_EXPIRED), NOW + H, FAIL, FAIL, FAIL),
    ("active_not_yet_valid", _kid(gen_keys.SEED_THIRD), NOW + H, FAIL, FAIL, FAIL),
    ("default_after_valid_to", _kid(gen_keys.SEED_ROOT), NOW + timedelta(days=731), FAIL, FAIL, FAIL),
    ("unknown_kid", _kid(gen_keys.SEED_OUTSIDER), NOW + H, FAIL, FAIL, FAIL),
]


@pytest.mark.parametrize(
    ("kid", "at", "mode", "expected"),
    [
        pytest.param(kid, at, mode, expected, id=f"{case}-{mode.value}")
        for case, kid, at, *cells in MATRIX
        for mode, expected in zip((S, R, A), cells, strict=True)
    ],
)
def test_acceptance_matrix(kid, at, mode, expected):
    result = key_acceptance(KEYRING, kid, mode, at)
    assert result.status is expected, result.reason
    assert kid in result.reason


@pytest.mark.parametrize(
    ("mode", "expected"),
    [pytest.param(S, OK, id="strict"), pytest.param(R, OK, id="relaxed"), pytest.param(A, OK, id="audit")],
)
def test_single_key_mode_non_default_active_key_is_ok(mode, expected):
    keyring = _dual(_v1()).model_copy(update={"mode": KeyringMode.SINGLE_KEY, "dual_accept_until": None})
    assert key_acceptance(keyring, NEXT.kid, mode, NOW + timedelta(days=30)).status is expected


def test_acceptance_vector_matches_implementation():
    vec = _vector("acceptance_matrix.json")
    keyring = Keyring.model_validate(vec["keyring"])
    assert keyring == KEYRING
    for case in vec["cases"]:
        got = key_acceptance(
            keyring, case["kid"], EnforcementMode(case["mode"]), datetime.fromisoformat(case["now"])
        )
        assert got.status.value == case["expected"], case["id"]


# --- watcher ---------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _replace(path, keyring: Keyring) -> None:
    save_keyring(path, keyring)  # atomic rename: a new inode, so the stamp always changes


@pytest.fixture
def watched(tmp_path):
    path = tmp_path / "keyring.json"
    save_keyring(path, _v1())
    clock = FakeClock()
    return path, clock, KeyringWatcher(path, cooldown_seconds=30, clock=clock)


def test_watcher_reloads_on_change(watched):
    path, _, watcher = watched
    assert watcher.current(NOW).version == 1
    _replace(path, _dual(_v1()))
    assert watcher.current(NOW).version == 2
    assert watcher.loaded_at == NOW and watcher.last_error is None


def test_watcher_keeps_old_keyring_on_lower_version(watched):
    path, _, watcher = watched
    _replace(path, _dual(_v1()))
    assert watcher.current(NOW).version == 2
    _replace(path, _v1())
    assert watcher.current(NOW).version == 2
    assert isinstance(watcher.last_error, RotationError) and watcher.last_error.code == "keyring_rollback"


def test_watcher_refuses_same_version_with_different_content(watched):
    path, _, watcher = watched
    watcher.current(NOW)
    _replace(path, _v1())
    assert watcher.current(NOW) == _v1() and watcher.last_error is None  # identical content is fine
    changed = _v1().model_copy(update={"keys": (*_v1().keys, entry_from_metadata(NEXT))})
    _replace(path, changed)
    assert watcher.current(NOW) == _v1()
    assert watcher.last_error is not None and watcher.last_error.code == "keyring_version_reused"


def test_watcher_keeps_old_keyring_on_broken_file_and_recovers(watched):
    path, _, watcher = watched
    watcher.current(NOW)
    path.write_text("{broken")
    assert watcher.current(NOW).version == 1
    assert isinstance(watcher.last_error, InvalidInputError)
    _replace(path, _dual(_v1()))
    assert watcher.current(NOW).version == 2 and watcher.last_error is None


def test_watcher_without_any_good_keyring_raises(tmp_path):
    watcher = KeyringWatcher(tmp_path / "missing.json")
    with pytest.raises(NotFoundError):
        watcher.current(NOW)


def test_watcher_keeps_keyring_when_file_disappears(watched):
    path, _, watcher = watched
    watcher.current(NOW)
    os.unlink(path)
    assert watcher.current(NOW).version == 1
    assert isinstance(watcher.last_error, NotFoundError)


def test_refresh_honours_cool_down(watched):
    _, clock, watcher = watched
    watcher.current(NOW)
    assert watcher.refresh(NOW) is True
    clock.t += 29
    assert watcher.refresh(NOW) is False
    clock.t += 1
    assert watcher.refresh(NOW) is True


def test_unknown_kid_triggers_one_cooled_down_refresh(watched, monkeypatch):
    path, clock, watcher = watched
    watcher.current(NOW)
    dual = _dual(_v1())
    # simulate a change the stamp cannot see: same inode, size and mtime
    stat_before = os.stat(path)
    monkeypatch.setattr(
        "core.keyring._stamp", lambda p: (stat_before.st_mtime_ns, stat_before.st_size, stat_before.st_ino)
    )
    _replace(path, dual)
    assert watcher.acceptance(NEXT.kid, S, NOW).status is OK  # refreshed on the unknown kid
    assert watcher.acceptance(gen_keys.signer(gen_keys.SEED_OUTSIDER).kid, S, NOW).status is FAIL
    clock.t += 1
    assert watcher.refresh(NOW) is False  # still cooling down after the unknown-kid refresh


def test_watcher_is_thread_safe_and_never_goes_back(watched):
    path, _, watcher = watched
    errors: list[BaseException] = []
    seen: dict[int, list[int]] = {}

    def reader(n: int) -> None:
        try:
            seen[n] = [watcher.current(NOW).version for _ in range(200)]
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    keyring = _v1()
    for _ in range(20):
        keyring = _bump(keyring)
        _replace(path, keyring)
    for t in threads:
        t.join()
    assert not errors
    assert watcher.current(NOW).version == 21
    assert all(v == sorted(v) for v in seen.values())


def test_models_serialise_with_schema_alias():
    data = json.loads(canonical_bytes(_v1()))
    assert data["schema"] == "cap-keyring.v1" and "schema_" not in data
    assert datetime.fromisoformat(data["history"][0]["at"]) == NOW.replace(tzinfo=UTC)


class _FlakySource:
    """A keyring source (as the database store is) that becomes unreadable after the first load."""

    name = "db (keyring_versions)"

    def __init__(self, data: bytes) -> None:
        self.data, self.down = data, False

    def stamp(self):
        if self.down:
            from core.errors import StorageError

            raise StorageError("database unreachable", transient=True, code="storage_unavailable")
        return (1,)

    def read(self):
        return self.data, (1,)

    def floor(self):
        return None


def test_a_watcher_keeps_its_last_good_keyring_while_the_store_is_unreadable(tmp_path):
    from core.keyring import KeyringWatcher, keyring_file_bytes
    from tests.world import World

    keyring = World().keyring
    source = _FlakySource(keyring_file_bytes(keyring))
    watcher = KeyringWatcher(tmp_path / "unused", source=source)
    assert watcher.current(NOW) == keyring
    source.down = True
    assert watcher.current(NOW) == keyring
    assert watcher.last_error is not None and watcher.last_error.code == "storage_unavailable"
