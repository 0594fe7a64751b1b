"""Mapping, tier rules, field allowlist / PII sanitiser, UBO sources, keyed hashes. No network."""

import json
import re
from datetime import UTC, date, datetime

import pytest

from core.errors import InvalidInputError
from core.sap.mapping import (
    ISO_ALPHA2,
    DropReason,
    SupplierRecord,
    build_supplier_records,
    keyed_hash,
    normalise_sap_id,
    standard_country,
    supplier_csv,
)
from core.sap.ubo import CsvUboCollector, RelationshipUboCollector, UboStatus
from deployments.sap_mock_data import OWNER_CATEGORY, fixture_path, generate_dataset, load_fixture_dataset

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
RECENT, OLD = "/Date(1748649600000)/", "/Date(1577836800000)/"  # 2025-05-31, 2020-01-01
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+?\d[\d ()/-]{6,}\d")
STREET = re.compile(r"strasse|straße|allee|dietmar|hauptstr|industriestr", re.IGNORECASE)


def partner(number, country="DE", name=None, **extra):
    address = {"AddressID": "1", "Country": country} if country is not None else None
    return {
        "BusinessPartner": number,
        "Supplier": number,
        "BusinessPartnerCategory": "2",
        "BusinessPartnerFullName": name or f"BP {number}",
        "OrganizationBPName1": name or f"BP {number}",
        "MiddleName": f"someone@bp{number}.com",
        "to_BusinessPartnerAddress": {"results": [address] if address else []},
        **extra,
    }


def supplier(number, name=None, **extra):
    return {"Supplier": number, "SupplierName": f"Supplier {number} GmbH" if name is None else name, **extra}


def order(sup, day=RECENT, supplying="", subcontractor="", deleted="", item_deleted=""):
    item = {
        "PurchaseOrderItem": "10",
        "Subcontractor": subcontractor,
        "PurchasingDocumentDeletionCode": item_deleted,
    }
    return {
        "PurchaseOrder": "45",
        "Supplier": sup,
        "SupplyingSupplier": supplying,
        "PurchaseOrderDate": day,
        "PurchasingDocumentDeletionCode": deleted,
        "to_PurchaseOrderItem": {"results": [item]},
    }


def run(partners, suppliers, orders, **kw):
    return build_supplier_records(partners, suppliers, orders, now=NOW, lookback_days=365, **kw)


# ---- tiers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        pytest.param([order("1")], {"1": 1}, id="direct-in-window"),
        pytest.param([order("1", day=OLD)], {}, id="direct-outside-window"),
        pytest.param([order("1", deleted="L")], {}, id="deleted-order"),
        pytest.param([order("1", supplying="2")], {"1": 1, "2": 2}, id="supplying-supplier"),
        pytest.param([order("1", subcontractor="3")], {"1": 1, "3": 2}, id="subcontractor"),
        pytest.param([order("1", subcontractor="3", item_deleted="L")], {"1": 1}, id="deleted-item"),
        pytest.param([order("1", supplying="2"), order("2")], {"1": 1, "2": 1}, id="direct-wins"),
        pytest.param([order("1", supplying="1")], {"1": 1}, id="self-supplying"),
        pytest.param([order("0000000001", subcontractor="002")], {"1": 1, "2": 2}, id="leading-zeros"),
        pytest.param([order("1", day="2025-05-31")], {"1": 1}, id="v4-date"),
    ],
)
def test_tier_rules(orders, expected):
    numbers = ["1", "2", "3"]
    result = run([partner(n) for n in numbers], [supplier(n) for n in numbers], orders)
    got = {r.name.split()[1]: r.tier for r in result.records}
    assert got == expected
    assert result.dropped.get(DropReason.INACTIVE, 0) == 3 - len(expected)


def test_unresolved_tier2_numbers_are_counted():
    result = run([partner("1")], [supplier("1")], [order("1", supplying="77")])
    assert result.unresolved_tier2 == 1 and len(result.records) == 1


