"""A keyring that breaks its invariants is refused with an error an operator can act on: what is wrong,
in which file, the offending value and the expected one. Each case kills a mutant of core/keyring.py
(``make mutation MODULE=core/keyring.py``).
"""

import pytest

from core.errors import CapError
from core.keyring import (
    KeyringMode,
    bootstrap_keyring,
    entry_from_metadata,
    save_keyring,
    validate_keyring,
)
from core.keys import KeyStatus
from tests.vectorgen import gen_keys

NOW = gen_keys.NOW
ROOT = gen_keys.metadata(gen_keys.SEED_ROOT)
NEXT = gen_keys.metadata(gen_keys.SEED_NEXT)


@pytest.fixture
def ring():
    return bootstrap_keyring(ROOT, NOW, "ops")


def _refusal(keyring, source="k.json"):
    with pytest.raises(CapError) as exc:
        validate_keyring(keyring, source=source)
    return exc.value


def test_a_default_key_not_in_the_keyring_is_named(ring):
    err = _refusal(ring.model_copy(update={"default_signing_kid": NEXT.kid}))
    assert err.message == "default signing key is not in the keyring"
    assert (err.code, err.details["file"], err.details["found"]) == (
        "keyring_default_missing",
        "k.json",
        NEXT.kid,
    )


def test_a_retired_default_key_names_its_status_and_the_one_expected(ring):
    retired = (entry_from_metadata(ROOT, status=KeyStatus.RETIRED),)
    err = _refusal(ring.model_copy(update={"keys": retired}))
    assert err.message == "default signing key is not active"
    assert (err.details["found"], err.details["expected"]) == ("retired", "active")


def test_a_key_listed_twice_names_it(ring):
    err = _refusal(ring.model_copy(update={"keys": ring.keys * 2}))
    assert (err.code, err.message, err.details["found"]) == (
        "keyring_duplicate_kid",
        "key id listed twice",
        ROOT.kid,
    )


def test_a_key_id_that_does_not_follow_from_its_key_is_named(ring):
    forged = ring.keys[0].model_copy(update={"public_key": NEXT.public_key})
    err = _refusal(ring.model_copy(update={"keys": (forged,)}))
    assert err.message == "key id does not match its public key"
    assert (err.details["found"], err.details["expected"]) == (ROOT.kid, NEXT.kid)


def test_saving_an_invalid_keyring_names_the_file_and_writes_nothing(ring, tmp_path):
    path = tmp_path / "keyring.json"
    with pytest.raises(CapError) as exc:
        save_keyring(path, ring.model_copy(update={"default_signing_kid": NEXT.kid}))
    assert exc.value.details["file"] == str(path)
    assert not path.exists()


@pytest.mark.parametrize("status", [KeyStatus.RETIRED, KeyStatus.REVOKED])
def test_a_retired_or_revoked_key_cannot_start_a_keyring_and_says_what_would(status):
    with pytest.raises(CapError) as exc:
        bootstrap_keyring(ROOT.model_copy(update={"status": status}), NOW, "ops")
    err = exc.value
    assert (err.code, err.message) == (
        "bootstrap_key_unusable",
        "a retired or revoked key cannot start a keyring",
    )
    assert (err.details["field"], err.details["found"]) == ("status", status.value)
    assert err.details["expected"] == "pending or active"


def test_a_dual_accept_keyring_without_an_end_names_the_missing_field(ring):
    err = _refusal(ring.model_copy(update={"mode": KeyringMode.DUAL_ACCEPT, "dual_accept_until": None}))
    assert err.message == "dual-accept keyring without an end"
    assert (err.details["file"], err.details["field"]) == ("k.json", "dual_accept_until")
    assert err.details["expected"] == "an RFC 3339 timestamp"


def test_without_a_source_the_error_names_the_keyring(ring):
    with pytest.raises(CapError) as exc:
        validate_keyring(ring.model_copy(update={"default_signing_kid": NEXT.kid}))
    assert exc.value.details["file"] == "keyring"
