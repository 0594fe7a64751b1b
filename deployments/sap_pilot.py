"""Pilot datasets for the SAP mock: save/load as JSON and the two edits the pilot scenarios need.

A dataset file is ``{"business_partners": [...], "suppliers": [...], "purchase_orders": [...]}`` in the
OData v2 wire form of :mod:`deployments.sap_mock_data` (``cap sap mock-data`` writes one,
``cap sap mock-server --data FILE`` serves it). Scenario 2 adds an organisation supplier with a recent
purchase order (:func:`add_supplier`); scenario 3 moves a supplier to another country
(:func:`set_supplier_country`), which changes the supplier root.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError, NotFoundError
from core.fsio import atomic_write
from core.sap.mapping import normalise_sap_id
from core.sap.wire import format_v2_datetime
from deployments.sap_mock_data import AS_OF, FOREVER, SapDataset

SANCTIONED_DEMO_NAME = "Trade Center Hesa"  # an OFAC alias ("HESA TRADE CENTER"), other case and order
SANCTIONED_DEMO_NUMBER = "2999001"


def _ms(day: date) -> str:
    return format_v2_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))


def save_dataset(path: str | Path, dataset: SapDataset) -> Path:
    """Write ``dataset`` as JSON (atomically)."""
    return atomic_write(path, json.dumps(asdict(dataset), ensure_ascii=False).encode("utf-8") + b"\n")


def load_dataset(path: str | Path) -> SapDataset:
    """Read a dataset file. Raises :class:`NotFoundError` or :class:`InvalidInputError` naming the file."""
    target = Path(path)
    try:
        doc = json.loads(target.read_bytes())
    except FileNotFoundError as exc:
        raise NotFoundError(f"dataset file not found: {target}", file=str(target)) from exc
    except ValueError as exc:
        raise InvalidInputError("dataset file is not JSON", file=str(target)) from exc
    keys = ("business_partners", "suppliers", "purchase_orders")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in keys):
        raise InvalidInputError(
            "not a SAP mock dataset", file=str(target), expected=f"an object with lists {keys}"
        )
    return SapDataset(**{k: doc[k] for k in keys})


def add_supplier(
    dataset: SapDataset, number: str, name: str, country: str, *, as_of: date = AS_OF
) -> SapDataset:
    """Add an organisation supplier (partner + address, A_Supplier row, one recent purchase order)."""
    if any(
        normalise_sap_id(p.get("BusinessPartner")) == normalise_sap_id(number)
        for p in dataset.business_partners
    ):
        raise InvalidInputError(f"business partner {number} exists already", field="number")
    address = {
        "BusinessPartner": number,
        "AddressID": f"9{number[-5:]}",
        "Country": country.upper(),
        "ValidityStartDate": _ms(date(2020, 1, 1)),
        "ValidityEndDate": FOREVER,
        "to_AddressUsage": {"results": [{"AddressUsage": "XXDEFAULT", "BusinessPartner": number}]},
    }
    dataset.business_partners.append(
        {
            "BusinessPartner": number,
            "Supplier": number,
            "BusinessPartnerCategory": "2",
            "BusinessPartnerFullName": name,
            "OrganizationBPName1": name,
            "IsMarkedForArchiving": False,
            "LastChangeDate": _ms(as_of),
            "LastChangeTime": "PT09H00M00S",
            "CreationDate": _ms(as_of),
            "CreationTime": "PT09H00M00S",
            "to_BusinessPartnerAddress": {"results": [address]},
        }
    )
    dataset.business_partners.sort(key=lambda p: p["BusinessPartner"])
    dataset.suppliers.append(
        {
            "Supplier": number,
            "SupplierName": name,
            "SupplierFullName": name,
            "DeletionIndicator": False,
            "CreationDate": _ms(as_of),
        }
    )
    ordered = as_of - timedelta(days=7)
    dataset.purchase_orders.append(
        {
            "PurchaseOrder": f"47{number[-8:].zfill(8)}",
            "Supplier": number,
            "SupplyingSupplier": "",
            "PurchaseOrderDate": _ms(ordered),
            "CreationDate": _ms(ordered),
            "PurchasingDocumentDeletionCode": "",
            "LastChangeDateTime": format_v2_datetime(
                datetime(ordered.year, ordered.month, ordered.day, tzinfo=UTC), with_offset=True
            ),
            "to_PurchaseOrderItem": {
                "results": [
                    {"PurchaseOrderItem": "10", "Subcontractor": "", "PurchasingDocumentDeletionCode": ""}
                ]
            },
        }
    )
    return dataset


def set_supplier_country(
    dataset: SapDataset, number: str, country: str, *, as_of: date = AS_OF
) -> SapDataset:
    """Move supplier ``number``'s partner addresses to ``country`` (and touch its change date)."""
    partner = _partner_of(dataset, number)
    for address in partner.get("to_BusinessPartnerAddress", {}).get("results", []):
        address["Country"] = country.upper()
    partner["LastChangeDate"] = _ms(as_of)
    return dataset


def _partner_of(dataset: SapDataset, number: str) -> dict[str, Any]:
    wanted = normalise_sap_id(number)
    for partner in dataset.business_partners:
        if normalise_sap_id(partner.get("Supplier")) == wanted:
            return partner
    raise NotFoundError(f"no business partner for supplier {number}", field="supplier")