# ---- drops ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partners", "suppliers", "reason"),
    [
        pytest.param([partner("1")], [supplier("1", name="  ")], DropReason.MISSING_NAME, id="blank-name"),
        pytest.param(
            [partner("1")],
            [supplier("1", name="Call +49 30 1234567")],
            DropReason.NAME_HAS_CONTACT_DATA,
            id="phone-in-name",
        ),
        pytest.param(
            [partner("1")],
            [supplier("1", name="info@acme.de")],
            DropReason.NAME_HAS_CONTACT_DATA,
            id="email-as-name",
        ),
        pytest.param([], [supplier("1")], DropReason.NO_BUSINESS_PARTNER, id="no-partner"),
        pytest.param(
            [partner("1", country=None)], [supplier("1")], DropReason.MISSING_COUNTRY, id="no-address"
        ),
        pytest.param(
            [partner("1", country="XX")], [supplier("1")], DropReason.INVALID_COUNTRY, id="bad-country"
        ),
        pytest.param([partner("1", country="DEU")], [supplier("1")], DropReason.INVALID_COUNTRY, id="alpha3"),
        pytest.param(
            [partner("1")], [supplier("1", DeletionIndicator=True)], DropReason.DELETED, id="deleted"
        ),
        pytest.param(
            [partner("1", IsMarkedForArchiving=True)], [supplier("1")], DropReason.DELETED, id="archived"
        ),
        pytest.param([partner("1")], [supplier("1"), supplier("0001")], DropReason.DUPLICATE, id="duplicate"),
    ],
)
def test_invalid_records_are_dropped_with_a_reason_code(partners, suppliers, reason):
    result = run(partners, suppliers, [order("1")])
    assert result.dropped[reason] == 1
    assert all(isinstance(k, DropReason) for k in result.dropped)
    dumped = result.model_dump_json()
    assert "acme" not in dumped and "1234567" not in dumped


def test_name_falls_back_to_partner_and_whitespace_is_collapsed():
    result = run([partner("1", name="Alpha   Werk\tAG")], [supplier("1", name="")], [order("1")])
    assert result.records == (SupplierRecord(name="Alpha Werk AG", jurisdiction="DE", tier=1),)


def test_lowercase_country_is_upper_cased():
    result = run([partner("1", country="fr")], [supplier("1")], [order("1")])
    assert result.records[0].jurisdiction == "FR"


def test_standard_address_prefers_xxdefault_then_validity():
    old = {"Country": "PL", "ValidityStartDate": "/Date(0)/", "ValidityEndDate": "/Date(946684800000)/"}
    current = {
        "Country": "CZ",
        "ValidityStartDate": "/Date(0)/",
        "ValidityEndDate": "/Date(253402300799000+0000)/",
    }
    default = {"Country": "AT", "_AddressUsage": [{"AddressUsage": "XXDEFAULT"}]}
    assert standard_country({"to_BusinessPartnerAddress": {"results": [old, current]}}, NOW.date()) == "CZ"
    assert standard_country({"_BusinessPartnerAddress": [old, current, default]}, NOW.date()) == "AT"
    assert standard_country({"to_BusinessPartnerAddress": {"__deferred": {"uri": "x"}}}, NOW.date()) is None


# ---- SAP's own mock data + the PII trap -------------------------------------------------------


def test_sap_fixture_partners_map_and_company_without_address_is_dropped():
    assert fixture_path().exists(), "the SAP mock payload ships in deployments/data"
    data = load_fixture_dataset()
    result = run(data.business_partners, data.suppliers, data.purchase_orders)
    assert [(r.name, r.jurisdiction, r.tier) for r in result.records] == [
        ("John Doe", "DE", 1),
        ("Jane Roe", "US", 1),
        ("John Smith", "DE", 1),
        ("Carla Coe", "DE", 1),
    ]
    assert result.dropped == {DropReason.MISSING_COUNTRY: 1}  # Sample Company Ltd has no address


def test_no_email_phone_or_street_ever_leaves_the_mapping():
    data = generate_dataset(400, 2000, seed=3)
    raw = json.dumps(data.business_partners + data.suppliers + data.purchase_orders)
    assert EMAIL.search(raw) and PHONE.search(raw) and STREET.search(raw)  # the trap is armed
    result = run(data.business_partners, data.suppliers, data.purchase_orders)
    assert len(result.records) > 250 and result.tier_counts[2] > 10
    out = result.model_dump_json() + supplier_csv(result.records)
    assert not EMAIL.search(out), EMAIL.search(out)
    assert not PHONE.search(out), PHONE.search(out)
    assert not STREET.search(out), STREET.search(out)
    middle_names = {p["MiddleName"] for p in data.business_partners if p.get("MiddleName")}
    assert not any(m in out for m in middle_names)
    assert set(json.loads(result.records[0].model_dump_json())) == {"name", "jurisdiction", "tier"}


