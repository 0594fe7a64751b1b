"""Routes through TestClient: health, readiness, metrics, policy compile/read, verify (both modes), admin."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.keyring import entry_from_metadata, load_keyring, save_keyring
from core.keys import KeyStatus, KeyStore
from core.proof import proof_file_bytes
from core.sanctions import SanctionsEntry
from core.screening import save_lists
from deployments.api.app import create_app
from deployments.api.flows import PrefectFlows
from tests.api.conftest import api_config, bearer
from tests.world import World

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COMPAT_POLICY = """id: compat.test
version: "1.0"
legal_basis: [{directive: LkSG, article: "§3"}]
description: compatibility-mode test policy
inputs:
  supplier_hashes: {type: array, items: hex}
  ubo_hashes: {type: array, items: hex}
  blocked_hashes: {type: array, items: hex}
  sanctions_root: {type: hex}
rules:
  - {id: not_blocked, op: non_membership, lhs: supplier_hashes, rhs: blocked_hashes}
  - {id: has_ubo, op: range_min, lhs: ubo_hashes, rhs: 1}
  - {id: few_suppliers, op: range_max, lhs: supplier_hashes, rhs: 3, severity: medium}
"""
COMPAT_SCREENED = COMPAT_POLICY.replace("rhs: blocked_hashes", "rhs: sanctions_root")


def auth(issuer, scope="admin:full"):
    return bearer(issuer.token(scope))


def compile_ir(client, issuer, text=COMPAT_POLICY, **extra):
    r = client.post("/policy/compile", json={"policy_yaml": text, **extra}, headers=auth(issuer))
    assert r.status_code == 200, r.text
    return r.json()


# --- health, readiness, metrics --------------------------------------------------------------------------


def test_healthz_is_public(client):
    body = client.get("/healthz").json()
    assert body["status"] == "OK" and body["version"]


def test_readyz_ok_then_503_naming_the_registry_when_its_file_is_removed(client, settings):
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    settings.layout.registry_db.unlink()
    r = client.get("/readyz")
    assert r.status_code == 503
    failing = [c["name"] for c in r.json()["checks"] if c["status"] == "fail"]
    assert failing == ["registry"]


def test_readyz_503_when_keyring_missing(settings, issuer, flows):
    settings.layout.keyring.unlink()
    client = TestClient(create_app(settings, api_config(issuer.jwks_path), flows=flows))
    r = client.get("/readyz")
    assert r.status_code == 503
    assert [c["name"] for c in r.json()["checks"] if c["status"] == "fail"] == ["keyring"]


def test_metrics_need_metrics_read_and_show_route_templates(client, issuer):
    client.get("/policy/nope", headers=auth(issuer))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth(issuer, "verify:run")).status_code == 403
    text = client.get("/metrics", headers=auth(issuer, "metrics:read")).text
    assert 'cap_api_requests_total{endpoint="/policy/{policy_id}",status_code="404"}' in text
    assert "cap_api_latency_seconds_bucket" in text
    assert 'cap_api_auth_failures_total{reason="missing_token"}' in text


def test_metrics_public_when_configured(settings, issuer, flows):
    client = TestClient(create_app(settings, api_config(issuer.jwks_path, metrics_public=True), flows=flows))
    assert client.get("/metrics").status_code == 200


# --- policy ------------------------------------------------------------------------------------------------


def test_compile_v2_returns_hashes_ir_and_etag_without_storing(client, issuer):
    text = (EXAMPLES / "lksg_v2.policy.yml").read_text()
    body = compile_ir(client, issuer, text)
    assert body["policy_id"] == "lksg.demo.v2" and body["stored"] is False
    assert body["policy_hash"].startswith("sha3-256:") and body["ir"]["ir_hash"] == body["ir_hash"]
    assert body["etag"] == f'"ir:{body["ir_hash"]}"'
    assert client.get("/policy/lksg.demo.v2", headers=auth(issuer)).status_code == 404


def test_compile_accepts_a_policy_object(client, issuer):
    import yaml

    obj = yaml.safe_load((EXAMPLES / "policy.lksg.v1.yml").read_text())
    r = client.post("/policy/compile", json={"policy": obj}, headers=auth(issuer))
    assert r.status_code == 200, r.text
    assert r.json()["policy_hash"].startswith("0x")


def test_compile_lint_errors_are_422_with_the_lints(client, issuer):
    text = COMPAT_POLICY.replace('legal_basis: [{directive: LkSG, article: "§3"}]\n', "")
    r = client.post("/policy/compile", json={"policy_yaml": text}, headers=auth(issuer))
    assert r.status_code == 422
    assert r.json()["error"] == "policy_lint_failed"
    assert "E1002" in [d["code"] for d in r.json()["details"]["diagnostics"]]
    relaxed = client.post(
        "/policy/compile", json={"policy_yaml": text, "lint_mode": "relaxed"}, headers=auth(issuer)
    )
    assert relaxed.status_code == 200
    assert "E1002" in [d["code"] for d in relaxed.json()["lints"]]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"policy_yaml": "id: [unclosed"}, id="bad_yaml"),
        pytest.param({}, id="neither"),
        pytest.param({"policy_yaml": "a: 1", "policy": {"a": 1}}, id="both"),
    ],
)
def test_compile_malformed_is_400_json(client, issuer, body):
    r = client.post("/policy/compile", json=body, headers=auth(issuer))
    assert r.status_code == 400
    assert set(r.json()) == {"error", "message", "details"}


def test_persist_then_get_with_etag_and_304(client, issuer):
    body = compile_ir(client, issuer, persist=True)
    assert body["stored"] is True
    r = client.get("/policy/compat.test", headers=auth(issuer, "policy:read"))
    assert r.status_code == 200 and r.headers["etag"] == body["etag"]
    assert r.json()["ir"]["ir_hash"] == body["ir_hash"]
    again = client.get("/policy/compat.test", headers={**auth(issuer), "If-None-Match": body["etag"]})
    assert again.status_code == 304 and again.content == b""
    stale = client.get("/policy/compat.test", headers={**auth(issuer), "If-None-Match": '"ir:other"'})
    assert stale.status_code == 200


def test_persist_needs_policy_write(client, issuer):
    r = client.post(
        "/policy/compile",
        json={"policy_yaml": COMPAT_POLICY, "persist": True},
        headers=auth(issuer, "policy:compile"),
    )
    assert r.status_code == 403


def test_persisting_a_different_policy_under_the_same_id_is_409(client, issuer):
    compile_ir(client, issuer, persist=True)
    changed = COMPAT_POLICY.replace("rhs: 3", "rhs: 4")
    r = client.post("/policy/compile", json={"policy_yaml": changed, "persist": True}, headers=auth(issuer))
    assert r.status_code == 409
    assert r.json()["error"] == "policy_conflict"


# --- verify: proofs -----------------------------------------------------------------------------------------


def test_verify_a_valid_proof_is_ok(client, issuer, proof_doc):
    r = client.post("/verify", json={"proof": proof_doc}, headers=auth(issuer, "verify:run"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] in ("OK", "WARN")  # WARN: not in this registry
    assert {c["id"] for c in body["checks"]} >= {"proof_signature", "manifest_signature", "ir_hash"}
    assert body["trace"] == {
        "mode": "proof",
        "policy_id": body["policy_id"],
        "enforce_mode": "strict",
        "drift_detect": False,
    }


@pytest.mark.parametrize(
    ("path", "value", "failing"),
    [
        pytest.param(("public", "supplier_count"), 99, "proof_signature", id="count_edited"),
        pytest.param(("signature", "sig"), "A" * 88, "proof_signature", id="signature_replaced"),
        pytest.param(
            ("manifest", "company_commitment_root"), "0x" + "00" * 32, "company_root", id="root_edited"
        ),
        pytest.param(("ir_hash",), "sha3-256:" + "00" * 32, "ir_hash", id="ir_hash_edited"),
    ],
)
def test_tampered_proof_is_200_fail_naming_the_check(client, issuer, proof_doc, path, value, failing):
    doc = copy.deepcopy(proof_doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    r = client.post("/verify", json={"proof": doc}, headers=auth(issuer, "verify:run"))
    assert r.status_code == 200
    assert r.json()["result"] == "FAIL"
    assert failing in [c["id"] for c in r.json()["checks"] if c["status"] == "fail"]


def _second_key_keyring(settings, *, signer_status):
    """Keyring v+1: a new default key, the proof's signer set to ``signer_status``."""
    from tests.world import NOW

    other = KeyStore(settings.layout).generate("Other", NOW)
    keyring = load_keyring(settings.layout.keyring)
    keys = tuple(k.model_copy(update={"status": signer_status}) for k in keyring.keys)
    return keyring.model_copy(
        update={
            "version": keyring.version + 1,
            "default_signing_kid": other.kid,
            "keys": (*keys, entry_from_metadata(other)),
        }
    )


