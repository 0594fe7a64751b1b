"""Key acceptance at the edges of its windows, and the keyring's structural refusals (core/keyring.py).

Each case kills a mutant of core/keyring.py (``make mutation MODULE=core/keyring.py``).
"""

from datetime import timedelta

import pytest

from core.canonical import canonical_bytes
from core.errors import IntegrityError, InvalidInputError, KeyError_, RotationError
from core.keyring import (
    HistoryEvent,
    KeyringMode,
    bootstrap_keyring,
    entry_from_metadata,
    key_acceptance,
    parse_keyring,
    validate_keyring,
)
from core.keys import KeyStatus, format_timestamp, parse_timestamp
from core.modes import CheckStatus, EnforcementMode
from tests.vectorgen import gen_keys

NOW = gen_keys.NOW
ROOT = gen_keys.metadata(gen_keys.SEED_ROOT)
NEXT = gen_keys.metadata(gen_keys.SEED_NEXT)
S, R, A = EnforcementMode.STRICT, EnforcementMode.RELAXED, EnforcementMode.AUDIT
OK, WARN, FAIL = CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL
SEC = timedelta(seconds=1)


def _kid(seed):
    return gen_keys.signer(seed).kid


KEYRING = gen_keys.acceptance_keyring()
UNTIL = NOW + timedelta(days=7)


@pytest.mark.parametrize(
    ("seed", "at", "mode", "status", "reason"),
    [
        pytest.param(gen_keys.SEED_ROOT, NOW, S, OK, "is the active signing key", id="default_at_valid_from"),
        pytest.param(
            gen_keys.SEED_ROOT, NOW - SEC, S, FAIL, "is not valid before", id="default_before_valid_from"
        ),
        pytest.param(gen_keys.SEED_NEXT, UNTIL, S, OK, "accepted during dual-accept until", id="dual_at_end"),
        pytest.param(
            gen_keys.SEED_NEXT, UNTIL + SEC, S, FAIL, "not accepted in strict mode", id="dual_after_strict"
        ),
        pytest.param(
            gen_keys.SEED_NEXT,
            UNTIL + SEC,
            R,
            WARN,
            "accepted with a warning in relaxed mode",
            id="dual_after_relaxed",
        ),
        pytest.param(
            gen_keys.SEED_RETIRED,
            NOW,
            A,
            WARN,
            "is retired; accepted with a warning in audit mode",
            id="retired",
        ),
        pytest.param(gen_keys.SEED_REVOKED, NOW, A, FAIL, "is revoked", id="revoked"),
        pytest.param(gen_keys.SEED_PENDING, NOW, A, FAIL, "is pending and not yet accepted", id="pending"),
        pytest.param(gen_keys.SEED_OUTSIDER, NOW, A, FAIL, "is not in keyring v2", id="unknown"),
    ],
)
def test_acceptance_edges_and_reasons(seed, at, mode, status, reason):
    result = key_acceptance(KEYRING, _kid(seed), mode, at)
    assert result.status is status
    assert reason in result.reason


def test_active_key_is_accepted_up_to_and_including_valid_to():
    entry = KEYRING.entry(_kid(gen_keys.SEED_ROOT))
    end = parse_timestamp(entry.valid_to)
    assert key_acceptance(KEYRING, entry.kid, S, end).status is OK
    late = key_acceptance(KEYRING, entry.kid, S, end + SEC)
    assert late.status is FAIL and late.reason == f"key {entry.kid} expired at {entry.valid_to}"


def test_retired_key_is_judged_before_its_expiry():
    """A retired key past its validity is still 'retired' (warn outside strict), not 'expired'."""
    retired = KEYRING.entry(_kid(gen_keys.SEED_RETIRED))

    late = parse_timestamp(retired.valid_to) + SEC
    assert key_acceptance(KEYRING, retired.kid, R, late).status is WARN


def _v1():
    return bootstrap_keyring(ROOT, NOW, "ops")


def _bump(keyring, **changes):
    version = keyring.version + 1
    event = HistoryEvent(version=version, action="test", actor="ops", at=format_timestamp(NOW))
    return keyring.model_copy(update={"version": version, "history": (*keyring.history, event), **changes})


