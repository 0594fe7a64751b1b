"""Vectors for the stores: audit log v1, registry entry signatures, stored policy hashes.

Fixed inputs only: the registry signer comes from the seed ``bytes(range(32))`` (written nowhere;
the vectors carry the public key and signatures), clocks are fixed datetimes.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from core.audit import GENESIS, make_event
from core.digest import blake3_raw, sha3_hex
from core.policy_store import ir_hash_of, policy_hash_of
from core.registry import entry_core_bytes
from core.signing import Ed25519Signer

REGISTERED_AT = datetime(2025, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)
PROOF_BYTES = b'{"schema":"cap-proof.v2","subject":"acme-gmbh","result":"OK"}'
MANIFEST_BYTES = b'{"version":"manifest.v1.0","company_commitment_root":"0x00"}'

ORIGINAL_POLICY_JSON = (
    '{"id":"lksg.v1","version":"1.0","legal_basis":[{"directive":"LkSG"}],'
    '"description":"Minimal LkSG supplier check","inputs":{"sanctions_root":{"type":"hex"},'
    '"supplier_hashes":{"type":"array","items":"hex"}},"rules":[{"id":"no_sanctions",'
    '"op":"non_membership","lhs":"supplier_hashes","rhs":"sanctions_root"}]}'
)
ORIGINAL_POLICY_V1_JSON = (
    '{"version":"lksg.v1","name":"Test Policy","created_at":"2025-11-06T10:00:00Z",'
    '"constraints":{"require_at_least_one_ubo":true,"supplier_count_max":10},"notes":""}'
)


def vector_signer() -> Ed25519Signer:
    return Ed25519Signer.from_seed(bytes(range(32)))


def _audit_original() -> dict[str, Any]:
    details = {"schema": "taurin.project.v1", "name": "Audit-Test"}
    event = make_event(1, "2025-11-27T11:34:22.644173Z", "project_created", details, GENESIS)
    return {
        "description": "original §7 audit v1 entry; details given unsorted, written sorted",
        "input": {"seq": 1, "ts": event.ts, "event": event.event, "details": details, "prev_digest": GENESIS},
        "expected": {"digest": event.digest, "line": event.line().decode("utf-8")},
    }


def _audit_chain() -> dict[str, Any]:
    start = datetime(2025, 11, 27, 9, 0, 0, tzinfo=UTC)
    steps = [
        ("project_created", {"name": "Demo"}),
        ("policy_compiled", {"policy_id": "lksg.v1", "ir_hash": "sha3-256:" + "ab" * 32}),
        ("proof_registered", {"id": "proof_001", "accepted": True, "note": "Prüfung ok"}),
    ]
    prev, lines = GENESIS, []
    for seq, (name, details) in enumerate(steps, start=1):
        ts = (start + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = make_event(seq, ts, name, details, prev)
        lines.append(event.line().decode("utf-8"))
        prev = event.digest
    edited = lines[1].replace("lksg.v1", "lksg.v2")
    return {
        "description": "three appended events; tampering line 2 is reported at tamper_index 1",
        "events": [
            {"ts": json.loads(line)["ts"], "event": n, "details": d} for line, (n, d) in zip(lines, steps)
        ],
        "expected": {"lines": lines, "tail": {"digest": prev, "count": len(lines)}},
        "negatives": [
            {"name": "line_2_details_edited", "lines": [lines[0], edited, lines[2]], "tamper_index": 1},
            {"name": "line_1_deleted", "lines": lines[1:], "tamper_index": 0},
            {"name": "lines_swapped", "lines": [lines[0], lines[2], lines[1]], "tamper_index": 1},
        ],
    }


def _entry_core(**override: Any) -> dict[str, Any]:
    core: dict[str, Any] = {
        "id": "proof_001",
        "manifest_hash": sha3_hex(MANIFEST_BYTES),
        "proof_hash": sha3_hex(PROOF_BYTES),
        "timestamp_file": None,
        "registered_at": REGISTERED_AT.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    core.update(override)
    return core


def _sign_core(core: dict[str, Any]) -> dict[str, str]:
    core_bytes = entry_core_bytes(
        core["id"], core["manifest_hash"], core["proof_hash"], core["timestamp_file"], core["registered_at"]
    )
    digest = blake3_raw(core_bytes)
    signature = base64.b64encode(vector_signer().sign(digest)).decode("ascii")
    return {"core": core_bytes.decode("utf-8"), "digest": digest.hex(), "signature": signature}


def _flip(signature_b64: str) -> str:
    raw = bytearray(base64.b64decode(signature_b64))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


def _registry_signature() -> dict[str, Any]:
    signer = vector_signer()
    core = _entry_core()
    signed = _sign_core(core)
    changed = {
        "id_changed": {"id": "proof_002"},
        "manifest_hash_changed": {"manifest_hash": sha3_hex(b"other manifest")},
        "proof_hash_changed": {"proof_hash": sha3_hex(b"other proof")},
        "timestamp_file_set": {"timestamp_file": "build/timestamp.tsr"},
        "registered_at_changed": {"registered_at": "2025-11-27T12:00:00.123457Z"},
    }
    return {
        "description": "entry signature: Ed25519 over BLAKE3(compact core JSON), timestamp_file as null",
        "input": {
            "proof_bytes": PROOF_BYTES.decode("utf-8"),
            "manifest_bytes": MANIFEST_BYTES.decode("utf-8"),
            "registered_at": core["registered_at"],
            "public_key": signer.public_key_b64,
            "kid": signer.kid,
        },
        "expected": {"entry_core": core, **signed},
        "negatives": [
            *(
                {"name": name, "entry_core": _entry_core(**override), "signature": signed["signature"]}
                for name, override in changed.items()
            ),
            {"name": "signature_bit_flipped", "entry_core": core, "signature": _flip(signed["signature"])},
            {
                "name": "sig_wrong_key",
                "entry_core": core,
                "signature": signed["signature"],
                "public_key": Ed25519Signer.from_seed(bytes(32)).public_key_b64,
            },
        ],
        "with_timestamp_file": {
            "entry_core": _entry_core(timestamp_file="build/timestamp.tsr"),
            **_sign_core(_entry_core(timestamp_file="build/timestamp.tsr")),
        },
    }


def _policy_stored() -> dict[str, Any]:
    policy_hash = policy_hash_of(ORIGINAL_POLICY_JSON, "sha3-256:")
    ir: dict[str, Any] = {
        "ir_version": "1.0",
        "policy_id": "lksg.v1",
        "policy_hash": policy_hash,
        "rules": [
            {
                "id": "no_sanctions",
                "op": "non_membership",
                "lhs": {"var": "supplier_hashes"},
                "rhs": {"var": "sanctions_root"},
            }
        ],
        "ir_hash": "",
    }
    ir["ir_hash"] = ir_hash_of(ir)
    return {
        "description": "original §7 policy/IR hashes re-checked by verify_stored; v1 policy uses the 0x form",
        "v2": {
            "policy_json": ORIGINAL_POLICY_JSON,
            "ir_json": json.dumps(ir, indent=2, ensure_ascii=False),
            "expected": {"policy_hash": policy_hash, "ir_hash": ir["ir_hash"]},
        },
        "v1": {
            "policy_json": ORIGINAL_POLICY_V1_JSON,
            "expected": {"policy_hash": policy_hash_of(ORIGINAL_POLICY_V1_JSON, "0x")},
        },
    }


def vectors() -> dict[str, object]:
    return {
        "stores/audit_v1_original.json": _audit_original(),
        "stores/audit_v1_chain.json": _audit_chain(),
        "stores/registry_entry_signature.json": _registry_signature(),
        "stores/policy_stored_original.json": _policy_stored(),
    }
