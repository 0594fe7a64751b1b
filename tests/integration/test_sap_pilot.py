"""The SAP adapter pilot end to end: the mock SAP server over HTTP on 127.0.0.1, a real SQLite registry.

Scenarios (docs/sap_adapter_pilot_e2e.md): (1) happy path → OK; (2) a supplier matching an OFAC/UN entry
written differently → FAIL in strict, ``no_sanctioned_suppliers`` named; (3) a supplier's country changed
in SAP between two runs → RootDrift against the first run's accepted entry. Plus v2 = v4, the CLI in a
subprocess, verification through the real API, the API error mapping, and the PII boundary.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import generate_latest

from core import service
from core.metrics import REGISTRY
from core.modes import CheckStatus, EnforcementMode
from core.registry import Registry
from core.sap.pipeline import IngestResult, configured_lists, ingest, load_ingest_config
from core.sap.remote_verify import RemoteVerifyError, verify_remote
from core.settings import Settings
from deployments.sap_mock import SapDataset, create_app, generate_dataset, running_server
from deployments.sap_pilot import SANCTIONED_DEMO_NUMBER, add_supplier, set_supplier_country

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sap"
NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)  # the generated data's as-of day
SECRET_ENV = {"CAP_SAP_COMPANY_SECRET": "pilot-secret-for-tests"}
PII_FIELDS = frozenset(
    {
        "EmailAddress",
        "MiddleName",
        "PhoneNumber",
        "SupplierPhoneNumber",
        "StreetName",
        "AddressStreetName",
        "DeliveryAddressStreetName",
        "CityName",
        "RequisitionerName",
        "SupplierRespSalesPersonName",
        "FirstName",
        "LastName",
        "BusinessPartnerFullName",
        "OrganizationBPName1",
        "SupplierName",
        "SupplierFullName",
    }
)


# --- helpers (also used by tests/flows/test_sap_flow.py) -------------------------------------------------


def pilot_dataset(**kw: Any) -> SapDataset:
    return generate_dataset(40, 200, seed=0, **kw)


def write_config(tmp: Path, url: str, **overrides: Any) -> Path:
    """The example config with ``base_url`` pointed at ``url`` and its paths made absolute."""
    doc = yaml.safe_load((EXAMPLE / "sap-ingest.yml").read_text(encoding="utf-8"))["sap"]
    doc["sanctions"] = [{**s, "path": str((EXAMPLE / s["path"]).resolve())} for s in doc["sanctions"]]
    doc.update(
        high_risk=str((EXAMPLE / doc["high_risk"]).resolve()),
        policy=str(EXAMPLE / doc["policy"]),
        base_url=url,
    )
    doc.update(overrides)
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "sap-ingest.yml"
    path.write_text(yaml.safe_dump({"sap": doc}), encoding="utf-8")
    return path


def pii_values(dataset: SapDataset) -> set[str]:
    """Every personal or identifying string of the dataset (names, e-mails, phones, streets, cities)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in PII_FIELDS and isinstance(value, str) and len(value.strip()) >= 3:
                    found.add(value.strip())
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk([dataset.business_partners, dataset.suppliers, dataset.purchase_orders])
    return found


def leaks(text: str, values: set[str]) -> list[str]:
    """The values that occur in ``text`` (case-insensitive, whole words)."""
    low = text.lower()
    return sorted(v for v in values if re.search(r"(?<!\w)" + re.escape(v.lower()) + r"(?!\w)", low))


def run(
    tmp: Path, dataset: SapDataset, *, now: datetime = NOW, version: int = 2, **overrides: Any
) -> IngestResult:
    # v2 like the rest of the suite (tests/conftest.py): these scenarios are about the ingest, not the scheme
    settings = Settings(
        data_dir=tmp / "var", build_dir=tmp / "build", subject="LEI-UNUSED", proof_scheme="v2"
    )
    with running_server(create_app(dataset, version)) as url:
        config = load_ingest_config(write_config(tmp, url, odata_version=version, **overrides))
        return ingest(config, settings, now, env=SECRET_ENV)


# --- scenario 1: happy path ---------------------------------------------------------------------------


def test_happy_path_is_ok_registered_and_verified(tmp_path):
    result = run(tmp_path, pilot_dataset())
    assert result.result is CheckStatus.OK and result.verdict is CheckStatus.OK
    assert result.verification.result is CheckStatus.OK and result.verification.via == "in-process"
    assert result.supplier_count > 25 and result.tiers.keys() == {1, 2}
    assert result.ubo_status.value == "known" and result.ubo_count >= 1
    assert result.violations == {} and result.screening.hits == () and result.drift is None
    assert {"inactive", "missing_name", "name_has_contact_data"} <= result.dropped.keys()
    with Registry(tmp_path / "var" / "registry.sqlite") as registry:
        entry = registry.get(result.registry_id)
    assert entry.accepted and entry.subject == "LEI-PILOT-5299000000000001"
    assert entry.company_root == result.company_root and entry.proof_hash == result.proof_hash


