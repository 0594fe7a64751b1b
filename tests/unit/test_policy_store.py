"""core.policy_store: dedup by hash, id conflicts, status (on both engines), and re-checking stored hashes."""

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.digest import sha3_hex
from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.policy_store import (
    PolicyStatus,
    PolicyStore,
    StoredPolicy,
    ir_hash_of,
    policy_hash_of,
    verify_stored,
)
from core.store import open_policy_store

VECTOR = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "stores" / "policy_stored_original.json").read_text(
        "utf-8"
    )
)
T0 = datetime(2025, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
V2 = VECTOR["v2"]
V1 = VECTOR["v1"]


@pytest.fixture
def store(engine_settings):
    """The policy store on each engine: behaviour must not depend on it."""
    with open_policy_store(engine_settings) as s:
        yield s


def _save_v2(store, now=T0, **override):
    args = {
        "policy_id": "lksg.v1",
        "name": "lksg.v1",
        "version": "1.0",
        "policy_hash": V2["expected"]["policy_hash"],
        "policy_json": V2["policy_json"],
        "ir_json": V2["ir_json"],
        "ir_hash": V2["expected"]["ir_hash"],
        "description": "Minimal LkSG supplier check",
        "now": now,
    }
    args.update(override)
    return store.save(**args)


def _save_v1(store, now=T0):
    return store.save(
        "Test Policy",
        "Test Policy",
        "lksg.v1",
        V1["expected"]["policy_hash"],
        V1["policy_json"],
        None,
        None,
        "",
        now,
    )


def test_save_then_get_and_get_by_hash(store):
    saved = _save_v2(store)
    assert saved.status is PolicyStatus.ACTIVE
    assert saved.created_at == saved.updated_at == "2025-11-27T10:00:00.123Z"
    assert store.get("lksg.v1") == saved
    assert store.get_by_hash(V2["expected"]["policy_hash"]) == saved


def test_saving_the_same_content_only_bumps_updated_at(store):
    first = _save_v2(store)
    again = _save_v2(store, now=T0 + timedelta(hours=1))
    assert again.created_at == first.created_at
    assert again.updated_at == "2025-11-27T11:00:00.123Z"
    assert store.get("lksg.v1") == again
    assert len(store.list()) == 1


def test_same_hash_under_another_id_returns_the_stored_policy(store):
    _save_v2(store)
    again = _save_v2(store, policy_id="renamed", now=T0 + timedelta(seconds=1))
    assert again.id == "lksg.v1"
    with pytest.raises(NotFoundError):
        store.get("renamed")


def test_same_id_with_a_different_hash_is_a_conflict(store):
    _save_v2(store)
    with pytest.raises(ConflictError) as info:
        _save_v2(store, policy_hash="sha3-256:" + "00" * 32, policy_json="{}")
    assert info.value.code == "policy_conflict"
    assert info.value.details["stored_hash"] == V2["expected"]["policy_hash"]
    assert store.get("lksg.v1").policy_json == V2["policy_json"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda s: s.get("nope"), "policy_id", id="get"),
        pytest.param(lambda s: s.get_by_hash("0x" + "00" * 32), "policy_hash", id="get_by_hash"),
        pytest.param(lambda s: s.set_status("nope", PolicyStatus.DRAFT, T0), "policy_id", id="set_status"),
    ],
)
def test_missing_policies_raise_policy_not_found(store, call, field):
    with pytest.raises(NotFoundError) as info:
        call(store)
    assert info.value.code == "policy_not_found"
    assert info.value.details["field"] == field


def test_status_changes_and_list_filters(store):
    _save_v2(store)
    _save_v1(store, now=T0 + timedelta(minutes=1))
    changed = store.set_status("lksg.v1", PolicyStatus.DEPRECATED, T0 + timedelta(hours=2))
    assert changed.status is PolicyStatus.DEPRECATED
    assert changed.updated_at == "2025-11-27T12:00:00.123Z"
    assert [p.id for p in store.list()] == ["Test Policy", "lksg.v1"]
    assert [p.id for p in store.list(PolicyStatus.ACTIVE)] == ["Test Policy"]
    assert [p.id for p in store.list("deprecated")] == ["lksg.v1"]
    assert store.list(PolicyStatus.DRAFT) == []


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.set_status("lksg.v1", "retired", T0), id="set_status"),
        pytest.param(lambda s: s.list("retired"), id="list"),
        pytest.param(
            lambda s: _save_v2(s, status="retired", policy_id="x", policy_hash="0x" + "1" * 64), id="save"
        ),
    ],
)
def test_unknown_status_is_invalid_input(store, call):
    _save_v2(store)
    with pytest.raises(InvalidInputError) as info:
        call(store)
    assert info.value.details["field"] == "status"