def test_keyring_is_hot_reloaded_and_rollback_refused(client, settings, issuer, proof_doc):
    def verify():
        return client.post("/verify", json={"proof": proof_doc}, headers=auth(issuer)).json()

    assert verify()["result"] != "FAIL"
    original = load_keyring(settings.layout.keyring)
    save_keyring(settings.layout.keyring, _second_key_keyring(settings, signer_status=KeyStatus.RETIRED))
    body = verify()
    assert body["result"] == "FAIL"  # retired signer fails in strict mode
    assert "key_status" in [c["id"] for c in body["checks"] if c["status"] == "fail"]
    save_keyring(settings.layout.keyring, original)  # an older version: refused, v2 stays in force
    assert verify()["result"] == "FAIL"
    assert client.get("/admin/keys", headers=auth(issuer)).json()["version"] == original.version + 1


def test_verify_uses_the_servers_installed_lists(client, settings, issuer, proof_doc):
    def list_root():
        body = client.post("/verify", json={"proof": proof_doc}, headers=auth(issuer, "verify:run")).json()
        return body["result"], next(c for c in body["checks"] if c["id"] == "list_root")

    result, check = list_root()
    assert result != "FAIL" and check["status"] == "ok" and "installed" in check["message"]
    installed = settings.layout.lists_dir / "lists.json"
    installed.unlink()  # hot: the next request sees no trusted lists and fails closed
    result, check = list_root()
    assert result == "FAIL" and check["status"] == "fail" and "no trusted lists" in check["message"]
    fake = World(listed=(SanctionsEntry(source="fake", entry_id="1", primary_name="Harmless Person"),))
    save_lists(installed, fake.lists_file)  # other lists installed: the proof's root is not among them
    result, check = list_root()
    assert result == "FAIL" and proof_doc["manifest"]["sanctions_root"] in check["message"]
    assert fake.lists.root_hex in check["message"]