def test_v2_and_v4_give_the_same_roots(tmp_path):
    v2 = run(tmp_path / "v2", pilot_dataset())
    v4 = run(tmp_path / "v4", pilot_dataset(), version=4)
    assert (v2.supplier_root, v2.ubo_root, v2.supplier_count) == (
        v4.supplier_root,
        v4.ubo_root,
        v4.supplier_count,
    )


# --- scenario 2: sanctions match --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        pytest.param("Trade Center Hesa", "ofac:11195", id="ofac-alias-other-order"),
        pytest.param("trade CÉNTER hésa", "ofac:11195", id="ofac-alias-case-diacritics"),
        pytest.param("General Ryonbong Korea Corp.", "un:KPe.002", id="un-entity-legal-form"),
    ],
)
def test_sanctioned_supplier_fails_in_strict_with_the_violation_named(tmp_path, name, ref):
    result = run(tmp_path, add_supplier(pilot_dataset(), SANCTIONED_DEMO_NUMBER, name, "DE"))
    assert result.result is CheckStatus.FAIL and result.verdict is CheckStatus.FAIL
    assert result.violations == {"no_sanctioned_suppliers": 1}
    [hit] = result.screening.hits
    assert hit.party == "supplier" and ref in hit.refs and re.fullmatch(r"0x[0-9a-f]{64}", hit.id)
    assert "rule:no_sanctioned_suppliers" in result.verification.failed_checks
    assert not result.accepted


def test_sanctioned_supplier_in_audit_mode_warns_and_is_accepted(tmp_path):
    dataset = add_supplier(pilot_dataset(), SANCTIONED_DEMO_NUMBER, "Trade Center Hesa", "DE")
    result = run(tmp_path, dataset, enforce_mode="audit")
    assert result.mode is EnforcementMode.AUDIT and result.verdict is CheckStatus.WARN
    assert result.violations == {"no_sanctioned_suppliers": 1} and result.accepted


# --- scenario 3: drift after supplier data changed in SAP ---------------------------------------------


def test_changed_supplier_country_is_reported_as_root_drift(tmp_path):
    dataset = pilot_dataset()
    first = run(tmp_path, dataset)
    assert first.accepted and first.drift is None
    moved = set_supplier_country(dataset, "2000001", "FR")
    second = run(tmp_path, moved, now=NOW + timedelta(hours=1))
    assert second.supplier_root != first.supplier_root and second.ubo_root == first.ubo_root
    assert second.drift is not None and second.drift.baseline == f"registry:{first.registry_id}"
    assert second.drift.items == {"root": 15.0} and second.drift.score >= 15
    assert second.result is CheckStatus.OK


# --- the CLI, in a subprocess -------------------------------------------------------------------------