def test_policies_survive_reopening_and_schema_is_recorded(tmp_path):
    path = tmp_path / "policies.sqlite"
    with PolicyStore(path) as s:
        saved = _save_v2(s)
    with PolicyStore(path) as s:
        assert s.get("lksg.v1") == saved
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version, component FROM schema_migrations").fetchall() == [
        (1, "policy_store")
    ]
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(policies)")}
    assert {"idx_policies_hash", "idx_policies_status", "idx_policies_created"} <= indexes
    conn.close()


# ---------------------------------------------------------------- verify_stored


def test_original_vector_hashes():
    assert policy_hash_of(V2["policy_json"], "sha3-256:") == V2["expected"]["policy_hash"]
    assert (
        V2["expected"]["policy_hash"]
        == "sha3-256:b98c3db55f874476dc749ea32b70bdf5369a0d7bc5364f236e034f1ddcd94638"
    )
    assert ir_hash_of(json.loads(V2["ir_json"])) == V2["expected"]["ir_hash"]
    assert (
        V2["expected"]["ir_hash"]
        == "sha3-256:df3a3eeb7c72f6204131397e4b0a4b16235f1e20cc66102153ad6d4ee78f892c"
    )
    assert len(V2["ir_json"].encode()) == 435
    assert (
        V1["expected"]["policy_hash"] == "0x0afcb402e74ff6a11601863fc4ae2f2d756124db71bc703f5889ecefcd371ff4"
    )
    assert V1["expected"]["policy_hash"] == sha3_hex(V1["policy_json"].encode())


def test_stored_original_policies_verify(store):
    assert verify_stored(_save_v2(store)) == []
    assert verify_stored(_save_v1(store)) == []


def _tamper_ir(ir_json, **change):
    ir = json.loads(ir_json)
    ir.update(change)
    return json.dumps(ir, indent=2)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(
            {"policy_json": V2["policy_json"].replace("LkSG", "LKSG")},
            "policy_json does not hash",
            id="policy_json_tampered",
        ),
        pytest.param({"hash": "md5:abc"}, "unknown form", id="unknown_hash_form"),
        pytest.param(
            {"ir_json": _tamper_ir(V2["ir_json"], policy_id="other")},
            "ir_json does not hash",
            id="ir_json_tampered",
        ),
        pytest.param({"ir_json": "{not json"}, "ir_json is not JSON", id="ir_json_not_json"),
        pytest.param({"ir_json": "[]"}, "not a JSON object", id="ir_json_not_object"),
        pytest.param(
            {"ir_hash": "sha3-256:" + "00" * 32}, "ir_json does not hash", id="ir_hash_column_changed"
        ),
        pytest.param({"ir_hash": None}, "stored together", id="ir_hash_missing"),
    ],
)
def test_verify_stored_detects_tampering(store, change, problem):
    tampered = _save_v2(store).model_copy(update=change)
    problems = verify_stored(tampered)
    assert any(problem in p for p in problems), problems


def test_verify_stored_detects_an_ir_compiled_from_another_policy():
    other_hash = "sha3-256:" + "ab" * 32
    ir = json.loads(V2["ir_json"])
    ir["policy_hash"] = other_hash
    ir["ir_hash"] = ""
    ir["ir_hash"] = ir_hash_of(ir)
    policy = StoredPolicy(
        id="lksg.v1",
        name="lksg.v1",
        version="1.0",
        hash=V2["expected"]["policy_hash"],
        status=PolicyStatus.ACTIVE,
        created_at="t",
        updated_at="t",
        description="",
        policy_json=V2["policy_json"],
        ir_json=json.dumps(ir),
        ir_hash=ir["ir_hash"],
    )
    assert verify_stored(policy) == ["policy lksg.v1: the IR was compiled from a different policy hash"]


def test_tampering_with_the_database_file_is_found_by_verify_stored(tmp_path):
    path = tmp_path / "policies.sqlite"
    with PolicyStore(path) as s:
        _save_v2(s)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE policies SET policy_json = replace(policy_json, 'no_sanctions', 'no_sanction')")
    conn.commit()
    conn.close()
    with PolicyStore(path) as s:
        assert verify_stored(s.get("lksg.v1")) != []