def test_stale_lists_fail_closed_over_the_api(client, issuer, world):
    stale = World(signer=world.signer, lists_built_at=datetime.now(UTC) - timedelta(days=15)).build().proof
    doc = json.loads(proof_file_bytes(stale))
    body = client.post("/verify", json={"proof": doc}, headers=auth(issuer, "verify:run")).json()
    assert body["result"] == "FAIL"
    assert (
        "older than the maximum 14 days"
        in next(c for c in body["checks"] if c["id"] == "list_root")["message"]
    )


def test_unusable_installed_lists_are_503(settings, issuer, flows, proof_doc):
    (settings.layout.lists_dir / "lists.json").write_text("{not json")
    client = TestClient(create_app(settings, api_config(issuer.jwks_path), flows=flows))
    r = client.post("/verify", json={"proof": proof_doc}, headers=auth(issuer))
    assert r.status_code == 503 and r.json()["error"] == "lists_unavailable"


def test_unusable_keyring_is_503_not_a_client_error(settings, issuer, flows, proof_doc):
    settings.layout.keyring.write_text("{not json")
    client = TestClient(create_app(settings, api_config(issuer.jwks_path), flows=flows))
    r = client.post("/verify", json={"proof": proof_doc}, headers=auth(issuer))
    assert r.status_code == 503
    assert r.json()["error"] == "keyring_unavailable"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"proof": {"schema": "cap-proof.v1"}}, 400, id="wrong_schema"),
        pytest.param({"proof": {"schema": "cap-proof.v2", "created_at": 1}}, 400, id="proof_fields_bad"),
        pytest.param({"proof": [1, 2]}, 422, id="proof_not_object"),
        pytest.param({"unknown": 1}, 422, id="unknown_field"),
        pytest.param({}, 400, id="nothing"),
        pytest.param({"policy_id": "x", "ir": {}}, 400, id="policy_id_and_ir"),
    ],
)
def test_malformed_verify_requests_are_4xx_json(client, issuer, body, status):
    r = client.post("/verify", json=body, headers=auth(issuer, "verify:run"))
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "message", "details"}