def test_supplier_csv_quotes_like_rfc4180():
    rows = [SupplierRecord(name='Acme, "Best" GmbH', jurisdiction="DE", tier=1)]
    assert supplier_csv(rows) == 'name,jurisdiction,tier\n"Acme, ""Best"" GmbH",DE,1\n'


# ---- identifiers ------------------------------------------------------------------------------


def test_keyed_hash_is_hmac_sha256_hex():
    # RFC 4231-style well-known vector: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog")
    expected = "0xf7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert keyed_hash(b"key", "The quick brown fox jumps over the lazy dog") == expected
    assert keyed_hash(b"k1", "1018") != keyed_hash(b"k2", "1018")


@pytest.mark.parametrize(
    ("raw", "norm"),
    [("0000001018", "1018"), (" 1018 ", "1018"), ("abc01", "ABC01"), ("0000", "0"), ("", ""), (None, "")],
)
def test_normalise_sap_id(raw, norm):
    assert normalise_sap_id(raw) == norm


def test_iso_list_is_complete():
    assert len(ISO_ALPHA2) == 249 and {"DE", "US", "CN", "SS", "XK"} - ISO_ALPHA2 == {"XK"}


# ---- UBO sources ------------------------------------------------------------------------------


def test_csv_ubos_known_none_and_bad_rows(tmp_path):
    path = tmp_path / "ubos.csv"
    path.write_text(
        "\ufeffname,birthdate,citizenship,extra\nAnna Schmidt,1970-01-02,de,x\n", encoding="utf-8"
    )
    result = CsvUboCollector(path).result()
    assert result.status is UboStatus.KNOWN and result.records[0].citizenship == "DE"
    path.write_text("name,birthdate,citizenship\n")
    assert CsvUboCollector(path).result().status is UboStatus.NONE
    path.write_text("name,birthdate,citizenship\nA,1970-01-02,DE\nB,02.01.1970,DE\n")
    with pytest.raises(InvalidInputError) as info:
        CsvUboCollector(path).result()
    assert info.value.details == {
        "file": str(path),
        "line": 3,
        "column": "birthdate",
        "expected": "YYYY-MM-DD",
    }


def test_relationship_ubos_known_or_unknown_never_none():
    data = generate_dataset(100, 10, seed=1, include_fixture=False)
    collector = RelationshipUboCollector((OWNER_CATEGORY,), as_of=NOW.date())
    run(data.business_partners, data.suppliers, data.purchase_orders, observers=[collector])
    result = collector.result()
    assert result.status is UboStatus.KNOWN and len(result.records) == 4  # every 25th of 100
    assert all(r.citizenship in ISO_ALPHA2 for r in result.records)

    no_categories = RelationshipUboCollector((), as_of=NOW.date())
    no_payload = RelationshipUboCollector((OWNER_CATEGORY,), as_of=NOW.date())
    stripped = [{k: v for k, v in p.items() if k != "to_BPRelationship"} for p in data.business_partners]
    for bp in stripped:
        no_payload.observe(bp)
    assert no_categories.result().status is UboStatus.UNKNOWN
    assert no_payload.result().status is UboStatus.UNKNOWN
    assert no_payload.result().reason == "no_relationships_in_payload"
    assert UboStatus.UNKNOWN != UboStatus.NONE


def test_relationship_outside_validity_is_ignored():
    owner = {
        "BusinessPartner": "9",
        "BusinessPartnerCategory": "1",
        "BusinessPartnerFullName": "Eva Muster",
        "BirthDate": "/Date(0)/",
        "to_BusinessPartnerAddress": {"results": [{"Country": "AT"}]},
    }
    rel = {
        "BusinessPartner1": "9",
        "BusinessPartner2": "1",
        "RelationshipCategory": "ZUBO",
        "ValidityStartDate": "/Date(0)/",
        "ValidityEndDate": "/Date(946684800000)/",
    }
    company = {**partner("1"), "to_BPRelationship": {"results": [rel]}}
    collector = RelationshipUboCollector(("ZUBO",), as_of=date(2025, 1, 1))
    for bp in (owner, company):
        collector.observe(bp)
    assert collector.result().status is UboStatus.UNKNOWN