def test_cli_ingest_happy_then_sanctioned(tmp_path):
    today = datetime.now(UTC).date()
    env = {
        **os.environ,
        **SECRET_ENV,
        "CAP_DATA_DIR": str(tmp_path / "var"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("CAP_DEBUG", None)
    codes, docs = [], []
    for dataset in (
        pilot_dataset(as_of=today),
        add_supplier(
            pilot_dataset(as_of=today), SANCTIONED_DEMO_NUMBER, "Trade Center Hesa", "DE", as_of=today
        ),
    ):
        with running_server(create_app(dataset, 2)) as url:
            cmd = [
                sys.executable,
                "-m",
                "deployments.cli",
                "sap",
                "ingest",
                "--config",
                str(write_config(tmp_path, url)),
                "--json",
            ]
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        codes.append(proc.returncode)
        docs.append(json.loads(proc.stdout))
    assert codes == [0, 3], docs
    assert docs[0]["verdict"] == "ok" and docs[1]["violations"] == {"no_sanctioned_suppliers": 1}
    assert docs[1]["drift"]["items"] == {"root": 15.0}


# --- verification through the API ----------------------------------------------------------------------


def test_verification_through_the_real_api(tmp_path, monkeypatch):
    from core.dev_issuer import DEV_AUDIENCE, DEV_ISSUER, DevIssuer
    from deployments.api.app import create_app as create_api
    from deployments.api.config import ApiConfig

    settings = Settings(data_dir=tmp_path / "var", build_dir=tmp_path / "build", env="dev", proof_scheme="v2")
    service.keygen(settings, now=NOW)
    issuer = DevIssuer(settings.layout.dev_issuer_dir).ensure()
    token = issuer.mint(["verify:run"], ttl=3600, now=int(datetime.now(UTC).timestamp()))
    # the API verifies on the real clock; the ingest runs at NOW, its lists as old as NOW is
    age = (datetime.now(UTC) - NOW).days + 14
    verifier = settings.model_copy(update={"max_list_age_days": age})
    api = create_api(
        verifier, ApiConfig(issuer=DEV_ISSUER, audience=DEV_AUDIENCE, jwks_file=issuer.jwks_path)
    )
    env = {**SECRET_ENV, "CAP_VERIFY_TOKEN": token}
    with running_server(api) as api_url, running_server(create_app(pilot_dataset(), 2)) as sap_url:
        config = load_ingest_config(write_config(tmp_path, sap_url, verify_url=api_url))
        service.install_lists(settings, configured_lists(config, NOW).lists, NOW)  # the server trusts them
        result = ingest(config, settings, NOW, env=env)
        with pytest.raises(RemoteVerifyError) as refused:
            ingest(config, settings, NOW, env={**env, "CAP_VERIFY_TOKEN": "not-a-jwt"})
    assert result.verification.via == "api" and result.verification.result is CheckStatus.OK
    assert "registry" not in result.verification.warned_checks  # the API found the registered proof
    assert refused.value.details["status"] == 401 and not refused.value.transient


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        pytest.param(503, True, id="unavailable-is-transient"),
        pytest.param(403, False, id="forbidden-is-final"),
    ],
)
def test_api_errors_are_translated_once(status, transient):
    from tests.world import World

    proof = World().build().proof
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json={"error": "x", "message": "refused"})

    with pytest.raises(RemoteVerifyError) as caught:
        verify_remote(
            "http://api.test",
            proof,
            EnforcementMode.RELAXED,
            env={"CAP_VERIFY_TOKEN": "t0k"},
            transport=httpx.MockTransport(handler),
        )
    assert caught.value.transient is transient and caught.value.details["status"] == status
    [request] = seen
    body = json.loads(request.content)
    assert request.url.path == "/verify" and request.headers["authorization"] == "Bearer t0k"
    assert body["proof"]["schema"] == "cap-proof.v2" and body["options"] == {"enforce_mode": "relaxed"}


# --- PII boundary (in-process; the flow's own check is in tests/flows/test_sap_flow.py) ----------------


def test_no_personal_data_leaves_the_adapter(tmp_path, caplog):
    caplog.set_level("DEBUG")
    dataset = pilot_dataset()
    values = pii_values(dataset)
    assert any("@" in v for v in values) and "John Doe" in values  # the fixture's MiddleName e-mails, persons
    assert {"John Doe", "doe@company-a.com"} <= set(leaks("mail doe@company-a.com, John Doe.", values))
    result = run(tmp_path, dataset)
    with Registry(tmp_path / "var" / "registry.sqlite") as registry:
        proofs = "\n".join(e.proof_json for e in registry.entries())
    outputs = {
        "result": result.model_dump_json(),
        "registry": proofs,
        "metrics": generate_latest(REGISTRY).decode(),
        "audit": (tmp_path / "var" / "audit.jsonl").read_text(encoding="utf-8"),
        "logs": caplog.text,
    }
    assert {where: leaks(text, values) for where, text in outputs.items()} == {k: [] for k in outputs}


def test_installed_lists_file_screens_like_the_raw_sources(tmp_path):
    """``lists_file`` (what ``cap lists refresh`` installs) instead of ``sanctions``: same roots, same hit."""
    from core import service
    from core.sanctions import ListFormat

    doc = yaml.safe_load((EXAMPLE / "sap-ingest.yml").read_text(encoding="utf-8"))["sap"]
    sources = [((EXAMPLE / s["path"]).resolve(), ListFormat(s["format"])) for s in doc["sanctions"]]
    lists = service.build_lists_file(sources, (EXAMPLE / doc["high_risk"]).resolve(), NOW)
    lists_path = service.write_json(tmp_path / "installed" / "lists.json", lists)
    dataset = add_supplier(pilot_dataset(), SANCTIONED_DEMO_NUMBER, "Trade Center Hesa", "DE")

    raw = run(tmp_path / "raw", dataset)
    installed = run(tmp_path / "file", dataset, sanctions=[], high_risk=None, lists_file=str(lists_path))
    assert installed.violations == raw.violations == {"no_sanctioned_suppliers": 1}
    assert [h.refs for h in installed.screening.hits] == [h.refs for h in raw.screening.hits]
    assert installed.sanctions_root == raw.sanctions_root == lists.sanctions_root


def test_lists_file_and_sanctions_together_are_refused(tmp_path):
    from core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_ingest_config(write_config(tmp_path, "http://127.0.0.1:1", lists_file="lists.json"))
    assert "give lists_file, or sanctions (and high_risk), not both" in err.value.message
