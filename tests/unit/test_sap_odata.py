"""OData client, wire values, watermarks and config — through httpx.MockTransport, no network."""

import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.errors import ConfigError, InvalidInputError
from core.sap.config import CsvUboSource, SapConfig, load_sap_config, parse_sap_config
from core.sap.delta import Watermarks, change_timestamp, load_watermarks, save_watermarks
from core.sap.odata import BasicAuth, OAuth2ClientCredentials, ODataClient, SapAuthError, SapError
from core.sap.services import EntityKind
from core.sap.wire import (
    ODataVersion,
    filter_datetime,
    parse_date,
    parse_decimal,
    parse_edm_time,
    parse_iso_datetime,
    parse_v2_datetime,
)

pytestmark = pytest.mark.timeout(30)

BASE = "https://sap.example.com"
PASSWORD = "s3cr3t-Pa55"


class Recorder:
    """A MockTransport handler serving queued responses and recording requests."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, Exception):
            raise item
        return item(request) if callable(item) else item

    def params(self, i):
        return {k: v[0] for k, v in parse_qs(urlsplit(str(self.requests[i].url)).query).items()}


def client(handler, **kw) -> ODataClient:
    kw.setdefault("sleep", lambda s: None)
    return ODataClient(BASE, transport=httpx.MockTransport(handler), **kw)


def v2_page(rows, next_url=None):
    d = {"results": rows}
    if next_url:
        d["__next"] = next_url
    return httpx.Response(200, json={"d": d})


def v4_page(rows, next_link=None):
    doc = {"@odata.context": "$metadata#A_Supplier", "value": rows}
    if next_link:
        doc["@odata.nextLink"] = next_link
    return httpx.Response(200, json=doc)


def sap_error(status, message="boom", headers=None, v4=False):
    msg = message if v4 else {"lang": "en", "value": message}
    return httpx.Response(status, json={"error": {"code": "/IWBEP/CM/1", "message": msg}}, headers=headers)


# ---- paging -------------------------------------------------------------------------------------


def test_v2_follows_next_links_over_three_pages_and_keeps_sap_client():
    nxt = f"{BASE}/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_Supplier?$skiptoken="
    rec = Recorder(
        v2_page([{"Supplier": "1"}, {"Supplier": "2"}], nxt + "2"),
        v2_page([{"Supplier": "3"}, {"Supplier": "4"}], nxt + "4"),
        v2_page([{"Supplier": "5"}]),
    )
    with client(rec, page_size=2, sap_client="100") as c:
        rows = list(c.iter_suppliers())
    assert [r["Supplier"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert len(rec.requests) == 3
    first = rec.params(0)
    assert first["$top"] == "2" and first["sap-client"] == "100" and first["$format"] == "json"
    assert "Supplier" in first["$select"] and "MiddleName" not in first["$select"]
    assert rec.params(1)["$skiptoken"] == "2" and rec.params(2)["sap-client"] == "100"
    assert str(rec.requests[0].url).startswith(BASE + "/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_Supplier?")


def test_v4_follows_relative_next_links_over_three_pages():
    rec = Recorder(
        v4_page([{"Supplier": "1"}], "A_Supplier?$skiptoken=1"),
        v4_page([{"Supplier": "2"}], "A_Supplier?$skiptoken=2"),
        v4_page([{"Supplier": "3"}]),
    )
    with client(rec, version=ODataVersion.V4, page_size=1) as c:
        rows = list(c.iter_suppliers())
    assert [r["Supplier"] for r in rows] == ["1", "2", "3"]
    assert "/srvd_a2x/sap/businesspartner/0001/A_Supplier" in rec.requests[2].url.path
    assert rec.params(2)["$skiptoken"] == "2"
    assert "$format" not in rec.params(0)


def test_full_pages_without_next_link_continue_with_skip():
    rec = Recorder(v2_page([{"n": 1}, {"n": 2}]), v2_page([{"n": 3}, {"n": 4}]), v2_page([]))
    with client(rec, page_size=2) as c:
        assert [r["n"] for r in c.iter_entities("/X", {})] == [1, 2, 3, 4]
    assert [rec.params(i).get("$skip") for i in range(3)] == [None, "2", "4"]


def test_pages_are_streamed_not_loaded_at_once():
    rec = Recorder(v2_page([{"n": 1}], f"{BASE}/X?p=2"), v2_page([{"n": 2}]))
    with client(rec, page_size=1) as c:
        stream = c.iter_entities("/X", {})
        assert next(stream) == {"n": 1}
        assert len(rec.requests) == 1


# ---- retries ------------------------------------------------------------------------------------


def test_429_with_retry_after_seconds_then_success():
    slept: list[float] = []
    rec = Recorder(sap_error(429, headers={"Retry-After": "7"}), v2_page([{"n": 1}]))
    with client(rec, sleep=slept.append) as c:
        assert list(c.iter_entities("/X", {})) == [{"n": 1}]
    assert slept == [7.0]


def test_429_with_retry_after_http_date_uses_the_clock():
    now = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    slept: list[float] = []
    rec = Recorder(sap_error(429, headers={"Retry-After": header}), v2_page([]))
    with client(rec, sleep=slept.append, clock=lambda: now.timestamp()) as c:
        list(c.iter_entities("/X", {}))
    assert slept == [30.0]


def test_500_then_success_backs_off():
    slept: list[float] = []
    rec = Recorder(sap_error(500), sap_error(503), v2_page([{"n": 1}]))
    with client(rec, sleep=slept.append, backoff=0.5) as c:
        assert list(c.iter_entities("/X", {})) == [{"n": 1}]
    assert slept == [0.5, 1.0]


def test_retries_exhausted_is_a_clear_transient_error():
    slept: list[float] = []
    rec = Recorder(sap_error(503, "Service Unavailable: backend down"))
    with client(rec, sleep=slept.append, max_attempts=3) as c, pytest.raises(SapError) as info:
        list(c.iter_entities("/X", {}))
    err = info.value
    assert err.transient and len(rec.requests) == 3 and len(slept) == 2
    assert (
        "HTTP 503" in err.message
        and "backend down" in err.message
        and "gave up after 3 attempts" in err.message
    )


def test_every_wait_before_a_retry_is_announced_on_one_line(caplog):
    rec = Recorder(sap_error(503, "Service Unavailable: backend down"))
    with (
        caplog.at_level("WARNING", logger="cap.sap"),
        client(rec, sleep=lambda _s: None, max_attempts=3) as c,
        pytest.raises(SapError),
    ):
        list(c.iter_entities("/X", {}))
    lines = [r.getMessage() for r in caplog.records if r.name == "cap.sap"]
    assert len(lines) == 2 and lines[0].endswith("retry 2 of 3 in 0.5 s") and "HTTP 503" in lines[0]
    assert lines[1].endswith("retry 3 of 3 in 1.0 s")


def test_transport_errors_are_translated_and_chained():
    rec = Recorder(httpx.ConnectError("refused"))
    with client(rec, max_attempts=2) as c, pytest.raises(SapError) as info:
        list(c.iter_entities("/X", {}))
    assert "cannot reach https://sap.example.com/X" in info.value.message
    assert isinstance(info.value.__cause__.__cause__, httpx.ConnectError)


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_names_url_and_user_but_never_the_password(status):
    rec = Recorder(sap_error(status, "Unauthorized"))
    url = f"https://bob:{PASSWORD}@sap.example.com"
    with (
        ODataClient(
            url, auth=BasicAuth(username="COMM_USER", password=PASSWORD), transport=httpx.MockTransport(rec)
        ) as c,
        pytest.raises(SapAuthError) as info,
    ):
        list(c.iter_suppliers())
    err = info.value
    text = " ".join([str(err), err.diagnostics(), json.dumps(err.to_dict()), repr(c.auth)])
    assert PASSWORD not in text
    assert "sap.example.com/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_Supplier" in err.message
    assert "COMM_USER" in err.message and err.code == "sap_auth_failed"
    assert rec.requests[0].headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(sap_error(400, "Invalid filter: LastChangeDate"), id="v2"),
        pytest.param(sap_error(400, "Invalid filter: LastChangeDate", v4=True), id="v4"),
    ],
)
def test_sap_error_payload_becomes_the_message(response):
    with client(Recorder(response)) as c, pytest.raises(SapError) as info:
        list(c.iter_entities("/X", {}))
    assert "HTTP 400" in info.value.message and "Invalid filter: LastChangeDate" in info.value.message
    assert info.value.details["sap_code"] == "/IWBEP/CM/1" and not info.value.transient


@pytest.mark.parametrize(
    ("response", "words"),
    [
        pytest.param(httpx.Response(200, content=b'{"d": {"results": ['), "malformed JSON", id="malformed"),
        pytest.param(
            httpx.Response(200, json={"value": []}), "unexpected OData payload", id="v4-shape-on-v2"
        ),
        pytest.param(
            httpx.Response(200, json={"d": {"results": [1]}}), "unexpected OData payload", id="rows"
        ),
    ],
)
def test_bad_payloads_are_clear_errors(response, words):
    with client(Recorder(response)) as c, pytest.raises(SapError) as info:
        list(c.iter_entities("/X", {}))
    assert words in info.value.message and "https://sap.example.com/X" in info.value.message


# ---- OAuth2 -------------------------------------------------------------------------------------


def test_oauth2_token_is_fetched_once_and_cached_until_expiry():
    now = [1000.0]
    tokens = iter(["tok-1", "tok-2"])

    def handler(request):
        if request.url.path == "/oauth/token":
            assert b"grant_type=client_credentials" in request.content
            assert request.headers["Authorization"].startswith("Basic ")
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 600})
        return v2_page([{"auth": request.headers["Authorization"]}])

    auth = OAuth2ClientCredentials(token_url=f"{BASE}/oauth/token", client_id="cid", client_secret="csecret")
    rec = Recorder(handler)
    with client(rec, auth=auth, clock=lambda: now[0]) as c:
        seen = [next(c.iter_entities("/X", {}))["auth"] for _ in range(2)]
        now[0] += 600
        seen.append(next(c.iter_entities("/X", {}))["auth"])
    assert seen == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert [r.url.path for r in rec.requests].count("/oauth/token") == 2
    assert "csecret" not in repr(auth)


def test_oauth2_refused_token_is_an_auth_error():
    auth = OAuth2ClientCredentials(token_url=f"{BASE}/oauth/token", client_id="cid", client_secret="csecret")
    refused = Recorder(httpx.Response(401, json={"error": "invalid_client"}))
    with client(refused, auth=auth) as c, pytest.raises(SapAuthError) as info:
        list(c.iter_entities("/X", {}))
    assert "sap.example.com/oauth/token" in info.value.message and "csecret" not in str(info.value)


# ---- delta filters ------------------------------------------------------------------------------


def test_delta_filters_v2_and_v4():
    since = datetime(2024, 1, 1, 10, 30, tzinfo=UTC)
    for version, bp, po in [
        (
            ODataVersion.V2,
            "LastChangeDate ge datetime'2024-01-01T00:00:00'",
            "LastChangeDateTime ge datetimeoffset'2024-01-01T10:30:00Z'",
        ),
        (ODataVersion.V4, "LastChangeDate ge 2024-01-01", "LastChangeDateTime ge 2024-01-01T10:30:00Z"),
    ]:
        rec = Recorder(v2_page([]) if version is ODataVersion.V2 else v4_page([]))
        with client(rec, version=version) as c:
            list(c.iter_business_partners(since=since))
            list(c.iter_purchase_orders(since=since, ordered_from=date(2024, 6, 1)))
        assert bp in rec.params(0)["$filter"] and "Supplier ne ''" in rec.params(0)["$filter"]
        assert po in rec.params(1)["$filter"] and "PurchaseOrderDate ge" in rec.params(1)["$filter"]
        assert "MiddleName" not in rec.params(0)["$select"]


# ---- wire values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instant", "offset"),
    [
        pytest.param("/Date(1492041600000)/", datetime(2017, 4, 13, tzinfo=UTC), 0, id="datetime"),
        pytest.param("/Date(1518393600000+0000)/", datetime(2018, 2, 12, tzinfo=UTC), 0, id="offset-zero"),
        pytest.param("/Date(1518393600000+0100)/", datetime(2018, 2, 12, tzinfo=UTC), 100, id="offset-plus"),
        pytest.param("/Date(1518393600000-0060)/", datetime(2018, 2, 12, tzinfo=UTC), -60, id="offset-minus"),
        pytest.param("/Date(-86400000)/", datetime(1969, 12, 31, tzinfo=UTC), 0, id="before-1970"),
        pytest.param(
            "/Date(253402300799000+0000)/", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), 0, id="forever"
        ),
    ],
)
def test_v2_dates(text, instant, offset):
    value = parse_v2_datetime(text)
    assert value == instant and value.utcoffset() == timedelta(minutes=offset)


def test_v2_date_escaped_slashes_decode_and_date_only_is_utc_day():
    raw = json.loads(r'{"d": "\/Date(1492041600000)\/"}')["d"]
    assert parse_date(raw) == date(2017, 4, 13)
    assert parse_date("/Date(1518393600000+0100)/") == date(2018, 2, 12)


@pytest.mark.parametrize("bad", ["/Date(abc)/", "Date(1)", "/Date(1+01)/", "/Date(1+2400)/", ""])
def test_bad_v2_dates_are_invalid_input(bad):
    with pytest.raises(InvalidInputError):
        parse_v2_datetime(bad)


def test_edm_time_iso_and_decimals():
    assert parse_edm_time("PT17H49M05S") == time(17, 49, 5)
    assert parse_edm_time("PT00H00M00S") == time(0, 0)
    assert parse_edm_time("12:30:13") == time(12, 30, 13)
    assert parse_iso_datetime("2024-01-15T08:30:12.1234567Z") == datetime(
        2024, 1, 15, 8, 30, 12, 123456, tzinfo=UTC
    )
    assert parse_iso_datetime("2024-01-15T08:30:12+02:00").utcoffset() == timedelta(hours=2)
    assert parse_decimal("1000.00") == Decimal("1000.00") and parse_decimal(12.5) == Decimal("12.5")
    with pytest.raises(InvalidInputError):
        filter_datetime(datetime(2024, 1, 1), ODataVersion.V4)


# ---- watermarks ---------------------------------------------------------------------------------


def test_watermark_round_trip_is_atomic_canonical_and_monotonic(tmp_path):
    path = tmp_path / "wm" / "watermarks.json"
    assert load_watermarks(path) == Watermarks()
    moment = datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    marks = Watermarks().advanced(EntityKind.PURCHASE_ORDER, moment)
    assert marks.advanced(EntityKind.PURCHASE_ORDER, moment - timedelta(days=1)) is marks
    save_watermarks(path, marks)
    assert path.read_bytes() == (
        b'{"format":"cap.sap.watermarks.v1","marks":{"purchase_order":"2025-06-01T10:00:00Z"}}\n'
    )
    assert [p.name for p in path.parent.iterdir()] == ["watermarks.json"]
    loaded = load_watermarks(path)
    assert loaded == marks
    assert loaded.since(EntityKind.PURCHASE_ORDER) == datetime(2025, 5, 31, 10, 0, tzinfo=UTC)
    assert loaded.since(EntityKind.BUSINESS_PARTNER) is None


def test_unreadable_watermark_names_the_file(tmp_path):
    path = tmp_path / "wm.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(InvalidInputError) as info:
        load_watermarks(path)
    assert info.value.details["file"] == str(path)


def test_change_timestamps():
    bp = {"LastChangeDate": "/Date(1519084800000)/", "LastChangeTime": "PT12H30M13S"}
    assert change_timestamp(EntityKind.BUSINESS_PARTNER, bp) == datetime(2018, 2, 20, 12, 30, 13, tzinfo=UTC)
    new = {"LastChangeDate": None, "CreationDate": "/Date(1518393600000)/", "CreationTime": "PT17H49M05S"}
    assert change_timestamp(EntityKind.BUSINESS_PARTNER, new) == datetime(2018, 2, 12, 17, 49, 5, tzinfo=UTC)
    po = {"LastChangeDateTime": "2024-01-15T08:30:12.1234567Z"}
    assert change_timestamp(EntityKind.PURCHASE_ORDER, po).year == 2024


# ---- config -------------------------------------------------------------------------------------

YAML = """
sap:
  base_url: https://my300000-api.s4hana.cloud.sap/
  odata_version: 4
  sap_client: "100"
  auth: {type: basic, username: COMM_USER, password_env: SAP_PW}
  page_size: 500
  lookback_days: 180
  ubo_source: {type: csv, path: ubos.csv}
  sanctions: [{path: lists/sdn.csv, format: ofac}, {path: /abs/un.xml, format: un}]
  high_risk: high_risk.csv
  policy: lksg-v1
  enforce_mode: audit
  company_id: acme
  company_secret_env: ACME_SECRET
  watermark_file: state/wm.json
  service_paths: {supplier: /custom/A_Supplier}
