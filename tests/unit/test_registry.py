"""core.registry: register/get/find/baseline/census on both engines (real SQLite files, a real PostgreSQL),
and the entry signature rule."""

import base64
import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import blake3
import pytest

from core import db
from core.digest import sha3_hex
from core.errors import InvalidInputError, NotFoundError, StorageError
from core.registry import (
    Registry,
    RegistryEntry,
    Verdict,
    check_entry,
    entry_core_bytes,
    next_entry_id,
    verify_entry,
)
from core.signing import Ed25519Signer, derive_kid, verify_signature
from core.store import open_registry
from tests.vectorgen.gen_stores import MANIFEST_BYTES, PROOF_BYTES, REGISTERED_AT

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "stores"
T0 = datetime(2025, 11, 27, 10, 0, 0, tzinfo=UTC)
SIGNER = Ed25519Signer.from_seed(bytes(range(32)))
OTHER = Ed25519Signer.from_seed(bytes(range(1, 33)))


def _register(
    registry, n=0, *, subject="acme", accepted=True, result="OK", signer=SIGNER, now=None, proof=None
):
    return registry.register(
        proof if proof is not None else json.dumps({"n": n, "subject": subject}).encode(),
        json.dumps({"manifest": n}).encode(),
        subject=subject,
        policy_hash="sha3-256:" + "11" * 32,
        ir_hash="sha3-256:" + "22" * 32,
        company_root="0x" + "33" * 32,
        supplier_root="0x" + "44" * 32,
        ubo_root="0x" + "55" * 32,
        result=result,
        accepted=accepted,
        signer=signer,
        now=now or T0 + timedelta(minutes=n),
    )


@pytest.fixture
def registry(tmp_path):
    """The SQLite registry (file-level tests and the signature rule)."""
    with Registry(tmp_path / "registry.sqlite") as reg:
        yield reg


@pytest.fixture
def any_registry(engine_settings):
    """The registry on each engine: store behaviour must not depend on it."""
    with open_registry(engine_settings) as reg:
        yield reg


def _lookup(*signers):
    keys = {s.kid: s.public_key_b64 for s in signers}
    return keys.get


# ---------------------------------------------------------------- store behaviour


def test_register_then_get_round_trips_every_field(any_registry):
    proof = b'{"schema":"cap-proof.v2","note":"Pr\xc3\xbcfung"}'
    entry = _register(any_registry, proof=proof)
    assert entry.id == "proof_001"
    assert entry.proof_hash == sha3_hex(proof)
    assert entry.manifest_hash == sha3_hex(b'{"manifest": 0}')
    assert entry.proof_json.encode("utf-8") == proof
    assert (entry.kid, entry.public_key, entry.signature_scheme) == (
        SIGNER.kid,
        SIGNER.public_key_b64,
        "ed25519",
    )
    assert entry.registered_at == "2025-11-27T10:00:00.000000Z"
    assert entry.timestamp_file is None
    assert entry.result is Verdict.OK and entry.accepted is True
    assert any_registry.get("proof_001") == entry


def test_get_unknown_id_raises_not_found(any_registry):
    with pytest.raises(NotFoundError) as info:
        any_registry.get("proof_999")
    assert info.value.code == "registry_entry_not_found"


def test_ids_count_up_and_survive_reopening(engine_settings):
    with open_registry(engine_settings) as reg:
        assert [_register(reg, i).id for i in range(2)] == ["proof_001", "proof_002"]
    with open_registry(engine_settings) as reg:
        assert _register(reg, 5).id == "proof_003"
        assert [e.id for e in reg.entries()] == ["proof_003", "proof_002", "proof_001"]


@pytest.mark.parametrize(
    ("count", "taken", "expected"),
    [
        pytest.param(0, set(), "proof_001", id="first"),
        pytest.param(41, set(), "proof_042", id="padded"),
        pytest.param(999, set(), "proof_1000", id="beyond_three_digits"),
        pytest.param(2, {"proof_003", "proof_004"}, "proof_005", id="skips_taken"),
    ],
)
def test_next_entry_id(count, taken, expected):
    assert next_entry_id(count, taken.__contains__) == expected


