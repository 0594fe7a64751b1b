"""Data for the SAP mock server: SAP's own mock business partners plus seeded generated data.

Everything is in the OData v2 wire form (``/Date(ms)/``, decimals as strings, ``{"results": [...]}``
navigations). The generated rows are deliberately dirty: e-mail addresses in ``MiddleName``, phone
numbers, streets, requisitioner names, invalid countries, empty names, partners without addresses,
deleted orders and orders outside any look-back window. Owner persons linked by ``to_BPRelationship``
(category ``ZUBO``, a customer-namespace ownership category) exist for every 25th organisation.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from core.sap.wire import format_v2_datetime

FOREVER = "/Date(253402300799000+0000)/"
OWNER_CATEGORY = "ZUBO"
AS_OF = date(2025, 6, 30)
_COUNTRIES = ("DE", "DE", "DE", "FR", "PL", "CN", "IN", "US", "TR", "VN", "BD", "BR", "IT", "CZ", "RU")
_WORDS = (
    "Nord",
    "Sued",
    "Alpen",
    "Rhein",
    "Delta",
    "Orion",
    "Kappa",
    "Falke",
    "Linde",
    "Eiche",
    "Atlas",
    "Vega",
)
_FORMS = ("GmbH", "AG", "Ltd", "S.A.", "sp. z o.o.", "Co., Ltd.", "Inc.", "SRL", "KG")
_FIRST = ("Anna", "Jonas", "Mila", "Noah", "Lea", "Paul", "Emma", "Ben", "Sofia", "Elias")
_LAST = ("Schmidt", "Nowak", "Dubois", "Rossi", "Kaya", "Nguyen", "Silva", "Weber", "Khan", "Meyer")


@dataclass
class SapDataset:
    """Entity rows by entity set, in the v2 wire form."""

    business_partners: list[dict[str, Any]] = field(default_factory=list)
    suppliers: list[dict[str, Any]] = field(default_factory=list)
    purchase_orders: list[dict[str, Any]] = field(default_factory=list)


def fixture_path() -> Path:
    """SAP's business-partner mock payload in ``deployments/data`` (``CAP_SAP_BP_FIXTURE`` overrides)."""
    override = os.environ.get("CAP_SAP_BP_FIXTURE")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "data" / "sap_business_partner_mock.json"


def _ms(day: date, hour: int = 0, minute: int = 0, *, offset: bool = False) -> str:
    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
    return format_v2_datetime(moment, with_offset=offset)


def _order(number: str, supplier: str, day: date, rng: random.Random, **extra: Any) -> dict[str, Any]:
    items = [
        {
            "PurchaseOrder": number,
            "PurchaseOrderItem": str(10 * (k + 1)),
            "PurchaseOrderItemText": "Kabelbaum",
            "Subcontractor": extra.pop("subcontractor", "") if k == 0 else "",
            "RequisitionerName": "J. Meyer",
            "DeliveryAddressStreetName": "Industriestrasse",
            "OrderQuantity": f"{rng.randint(1, 500)}",
            "NetPriceAmount": f"{rng.randint(100, 99999) / 100:.2f}",
            "PurchasingDocumentDeletionCode": "",
        }
        for k in range(rng.randint(1, 2))
    ]
    return {
        "PurchaseOrder": number,
        "CompanyCode": "1010",
        "PurchaseOrderType": "NB",
        "Supplier": supplier,
        "SupplyingSupplier": extra.pop("supplying", ""),
        "PurchaseOrderDate": _ms(day),
        "CreationDate": _ms(day),
        "LastChangeDateTime": _ms(day + timedelta(days=rng.randint(0, 20)), rng.randint(0, 23), offset=True),
        "PurchasingDocumentDeletionCode": extra.pop("deleted", ""),
        "SupplierRespSalesPersonName": "Max Mustermann",
        "SupplierPhoneNumber": "+49 6227 7-47474",
        "AddressStreetName": "Dietmar-Hopp-Allee",
        "DocumentCurrency": "EUR",
        "to_PurchaseOrderItem": {"results": items},
    }


def load_fixture_dataset(path: Path | None = None, *, as_of: date = AS_OF) -> SapDataset:
    """SAP's five mock partners, made suppliers (Supplier = BP number), each with one recent order."""
    doc = json.loads((path or fixture_path()).read_text(encoding="utf-8"))
    data = SapDataset()
    rng = random.Random(0)  # noqa: S311 - test data, not crypto
    for n, partner in enumerate(doc["d"]["results"]):
        number = partner["BusinessPartner"]
        data.business_partners.append({**partner, "Supplier": number})
        natural = partner["BusinessPartnerCategory"] == "1"
        name = partner["BusinessPartnerFullName"]
        data.suppliers.append(
            {
                "Supplier": number,
                "SupplierName": name,
                "SupplierFullName": name,
                "IsNaturalPerson": "X" if natural else "",
                "DeletionIndicator": False,
                "CreationDate": partner["CreationDate"],
            }
        )
        data.purchase_orders.append(_order(f"45000000{n:02d}", number, as_of - timedelta(days=30 + n), rng))
    return data


