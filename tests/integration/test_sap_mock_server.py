"""The OData client against the local SAP-like server over real HTTP on 127.0.0.1 (v2 and v4)."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from core.sap.delta import change_timestamp, load_watermarks, save_watermarks
from core.sap.mapping import build_supplier_records, supplier_csv
from core.sap.odata import BasicAuth, OAuth2ClientCredentials, ODataClient, SapAuthError, SapError
from core.sap.services import EntityKind
from core.sap.ubo import RelationshipUboCollector, UboStatus
from core.sap.wire import ODataVersion, format_v2_datetime
from deployments.sap_mock import Fault, FaultPlan, create_app, generate_dataset, running_server
from deployments.sap_mock_data import OWNER_CATEGORY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
USER, PASSWORD = "COMM_USER", "Mock-Pa55word!"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+?\d[\d ()/-]{6,}\d")
STREET = re.compile(r"strasse|allee|dietmar", re.IGNORECASE)


@pytest.fixture(scope="module")
def dataset():
    return generate_dataset(120, 600, seed=7)


@pytest.fixture(params=[2, 4], ids=["v2", "v4"])
def server(request, dataset):
    faults = FaultPlan()
    app = create_app(
        dataset,
        request.param,
        username=USER,
        password=PASSWORD,
        faults=faults,
        oauth_clients={"cid": "csecret"},
    )
    with running_server(app) as url:
        yield url, ODataVersion(request.param), app.state.sap


def connect(url, version, **kw):
    kw.setdefault("auth", BasicAuth(username=USER, password=PASSWORD))
    kw.setdefault("sleep", lambda s: None)
    return ODataClient(url, version=version, sap_client="100", page_size=kw.pop("page_size", 50), **kw)


def ingest(c, *, with_relationships=False, observers=()):
    return build_supplier_records(
        c.iter_business_partners(with_relationships=with_relationships),
        c.iter_suppliers(),
        c.iter_purchase_orders(ordered_from=(NOW - timedelta(days=365)).date()),
        now=NOW,
        lookback_days=365,
        observers=observers,
    )


def test_ingest_over_http_pages_and_sends_top_and_sap_client(server, dataset):
    url, version, state = server
    with connect(url, version) as c:
        result = ingest(c)
    assert len(result.records) > 70 and result.tier_counts[2] > 5
    assert result.suppliers_seen == len(dataset.suppliers)
    pages = [r for r in state.requests if r["path"].endswith("A_Supplier")]
    assert len(pages) >= 3
    assert all(r["params"]["sap-client"] == "100" and r["params"]["$top"] == "50" for r in pages)
    out = result.model_dump_json() + supplier_csv(result.records)
    assert not (EMAIL.search(out) or PHONE.search(out) or STREET.search(out))


def test_v2_and_v4_give_identical_records(dataset):
    results = []
    for version in (2, 4):
        with running_server(create_app(dataset, version)) as url, connect(url, version, auth=None) as c:
            results.append(ingest(c))
    assert results[0] == results[1]


def test_delta_watermark_round_trip(server, tmp_path):
    url, version, state = server
    path = tmp_path / "watermarks.json"
    marks = load_watermarks(path)
    with connect(url, version) as c:
        full = list(c.iter_business_partners(since=marks.since(EntityKind.BUSINESS_PARTNER)))
    for bp in full:
        marks = marks.advanced(EntityKind.BUSINESS_PARTNER, change_timestamp(EntityKind.BUSINESS_PARTNER, bp))
    save_watermarks(path, marks)
    newest = load_watermarks(path).marks[EntityKind.BUSINESS_PARTNER]
    assert newest == max(change_timestamp(EntityKind.BUSINESS_PARTNER, bp) for bp in full)

    changed = state.dataset.business_partners[3]
    original = changed["LastChangeDate"]
    changed["LastChangeDate"] = format_v2_datetime(newest + timedelta(days=5))
    state.cache.clear()
    try:
        with connect(url, version) as c:
            delta = list(
                c.iter_business_partners(since=load_watermarks(path).since(EntityKind.BUSINESS_PARTNER))
            )
    finally:
        changed["LastChangeDate"] = original
        state.cache.clear()
    numbers = {bp["BusinessPartner"] for bp in delta}
    assert changed["BusinessPartner"] in numbers and 0 < len(delta) < len(full) // 2
    assert all(
        change_timestamp(EntityKind.BUSINESS_PARTNER, bp) >= newest - timedelta(days=2) for bp in delta
    )


def test_429_with_retry_after_then_success(server):
    url, version, state = server
    state.faults.add(Fault(status=429, count=2, retry_after="3", path_contains="A_Supplier"))
    slept: list[float] = []
    with connect(url, version, sleep=slept.append) as c:
        rows = list(c.iter_suppliers())
    assert slept == [3.0, 3.0] and len(rows) == len(state.dataset.suppliers)


def test_500_then_success_and_exhaustion(server):
    url, version, state = server
    state.faults.add(Fault(status=500, count=1))
    with connect(url, version) as c:
        assert list(c.iter_suppliers())
    state.faults.add(Fault(status=503, count=10))
    with connect(url, version, max_attempts=3) as c, pytest.raises(SapError) as info:
        list(c.iter_suppliers())
    assert "HTTP 503" in info.value.message and "Injected fault 503" in info.value.message
    assert "gave up after 3 attempts" in info.value.message
    state.faults.faults.clear()


def test_malformed_json_is_a_clear_error(server):
    url, version, state = server
    state.faults.add(Fault(kind="malformed"))
    with (
        connect(url, version) as c,
        pytest.raises(SapError, match=r"malformed JSON from http://127\.0\.0\.1"),
    ):
        list(c.iter_suppliers())


def test_wrong_password_is_an_auth_error_without_the_password(server):
    url, version, _ = server
    bad = BasicAuth(username=USER, password="wrong-Pa55")
    with connect(url, version, auth=bad) as c, pytest.raises(SapAuthError) as info:
        list(c.iter_suppliers())
    text = info.value.diagnostics() + str(info.value.to_dict())
    assert "HTTP 401" in text and "127.0.0.1" in text and USER in text
    assert "wrong-Pa55" not in text and PASSWORD not in text


def test_oauth2_client_credentials_against_the_mock(server):
    url, version, state = server
    auth = OAuth2ClientCredentials(token_url=f"{url}/oauth/token", client_id="cid", client_secret="csecret")
    with connect(url, version, auth=auth) as c:
        assert list(c.iter_suppliers())
    token_calls = [r for r in state.requests if r["path"] == "/oauth/token"]
    supplier_calls = [r for r in state.requests if r["path"].endswith("A_Supplier")]
    assert len(supplier_calls) >= 3 and all(r["auth"].startswith("Bearer ") for r in supplier_calls[-3:])
    assert not token_calls  # POSTs are not logged; the bearer header proves the token was used


def test_relationship_ubos_over_http(server):
    url, version, _ = server
    collector = RelationshipUboCollector((OWNER_CATEGORY,), as_of=NOW.date())
    with connect(url, version) as c:
        ingest(c, with_relationships=True, observers=[collector])
    result = collector.result()
    assert result.status is UboStatus.KNOWN and len(result.records) >= 4