def test_find_returns_the_newest_entry_for_a_hash_pair(any_registry):
    first = _register(any_registry, 1, proof=b'{"same":true}')
    again = _register(any_registry, 1, proof=b'{"same":true}', now=T0 + timedelta(hours=1))
    _register(any_registry, 2)
    assert any_registry.find(first.manifest_hash, first.proof_hash) == again
    assert any_registry.find(first.manifest_hash, sha3_hex(b"nothing")) is None


@pytest.mark.parametrize(
    ("history", "subject", "expected"),
    [
        pytest.param([], "acme", None, id="empty"),
        pytest.param([("acme", True, 0), ("acme", True, 5)], "acme", "proof_002", id="newest_accepted"),
        pytest.param([("acme", True, 0), ("acme", False, 5)], "acme", "proof_001", id="skips_rejected"),
        pytest.param([("acme", True, 9), ("acme", True, 1)], "acme", "proof_001", id="by_time_not_id"),
        pytest.param(
            [("acme", True, 0), ("other", True, 5)], "acme", "proof_001", id="other_subject_ignored"
        ),
        pytest.param([("acme", True, 0), ("acme", True, 0)], "acme", "proof_002", id="same_time_by_id"),
        pytest.param([("other", True, 0)], "acme", None, id="no_entry_for_subject"),
    ],
)
def test_latest_accepted_is_the_drift_baseline(any_registry, history, subject, expected):
    for i, (who, accepted, minute) in enumerate(history):
        _register(any_registry, i, subject=who, accepted=accepted, now=T0 + timedelta(minutes=minute))
    found = any_registry.latest_accepted(subject)
    assert (found.id if found else None) == expected


def test_latest_accepted_orders_ids_numerically_past_999(any_registry):
    for i in range(11):
        _register(any_registry, i, now=T0)
    assert any_registry.latest_accepted("acme").id == "proof_011"


def test_entries_limit_and_since(any_registry):
    for i in range(5):
        _register(any_registry, i)
    assert [e.id for e in any_registry.entries(limit=2)] == ["proof_005", "proof_004"]
    assert [e.id for e in any_registry.entries(since=T0 + timedelta(minutes=3))] == ["proof_005", "proof_004"]
    assert len(any_registry.entries()) == 5


def test_count_signed_by_is_the_rotation_census(any_registry):
    for i in range(3):
        _register(any_registry, i, signer=SIGNER)
    for i in range(3, 5):
        _register(any_registry, i, signer=OTHER)
    assert any_registry.count_signed_by(SIGNER.kid) == 3
    assert any_registry.count_signed_by(OTHER.kid) == 2
    assert any_registry.count_signed_by(SIGNER.kid, since=T0 + timedelta(minutes=1)) == 2
    assert any_registry.count_signed_by("00" * 16) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"proof": b"\xff\xfe not utf-8"}, "proof", id="proof_not_utf8"),
        pytest.param({"result": "MAYBE"}, "result", id="unknown_result"),
    ],
)
def test_register_refuses_bad_input(any_registry, kwargs, field):
    with pytest.raises(InvalidInputError) as info:
        _register(any_registry, **kwargs)
    assert info.value.details["field"] == field
    assert any_registry.entries() == []


