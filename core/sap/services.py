"""The SAP services the adapter reads: entity-set paths, navigation names and ``$select`` allowlists.

Paths (appended to ``base_url``; override per entity set in the config): v2 ``API_BUSINESS_PARTNER`` and
``API_PURCHASEORDER_PROCESS_SRV``; v4 ``api_business_partner`` (A2X, entity sets ``A_BusinessPartner``,
``A_Supplier``) and ``api_purchaseorder_2`` (entity set ``PurchaseOrder``). v4 navigation names carry a
leading underscore (``_PurchaseOrderItem``); the mapping accepts either spelling. The allowlists keep
personal fields (MiddleName, phones, streets, requisitioner names) out of every request.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.sap.wire import ODataVersion


class EntityKind(StrEnum):
    """The entity sets the adapter reads."""

    BUSINESS_PARTNER = "business_partner"
    SUPPLIER = "supplier"
    PURCHASE_ORDER = "purchase_order"


class ServicePaths(BaseModel):
    """Entity-set paths appended to ``base_url``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    business_partner: str
    supplier: str
    purchase_order: str


_BP_V2 = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"
_BP_V4 = "/sap/opu/odata4/sap/api_business_partner/srvd_a2x/sap/businesspartner/0001"
_PO_V2 = "/sap/opu/odata/sap/API_PURCHASEORDER_PROCESS_SRV"
_PO_V4 = "/sap/opu/odata4/sap/api_purchaseorder_2/srvd_a2x/sap/purchaseorder/0001"

DEFAULT_PATHS: dict[ODataVersion, ServicePaths] = {
    ODataVersion.V2: ServicePaths(
        business_partner=f"{_BP_V2}/A_BusinessPartner",
        supplier=f"{_BP_V2}/A_Supplier",
        purchase_order=f"{_PO_V2}/A_PurchaseOrder",
    ),
    ODataVersion.V4: ServicePaths(
        business_partner=f"{_BP_V4}/A_BusinessPartner",
        supplier=f"{_BP_V4}/A_Supplier",
        purchase_order=f"{_PO_V4}/PurchaseOrder",
    ),
}

# Navigation names: v2 uses ``to_X``; v4 A2X services use a leading underscore.
NAV: dict[ODataVersion, dict[str, str]] = {
    ODataVersion.V2: {
        "address": "to_BusinessPartnerAddress",
        "usage": "to_AddressUsage",
        "relationship": "to_BPRelationship",
        "item": "to_PurchaseOrderItem",
    },
    ODataVersion.V4: {
        "address": "_BusinessPartnerAddress",
        "usage": "_AddressUsage",
        "relationship": "_BPRelationship",
        "item": "_PurchaseOrderItem",
    },
}

BP_SELECT = (
    "BusinessPartner",
    "Supplier",
    "BusinessPartnerCategory",
    "BusinessPartnerFullName",
    "OrganizationBPName1",
    "IsMarkedForArchiving",
    "LastChangeDate",
    "LastChangeTime",
    "CreationDate",
    "CreationTime",
)
ADDRESS_SELECT = ("AddressID", "Country", "ValidityStartDate", "ValidityEndDate")
RELATIONSHIP_SELECT = (
    "RelationshipNumber",
    "BusinessPartner1",
    "BusinessPartner2",
    "RelationshipCategory",
    "ValidityStartDate",
    "ValidityEndDate",
)
SUPPLIER_SELECT = ("Supplier", "SupplierName", "SupplierFullName", "DeletionIndicator")
PO_SELECT = (
    "PurchaseOrder",
    "Supplier",
    "SupplyingSupplier",
    "PurchaseOrderDate",
    "PurchasingDocumentDeletionCode",
    "LastChangeDateTime",
    "CreationDate",
)
ITEM_SELECT = ("PurchaseOrderItem", "Subcontractor", "PurchasingDocumentDeletionCode")

Projection = tuple[tuple[str, ...], dict[str, Any]]
"""``(selected fields, {navigation: Projection})`` for one level of ``$select``/``$expand``."""


def select_expand(
    version: ODataVersion, fields: tuple[str, ...] | list[str], navs: dict[str, Projection]
) -> dict[str, str]:
    """``$select``/``$expand`` options for a projection: v2 path syntax or v4 nested options."""
    if version is ODataVersion.V4:
        out = {"$select": ",".join(fields)}
        if navs:
            out["$expand"] = ",".join(_v4_expand(nav, proj) for nav, proj in navs.items())
        return out
    selects, expands = list(fields), []
    stack = [(nav, proj) for nav, proj in navs.items()]
    while stack:
        path, (sub_fields, sub_navs) = stack.pop(0)
        expands.append(path)
        selects += [f"{path}/{f}" for f in sub_fields]
        stack += [(f"{path}/{n}", p) for n, p in sub_navs.items()]
    out = {"$select": ",".join(selects)}
    if expands:
        out["$expand"] = ",".join(expands)
    return out


def _v4_expand(nav: str, projection: Projection) -> str:
    fields, navs = projection
    options = [f"$select={','.join(fields)}"]
    if navs:
        options.append("$expand=" + ",".join(_v4_expand(n, p) for n, p in navs.items()))
    return f"{nav}({';'.join(options)})"