def test_verify_not_json_is_422(client, issuer):
    r = client.post(
        "/verify", content=b"{not json", headers={**auth(issuer), "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("path", "limits"),
    [
        pytest.param("/policy/compile", {"max_body_bytes": 1000}, id="general_limit"),
        pytest.param("/verify", {"max_verify_body_bytes": 1000}, id="verify_limit"),
    ],
)
def test_body_over_the_limit_is_413(settings, issuer, flows, path, limits):
    client = TestClient(create_app(settings, api_config(issuer.jwks_path, **limits), flows=flows))
    r = client.post(
        path,
        content=b"{" + b" " * 2000 + b"}",
        headers={**auth(issuer), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"] == "body_too_large"


def test_a_proof_over_the_general_limit_still_verifies(client, issuer):
    """2,000 suppliers make a 1.4 MB proof: over the 1 MiB general limit, inside /verify's own 32 MiB."""
    csv = "name,jurisdiction,tier\n" + "".join(f"Lieferant {i:05d} GmbH,DE,1\n" for i in range(2000))
    big = World(suppliers_csv=csv, lists_built_at=datetime.now(UTC)).build().proof
    body = b'{"proof":' + proof_file_bytes(big).rstrip() + b"}"
    assert len(body) > 1024 * 1024
    headers = {**auth(issuer), "Content-Type": "application/json"}
    r = client.post("/verify", content=body, headers=headers)
    assert r.status_code == 200, r.text[:300]
    assert {c["id"] for c in r.json()["checks"] if c["status"] == "fail"} <= {"rule:supplier_count_max"}
    assert client.post("/policy/compile", content=body, headers=headers).status_code == 413


@pytest.mark.parametrize("options", [{"enforce_mode": "audit"}, {"drift_detect": True}])
def test_verify_options_need_verify_admin(client, issuer, proof_doc, options):
    r = client.post(
        "/verify", json={"proof": proof_doc, "options": options}, headers=auth(issuer, "verify:run")
    )
    assert r.status_code == 403


def test_enforce_mode_with_verify_admin_is_used(client, issuer, proof_doc):
    r = client.post(
        "/verify",
        json={"proof": proof_doc, "options": {"enforce_mode": "audit"}},
        headers=auth(issuer, "verify:run verify:admin"),
    )
    assert r.status_code == 200
    assert r.json()["trace"]["enforce_mode"] == "audit"


# --- verify: compatibility mode ---------------------------------------------------------------------------

GOOD_CONTEXT = {"supplier_hashes": ["0x01", "0x02"], "ubo_hashes": ["0x0a"], "blocked_hashes": ["0xff"]}


def test_compat_by_policy_id_ok(client, issuer):
    compile_ir(client, issuer, persist=True)
    r = client.post(
        "/verify", json={"policy_id": "compat.test", "context": GOOD_CONTEXT}, headers=auth(issuer)
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "OK" and r.json()["trace"]["mode"] == "policy_id"


@pytest.mark.parametrize(
    ("change", "failing", "result"),
    [
        pytest.param(
            {"supplier_hashes": ["0x01", "0xff"]}, "rule:not_blocked", "FAIL", id="blocked_supplier"
        ),
        pytest.param({"ubo_hashes": []}, "rule:has_ubo", "FAIL", id="no_ubo"),
        pytest.param({"blocked_hashes": None}, "rule:not_blocked", "FAIL", id="missing_input_fails_closed"),
        pytest.param(
            {"supplier_hashes": ["0x1", "0x2", "0x3", "0x4"]},
            "rule:few_suppliers",
            "FAIL",
            id="medium_fails_in_strict",
        ),
    ],
)
def test_compat_inline_ir_failures(client, issuer, change, failing, result):
    ir = compile_ir(client, issuer)["ir"]
    context = {**GOOD_CONTEXT, **change}
    r = client.post("/verify", json={"ir": ir, "context": context}, headers=auth(issuer))
    assert r.status_code == 200
    body = r.json()
    assert body["result"] == result and body["trace"]["mode"] == "embedded_ir"
    assert failing in [c["id"] for c in body["checks"] if c["status"] == "fail"]


def test_compat_relaxed_mode_warns_on_medium(client, issuer):
    ir = compile_ir(client, issuer)["ir"]
    context = {**GOOD_CONTEXT, "supplier_hashes": ["0x1", "0x2", "0x3", "0x4"]}
    r = client.post(
        "/verify",
        json={"ir": ir, "context": context, "options": {"enforce_mode": "relaxed"}},
        headers=auth(issuer),
    )
    assert r.json()["result"] == "WARN"


def test_compat_sanctions_root_without_evidence_fails_closed(client, issuer):
    ir = compile_ir(client, issuer, COMPAT_SCREENED)["ir"]
    context = {**GOOD_CONTEXT, "sanctions_root": "0x" + "ab" * 32}
    body = client.post("/verify", json={"ir": ir, "context": context}, headers=auth(issuer)).json()
    assert body["result"] == "FAIL"
    assert "rule:not_blocked" in [c["id"] for c in body["checks"] if c["status"] == "fail"]


def test_compat_tampered_ir_is_400(client, issuer):
    ir = compile_ir(client, issuer)["ir"]
    ir["rules"][0]["rhs"] = {"var": "other"}
    r = client.post("/verify", json={"ir": ir, "context": GOOD_CONTEXT}, headers=auth(issuer))
    assert r.status_code == 400
    assert r.json()["error"] == "integrity_mismatch"


def test_compat_unknown_policy_id_is_404(client, issuer):
    r = client.post("/verify", json={"policy_id": "nope", "context": {}}, headers=auth(issuer))
    assert r.status_code == 404


# --- admin --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "scope", "deployment"),
    [
        pytest.param("/admin/backups", None, "backup:create", "backup/backup-daily", id="backup"),
        pytest.param(
            "/admin/restores",
            {"backup_id": "b-1", "verify_only": True},
            "backup:restore",
            "restore/restore",
            id="restore",
        ),
        pytest.param(
            "/admin/keys/rotate",
            {"phase": 0, "force": True},
            "keys:rotate",
            "rotate-signing-key/rotate-signing-key",
            id="rotate",
        ),
    ],
)
def test_admin_triggers_return_202_with_run_id(client, issuer, flows, path, body, scope, deployment):
    assert client.post(path, json=body, headers=auth(issuer, "verify:run")).status_code == 403
    r = client.post(path, json=body, headers=auth(issuer, scope))
    assert r.status_code == 202, r.text
    assert uuid.UUID(r.json()["flow_run_id"]) and r.json()["deployment"] == deployment
    assert flows.triggered[-1][0] == deployment


def test_admin_trigger_503_when_prefect_down(client, issuer, flows):
    flows.down = True
    r = client.post("/admin/backups", headers=auth(issuer))
    assert r.status_code == 503
    assert r.json()["error"] == "prefect_unavailable"


def test_real_gateway_503_when_prefect_unreachable_or_unset(settings, issuer):
    for url in ("http://127.0.0.1:9/api", None):
        flows = PrefectFlows(url, timeout=3)
        client = TestClient(create_app(settings, api_config(issuer.jwks_path), flows=flows))
        r = client.post("/admin/backups", headers=auth(issuer))
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "prefect_unavailable"


def test_run_status(client, issuer):
    run_id = str(uuid.uuid4())
    assert client.get(f"/admin/runs/{run_id}", headers=auth(issuer, "verify:run")).status_code == 403
    r = client.get(f"/admin/runs/{run_id}", headers=auth(issuer, "backup:read"))
    assert r.status_code == 200 and r.json()["state_type"] == "COMPLETED"
    assert client.get("/admin/runs/not-a-uuid", headers=auth(issuer)).status_code == 422


def test_keys_list_and_revoke(client, settings, issuer, world):
    view = client.get("/admin/keys", headers=auth(issuer, "keys:read")).json()
    default = view["default_signing_kid"]
    r = client.post(f"/admin/keys/{default}/revoke", headers=auth(issuer, "keys:revoke"))
    assert r.status_code == 409 and r.json()["error"] == "key_is_default_signer"
    assert client.post(f"/admin/keys/{'f' * 32}/revoke", headers=auth(issuer)).status_code == 404
    assert client.post("/admin/keys/ffff/revoke", headers=auth(issuer)).status_code == 422  # not a kid
    from tests.world import NOW

    other = KeyStore(settings.layout).generate("Other", NOW)
    keyring = load_keyring(settings.layout.keyring)
    save_keyring(
        settings.layout.keyring,
        keyring.model_copy(
            update={"version": keyring.version + 1, "keys": (*keyring.keys, entry_from_metadata(other))}
        ),
    )
    r = client.post(f"/admin/keys/{other.kid}/revoke", json={"reason": "leaked"}, headers=auth(issuer))
    assert r.status_code == 200, r.text
    assert {k["kid"]: k["status"] for k in r.json()["keys"]}[other.kid] == "revoked"
    assert r.json()["version"] == keyring.version + 2
    assert KeyStore(settings.layout).get(other.kid).status is KeyStatus.REVOKED
    listed = client.get("/admin/keys", headers=auth(issuer)).json()
    assert listed["version"] == keyring.version + 2


def test_backups_list_and_delete(client, settings, issuer):
    backups = settings.layout.backups_dir
    backups.mkdir(parents=True)
    (backups / "b-1.manifest.json").write_text("{}")
    r = client.get("/admin/backups", headers=auth(issuer, "backup:read"))
    assert r.status_code == 200
    assert [b["backup_id"] for b in r.json()["backups"]] == ["b-1"]
    assert client.delete("/admin/backups/..%2Fx", headers=auth(issuer)).status_code in (400, 404)
    assert client.delete("/admin/backups/b-1", headers=auth(issuer, "backup:read")).status_code == 403
    assert client.delete("/admin/backups/b-1", headers=auth(issuer, "backup:delete")).status_code == 200
    assert client.get("/admin/backups", headers=auth(issuer)).json()["backups"] == []
    assert client.delete("/admin/backups/b-1", headers=auth(issuer)).status_code == 404


def test_unexpected_errors_are_500_json_without_trace(client, issuer, monkeypatch):
    from core import service

    def boom(*a, **k):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(service, "compile_policy_text", boom)
    r = client.post("/policy/compile", json={"policy_yaml": COMPAT_POLICY}, headers=auth(issuer))
    assert r.status_code == 500
    assert r.json() == {"error": "internal_error", "message": "internal server error", "details": {}}


def test_unknown_route_is_json_404(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_drift_detect_reports_drift_against_the_subjects_baseline(client, issuer, proof_doc, settings):
    from datetime import timedelta

    from core.canonical import canonical_bytes
    from core.proof import proof_file_bytes
    from core.registry import Registry
    from tests.world import NOW, World

    earlier = World(suppliers_csv=World().suppliers_csv + "Extra Co,FR,1\n")
    base = earlier.build().proof
    with Registry(settings.layout.registry_db) as registry:
        registry.register(
            proof_file_bytes(base),
            canonical_bytes(base.manifest),
            subject=base.manifest.subject,
            policy_hash=base.manifest.policy.hash,
            ir_hash=base.ir_hash,
            company_root=base.manifest.company_commitment_root,
            supplier_root=base.manifest.supplier_root,
            ubo_root=base.manifest.ubo_root,
            result="OK",
            accepted=True,
            signer=earlier.signer,
            now=NOW - timedelta(days=1),
        )
    r = client.post(
        "/verify",
        json={"proof": proof_doc, "options": {"drift_detect": True}},
        headers=auth(issuer, "verify:run verify:admin"),
    )
    assert r.status_code == 200, r.text
    (drift,) = [c for c in r.json()["checks"] if c["id"] == "drift"]
    assert drift["kind"] == "drift" and "root" in drift["message"] and "proof_001" in drift["message"]
    plain = client.post("/verify", json={"proof": proof_doc}, headers=auth(issuer, "verify:run"))
    assert not [c for c in plain.json()["checks"] if c["id"] == "drift"]


def test_metrics_export_the_rotation_gauges_of_the_live_keyring(client, issuer):
    from prometheus_client.parser import text_string_to_metric_families

    r = client.get("/metrics", headers=auth(issuer, "metrics:read"))
    assert r.status_code == 200
    values = {s.name: s.value for f in text_string_to_metric_families(r.text) for s in f.samples}
    assert values["cap_key_rotation_phase"] == 3  # single-key, no rotation under way: steady state (phase 3)
    assert values["cap_dual_accept_time_remaining_seconds"] == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/admin/keys/rotate", {"phase": 4}, id="phase_out_of_range"),
        pytest.param("/admin/keys/rotate", {"phase": 1, "duration": "a week"}, id="bad_duration"),
        pytest.param(
            "/admin/keys/rotate", {"phase": 1, "duration": "99999999999d"}, id="duration_overflow_was_500"
        ),
        pytest.param("/admin/restores", {"backup_id": "../etc"}, id="backup_id_outside_pattern"),
        pytest.param("/admin/keys/rotate", {"phase": 3, "force": 1}, id="flag_as_number_is_not_a_bool"),
        pytest.param("/admin/keys/rotate", {"phase": 1.0}, id="phase_as_float"),
        pytest.param("/admin/backups", {"encrypt": "yes"}, id="flag_as_string"),
        pytest.param("/admin/keys/rotate", {"force": True}, id="phase_missing"),
        pytest.param("/admin/backups", {"encrypt": True, "surprise": 1}, id="unknown_backup_parameter"),
        pytest.param(
            "/admin/restores", {"backup_id": "b-1", "target": "/etc"}, id="restore_target_not_offered"
        ),
    ],
)
def test_admin_trigger_parameters_are_typed(client, issuer, flows, path, body):
    r = client.post(path, json=body, headers=auth(issuer, "admin:full"))
    assert r.status_code == 422, r.text
    assert not flows.triggered


def test_admin_trigger_passes_typed_parameters(client, issuer, flows):
    r = client.post(
        "/admin/keys/rotate", json={"phase": 1, "duration": "1h30m"}, headers=auth(issuer, "admin:full")
    )
    assert r.status_code == 202, r.text
    sent = flows.triggered[-1][1]
    assert sent["phase"] == "1 — dual-accept (verifiers accept both keys)"  # the form's label of phase 1
    assert sent["duration"] == "1h30m"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param("/verify", "proof", "proof.policy_id", id="verify_proof"),
        pytest.param("/verify", {"ir": {"x": "\ud800"}, "context": {}}, "ir.x", id="verify_inline_ir"),
        pytest.param("/verify", {"policy_id": "p\ud800"}, "policy_id", id="verify_policy_id"),
        pytest.param("/policy/compile", {"policy_yaml": "id: \udc00"}, "policy_yaml", id="compile"),
    ],
)
def test_lone_surrogates_in_a_body_are_422_naming_the_field(client, issuer, proof_doc, path, body, field):
    """JSON may escape a lone surrogate (\\ud800): no UTF-8 form, so nothing can hash, store or print it."""
    if body == "proof":
        body = {"proof": {**proof_doc, "policy_id": "Test \ud800 Policy"}}
    data = json.dumps(body).encode()
    r = client.post(path, content=data, headers={**auth(issuer), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(f"body: {field} holds text that is not valid Unicode")