def test_schema_meta_indexes_and_migrations(registry):
    assert registry.meta() == {"registry_version": "1.0"}
    conn = sqlite3.connect(registry.path)
    indexes = {row[1]: row for row in conn.execute("PRAGMA index_list(registry_entries)")}
    columns = {name: [r[2] for r in conn.execute(f"PRAGMA index_info({name})")] for name in indexes}
    assert columns["idx_registry_hashes"] == ["manifest_hash", "proof_hash"]
    assert columns["idx_registry_subject"] == ["subject", "registered_at"]
    assert conn.execute("SELECT version, component FROM schema_migrations").fetchall() == [(1, "registry")]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_one_instance_is_safe_to_share_between_threads(any_registry):
    def work(offset):
        for i in range(10):
            _register(any_registry, offset + i)

    threads = [threading.Thread(target=work, args=(100 * t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [e.id for e in any_registry.entries()]
    assert len(ids) == len(set(ids)) == 40
    assert all(verify_entry(e) for e in any_registry.entries())


def test_two_processes_worth_of_instances_do_not_collide(tmp_path):
    path = tmp_path / "registry.sqlite"
    with Registry(path) as a, Registry(path) as b:
        ids = [_register(reg, i).id for i, reg in enumerate([a, b, a, b])]
    assert ids == ["proof_001", "proof_002", "proof_003", "proof_004"]


def test_registering_while_another_writer_holds_the_lock_is_transient(tmp_path):
    path = tmp_path / "registry.sqlite"
    Registry(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Registry(path, busy_timeout_ms=50) as reg, pytest.raises(StorageError) as info:
            _register(reg)
        assert info.value.transient is True
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_garbage_registry_file_is_a_clear_non_transient_error(tmp_path):
    path = tmp_path / "registry.sqlite"
    path.write_bytes(b"garbage bytes, not a database " * 100)
    with pytest.raises(StorageError) as info:
        Registry(path)
    assert info.value.transient is False
    assert "corrupt or not an SQLite database" in info.value.message


def test_a_policy_store_file_is_not_a_registry(tmp_path):
    from core.policy_store import PolicyStore

    path = tmp_path / "policies.sqlite"
    PolicyStore(path).close()
    with pytest.raises(StorageError) as info:
        Registry(path)
    assert info.value.code == "storage_wrong_schema"


# ---------------------------------------------------------------- the signature rule


@pytest.fixture
def entry(registry):
    return _register(registry)


def test_a_registered_entry_verifies(entry):
    assert verify_entry(entry)
    assert verify_entry(entry, _lookup(SIGNER))
    assert Registry.verify_entry(entry, _lookup(SIGNER, OTHER))
    assert check_entry(entry, _lookup(SIGNER)) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"id": "proof_002"}, id="id"),
        pytest.param({"manifest_hash": sha3_hex(b"x")}, id="manifest_hash"),
        pytest.param({"proof_hash": sha3_hex(b"x")}, id="proof_hash"),
        pytest.param({"timestamp_file": "build/timestamp.tsr"}, id="timestamp_file"),
        pytest.param({"registered_at": "2025-11-27T10:00:00.000001Z"}, id="registered_at"),
    ],
)
def test_changing_any_core_field_breaks_the_signature(entry, change):
    changed = entry.model_copy(update=change)
    assert not verify_entry(changed)
    assert "entry signature does not verify" in check_entry(changed)


def _flip_first_bit(b64):
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("change", "lookup", "problem"),
    [
        pytest.param(
            lambda e: {"signature": _flip_first_bit(e.signature)},
            None,
            "signature does not verify",
            id="signature_flipped",
        ),
        pytest.param(
            lambda e: {"signature": "not base64!"}, None, "signature does not verify", id="signature_junk"
        ),
        pytest.param(
            lambda e: {"public_key": OTHER.public_key_b64, "kid": OTHER.kid},
            None,
            "signature does not verify",
            id="sig_wrong_key",
        ),
        pytest.param(lambda e: {"kid": OTHER.kid}, None, "kid is not derived", id="kid_mismatch"),
        pytest.param(lambda e: {}, _lookup(OTHER), "is unknown", id="kid_unknown_to_lookup"),
        pytest.param(
            lambda e: {}, lambda kid: OTHER.public_key_b64, "does not match the key", id="lookup_other_key"
        ),
        pytest.param(
            lambda e: {"signature_scheme": "rsa"}, None, "unsupported signature scheme", id="scheme"
        ),
        pytest.param(
            lambda e: {"proof_json": e.proof_json + " "},
            None,
            "proof_hash does not match",
            id="proof_json_edited",
        ),
    ],
)
def test_check_entry_names_what_is_wrong(entry, change, lookup, problem):
    changed = entry.model_copy(update=change(entry))
    problems = check_entry(changed, lookup)
    assert any(problem in p for p in problems), problems
    assert not verify_entry(changed, lookup)