def _partner(
    number: str, supplier: str, name: str, country: str | None, rng: random.Random, *, person: bool
) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    changed = AS_OF - timedelta(days=rng.randint(0, 900))
    address = {
        "BusinessPartner": number,
        "AddressID": str(100000 + int(number) % 900000),
        "ValidityStartDate": _ms(date(2018, 2, 12), offset=True),
        "ValidityEndDate": FOREVER,
        "Country": country,
        "CityName": "Walldorf",
        "PostalCode": "69190",
        "StreetName": "Hauptstrasse",
        "HouseNumber": str(rng.randint(1, 200)),
        "to_AddressUsage": {"results": [{"AddressUsage": "XXDEFAULT", "BusinessPartner": number}]},
        "to_EmailAddress": {"results": [{"EmailAddress": f"{last.lower()}@example-{number}.com"}]},
        "to_PhoneNumber": {"results": [{"PhoneNumber": f"+49 30 {rng.randint(1000000, 9999999)}"}]},
    }
    return {
        "BusinessPartner": number,
        "Supplier": supplier,
        "BusinessPartnerCategory": "1" if person else "2",
        "BusinessPartnerFullName": name,
        "OrganizationBPName1": "" if person else name,
        "FirstName": first if person else "",
        "LastName": last if person else "",
        "MiddleName": f"{first.lower()}.{last.lower()}@firma-{number}.de",
        "BirthDate": _ms(date(1950 + rng.randint(0, 50), rng.randint(1, 12), rng.randint(1, 28)))
        if person
        else None,
        "IsMarkedForArchiving": False,
        "LastChangeDate": _ms(changed) if rng.random() < 0.8 else None,
        "LastChangeTime": f"PT{rng.randint(0, 23):02d}H{rng.randint(0, 59):02d}M{rng.randint(0, 59):02d}S",
        "CreationDate": _ms(date(2018, 2, 12)),
        "CreationTime": "PT17H49M05S",
        "to_BusinessPartnerAddress": {"results": [address] if country is not None else []},
    }


def _supplier_name(i: int, rng: random.Random) -> str:
    if i % 50 == 13:
        return "   "
    if i % 50 == 21:
        return f"Kontakt info@supplier-{i}.com"
    return f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}werk {i} {rng.choice(_FORMS)}"


def generate_dataset(
    n_suppliers: int,
    n_purchase_orders: int,
    seed: int = 0,
    *,
    as_of: date = AS_OF,
    include_fixture: bool = True,
) -> SapDataset:
    """A deterministic dataset: suppliers ``i % 10 < 8`` get orders (tier 1), ``i % 10 == 8`` appear only as
    SupplyingSupplier/Subcontractor (tier 2), ``i % 10 == 9`` have no orders. ~10 % of orders are older than
    a year, ~2 % are deleted. ``i % 50`` = 7 bad country, 13 empty name, 21 e-mail in the name, 29 no address.
    """
    rng = random.Random(seed)  # noqa: S311 - test data, not crypto
    data = load_fixture_dataset(as_of=as_of) if include_fixture else SapDataset()
    direct, indirect = [], []
    for i in range(n_suppliers):
        number = str(2_000_000 + i)
        name = _supplier_name(i, rng)
        country = None if i % 50 == 29 else "XX" if i % 50 == 7 else rng.choice(_COUNTRIES)
        person = i % 40 == 5
        partner = _partner(number, number, name, country, rng, person=person)
        if i % 25 == 0 and not person:
            owner = str(9_000_000 + i)
            owner_name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            data.business_partners.append(
                _partner(owner, "", owner_name, rng.choice(_COUNTRIES), rng, person=True)
            )
            partner["to_BPRelationship"] = {
                "results": [
                    {
                        "RelationshipNumber": f"R{i}",
                        "BusinessPartner1": owner,
                        "BusinessPartner2": number,
                        "RelationshipCategory": OWNER_CATEGORY,
                        "ValidityStartDate": _ms(date(2020, 1, 1)),
                        "ValidityEndDate": "/Date(253402214400000)/",
                    }
                ]
            }
        data.business_partners.append(partner)
        data.suppliers.append(
            {
                "Supplier": number.zfill(10) if i % 7 == 3 else number,
                "SupplierName": name,
                "SupplierFullName": name,
                "VATRegistration": f"DE{rng.randint(100000000, 999999999)}",
                "IsNaturalPerson": "X" if person else "",
                "BirthDate": partner["BirthDate"],
                "DeletionIndicator": i % 97 == 11,
                "PurchasingIsBlocked": False,
                "CreationDate": _ms(date(2018, 2, 12)),
            }
        )
        (direct if i % 10 < 8 else indirect if i % 10 == 8 else []).append(number)
    data.business_partners.sort(key=lambda p: p["BusinessPartner"])
    for j in range(n_purchase_orders if direct else 0):
        old = rng.random() < 0.1
        day = as_of - timedelta(days=rng.randint(400, 1000) if old else rng.randint(0, 360))
        extra: dict[str, Any] = {"deleted": "L" if rng.random() < 0.02 else ""}
        if indirect and j % 5 == 0:
            extra["supplying"] = rng.choice(indirect)
        if indirect and j % 7 == 0:
            extra["subcontractor"] = rng.choice(indirect)
        data.purchase_orders.append(_order(str(4_600_000_000 + j), rng.choice(direct), day, rng, **extra))
    return data