def test_bootstrap_makes_a_pending_key_the_active_default():
    keyring = bootstrap_keyring(ROOT.model_copy(update={"status": KeyStatus.PENDING}), NOW, "ops")
    assert keyring.version == 1 and keyring.default_signing_kid == ROOT.kid
    assert keyring.default_entry.status is KeyStatus.ACTIVE
    (event,) = keyring.history
    assert (event.version, event.action, event.actor, event.kid) == (1, "bootstrap", "ops", ROOT.kid)


@pytest.mark.parametrize("status", [KeyStatus.RETIRED, KeyStatus.REVOKED])
def test_bootstrap_refuses_unusable_keys(status):
    with pytest.raises(RotationError) as caught:
        bootstrap_keyring(ROOT.model_copy(update={"status": status}), NOW, "ops")
    assert caught.value.code == "bootstrap_key_unusable"
    assert caught.value.details["found"] == status.value


def test_default_entry_missing_raises():
    keyring = _v1().model_copy(update={"default_signing_kid": NEXT.kid})
    with pytest.raises(KeyError_) as caught:
        _ = keyring.default_entry
    assert caught.value.code == "keyring_default_missing"


@pytest.mark.parametrize(
    ("make", "error", "code", "field"),
    [
        pytest.param(
            lambda: _v1().model_copy(update={"keys": _v1().keys * 2}),
            IntegrityError,
            "keyring_duplicate_kid",
            None,
            id="duplicate",
        ),
        pytest.param(
            lambda: _v1().model_copy(
                update={"keys": (_v1().keys[0].model_copy(update={"public_key": NEXT.public_key}),)}
            ),
            IntegrityError,
            "key_kid_mismatch",
            "keys.kid",
            id="kid_mismatch",
        ),
        pytest.param(
            lambda: _v1().model_copy(update={"default_signing_kid": NEXT.kid}),
            KeyError_,
            "keyring_default_missing",
            "default_signing_kid",
            id="default_missing",
        ),
        pytest.param(
            lambda: _v1().model_copy(
                update={"keys": (_v1().keys[0].model_copy(update={"status": KeyStatus.RETIRED}),)}
            ),
            KeyError_,
            "keyring_default_inactive",
            "default_signing_kid",
            id="default_retired",
        ),
        pytest.param(
            lambda: _bump(_v1(), mode=KeyringMode.DUAL_ACCEPT, keys=(*_v1().keys, entry_from_metadata(NEXT))),
            InvalidInputError,
            "invalid_input",
            "dual_accept_until",
            id="dual_without_end",
        ),
        pytest.param(
            lambda: _v1().model_copy(
                update={"version": 1, "history": (*_v1().history, _bump(_v1()).history[-1])}
            ),
            IntegrityError,
            "keyring_history_order",
            "history.version",
            id="history_ahead_of_version",
        ),
        pytest.param(
            lambda: _bump(_bump(_v1())).model_copy(
                update={"history": tuple(reversed(_bump(_bump(_v1())).history))}
            ),
            IntegrityError,
            "keyring_history_order",
            "history.version",
            id="history_backwards",
        ),
    ],
)
def test_invalid_keyrings_name_code_source_and_field(make, error, code, field):
    with pytest.raises(error) as caught:
        validate_keyring(make(), source="ring.json")
    assert caught.value.code == code
    assert caught.value.details["file"] == "ring.json"
    assert caught.value.details.get("field") == field


def test_equal_history_versions_and_the_current_version_are_fine():
    keyring = _bump(_v1())
    same = keyring.history[-1].model_copy(update={"action": "again"})
    validate_keyring(keyring.model_copy(update={"history": (*keyring.history, same)}))


def test_rollback_bound_is_inclusive():
    keyring = _bump(_bump(_v1()))
    data = canonical_bytes(keyring)
    assert parse_keyring(data, source="k", min_version=3).version == 3
    with pytest.raises(RotationError) as caught:
        parse_keyring(data, source="k", min_version=4)
    assert caught.value.code == "keyring_rollback"
    assert caught.value.details["expected"] == ">= 4"