# ---------------------------------------------------------------- vectors


def _vector():
    return json.loads((VECTORS / "registry_entry_signature.json").read_text(encoding="utf-8"))


def _core_bytes(core):
    return entry_core_bytes(
        core["id"], core["manifest_hash"], core["proof_hash"], core["timestamp_file"], core["registered_at"]
    )


def test_vector_core_bytes_digest_and_signature_are_independent_of_the_implementation():
    vec = _vector()
    core = vec["expected"]["core"]
    by_hand = (
        f'{{"id":"proof_001","manifest_hash":"{sha3_hex(MANIFEST_BYTES)}","proof_hash":"{sha3_hex(PROOF_BYTES)}",'
        f'"timestamp_file":null,"registered_at":"{vec["input"]["registered_at"]}"}}'
    )
    assert core == by_hand
    digest = blake3.blake3(core.encode()).digest()
    assert digest.hex() == vec["expected"]["digest"]
    assert verify_signature(
        vec["input"]["public_key"], base64.b64decode(vec["expected"]["signature"]), digest
    )


def test_registering_the_vector_proof_reproduces_the_vector(tmp_path):
    vec = _vector()
    with Registry(tmp_path / "registry.sqlite") as reg:
        entry = reg.register(
            PROOF_BYTES,
            MANIFEST_BYTES,
            subject="acme-gmbh",
            policy_hash="p",
            ir_hash="i",
            company_root="c",
            supplier_root="s",
            ubo_root="u",
            result=Verdict.OK,
            accepted=True,
            signer=SIGNER,
            now=REGISTERED_AT,
        )
    expected = vec["expected"]
    core = expected["entry_core"]
    assert (entry.id, entry.manifest_hash, entry.proof_hash, entry.timestamp_file, entry.registered_at) == (
        core["id"],
        core["manifest_hash"],
        core["proof_hash"],
        core["timestamp_file"],
        core["registered_at"],
    )
    assert _core_bytes(core).decode() == expected["core"]
    assert entry.signature == expected["signature"]
    assert (entry.public_key, entry.kid) == (vec["input"]["public_key"], vec["input"]["kid"])


def test_vector_signature_via_entry_core_bytes():
    vec = _vector()
    expected = vec["expected"]
    digest = blake3.blake3(_core_bytes(expected["entry_core"])).digest()
    assert verify_signature(vec["input"]["public_key"], base64.b64decode(expected["signature"]), digest)
    ts = vec["with_timestamp_file"]
    assert _core_bytes(ts["entry_core"]).decode() == ts["core"]
    assert '"timestamp_file":"build/timestamp.tsr"' in ts["core"]


@pytest.mark.parametrize("name", [n["name"] for n in _vector()["negatives"]])
def test_vector_negatives_do_not_verify(name):
    vec = _vector()
    neg = next(n for n in vec["negatives"] if n["name"] == name)
    core = neg["entry_core"]
    public_key = neg.get("public_key", vec["input"]["public_key"])
    entry = RegistryEntry(
        **core,
        signature=neg["signature"],
        public_key=public_key,
        kid=derive_kid(public_key),
        subject="acme",
        policy_hash="p",
        ir_hash="i",
        company_root="c",
        supplier_root="s",
        ubo_root="u",
        result=Verdict.OK,
        accepted=True,
        proof_json=PROOF_BYTES.decode(),
    )
    assert "entry signature does not verify" in check_entry(entry)


def test_registry_timestamps_use_the_shared_format():
    assert db.timestamp_text(REGISTERED_AT) == _vector()["input"]["registered_at"]