"""


def test_config_loads_from_yaml_and_resolves_secrets_at_use_time(tmp_path):
    path = tmp_path / "sap.yaml"
    path.write_text(YAML)
    cfg = load_sap_config(path)
    assert cfg.base_url == "https://my300000-api.s4hana.cloud.sap" and cfg.odata_version is ODataVersion.V4
    assert cfg.ubo_source == CsvUboSource(type="csv", path=tmp_path / "ubos.csv")
    assert cfg.sanctions[0].path == tmp_path / "lists/sdn.csv" and str(cfg.sanctions[1].path) == "/abs/un.xml"
    assert cfg.watermark_file == tmp_path / "state/wm.json"
    assert cfg.paths().supplier == "/custom/A_Supplier" and cfg.paths().purchase_order.endswith(
        "/PurchaseOrder"
    )
    env = {"SAP_PW": PASSWORD, "ACME_SECRET": "k3y"}
    auth = cfg.auth.client_auth(env)
    assert auth.password.get_secret_value() == PASSWORD
    assert cfg.company_secret(env) == b"k3y"
    assert PASSWORD not in repr(cfg) + cfg.model_dump_json() + repr(auth) + auth.model_dump_json()
    with pytest.raises(ConfigError) as info:
        cfg.auth.client_auth({})
    assert "SAP_PW" in info.value.message and info.value.details["field"] == "auth.password_env"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        pytest.param({"base_url": "ftp://x"}, "base_url", id="url"),
        pytest.param({"odata_version": 3}, "odata_version", id="version"),
        pytest.param({"sap_client": "1"}, "sap_client", id="client"),
        pytest.param(
            {"auth": {"type": "oauth2", "client_id": "c", "client_secret_env": "E"}}, "auth", id="oauth"
        ),
        pytest.param({"page_size": 0}, "page_size", id="page"),
        pytest.param({"ubo_source": {"type": "ldap"}}, "ubo_source", id="ubo"),
        pytest.param({"sanctions": [{"path": "x", "format": "pdf"}]}, "sanctions.0.format", id="sanctions"),
        pytest.param({"enforce_mode": "lenient"}, "enforce_mode", id="mode"),
        pytest.param({"surprise": 1}, "surprise", id="extra"),
    ],
)
def test_config_errors_name_the_field(patch, field):
    data = {"base_url": "http://localhost:8765", "company_id": "acme", "company_secret_env": "S", **patch}
    with pytest.raises(ConfigError) as info:
        parse_sap_config(data, source="sap.yaml")
    assert info.value.details["field"].startswith(field) and info.value.details["file"] == "sap.yaml"
    assert field.split(".")[0] in info.value.message


def test_config_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("base_url: http://x\ncompany_id: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_sap_config(path)
    assert info.value.details["file"] == str(path) and info.value.details["line"] >= 2


def test_config_defaults():
    cfg = SapConfig(base_url="http://localhost:8765", company_id="a", company_secret_env="S")
    assert cfg.odata_version is ODataVersion.V2 and cfg.auth.client_auth({}).type == "none"
    assert cfg.paths().business_partner == "/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner"
