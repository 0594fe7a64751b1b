"""SAP entities → commitment records, with the field allowlist and the PII sanitiser. No I/O.

Join: ``A_Supplier`` (name) ⋈ ``A_BusinessPartner`` by its ``Supplier`` field (numbers normalised:
trimmed, upper-cased, leading zeros stripped) → the partner's standard address gives the country
(address with usage ``XXDEFAULT``, else the one valid on the as-of day, else the first).

Tiers (from ``API_PURCHASEORDER_PROCESS_SRV``, fields as in the schema extract):
- tier 1: the header ``Supplier`` of a purchase order whose ``PurchaseOrderDate`` lies in the look-back
  window and that is not deleted (``PurchasingDocumentDeletionCode`` empty);
- tier 2: a supplier number named as header ``SupplyingSupplier`` (goods supplier, when it differs from
  ``Supplier``) or as item ``Subcontractor`` (non-deleted items) of such an order, unless it is tier 1;
- any other supplier is not active and is left out (counted as ``inactive``).

Only :class:`SupplierRecord` (``name``, ``jurisdiction``, ``tier``) leaves; addresses, e-mails, phones,
birth dates and everything else stay here. Dropped records are counted by reason code only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.sap.wire import parse_date

# ISO 3166-1 alpha-2, the 249 officially assigned codes.
ISO_ALPHA2 = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW""".split()  # noqa: SIM905
)

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"\+?\(?\d[\d\s()./-]{6,}\d")
_SPACES = re.compile(r"\s+")
_ADDRESS_NAVS = ("to_BusinessPartnerAddress", "_BusinessPartnerAddress")
_USAGE_NAVS = ("to_AddressUsage", "_AddressUsage")
_ITEM_NAVS = ("to_PurchaseOrderItem", "_PurchaseOrderItem")


class SupplierRecord(BaseModel):
    """One row of the supplier commitment CSV: exactly ``name,jurisdiction,tier``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    jurisdiction: str = Field(pattern=r"^[A-Z]{2}$")
    tier: int = Field(ge=1)


class DropReason(StrEnum):
    """Why a supplier did not become a record. Codes only: never a name or number."""

    MISSING_NAME = "missing_name"
    NAME_HAS_CONTACT_DATA = "name_has_contact_data"
    NO_BUSINESS_PARTNER = "no_business_partner"
    MISSING_COUNTRY = "missing_country"
    INVALID_COUNTRY = "invalid_country"
    DELETED = "deleted"
    INACTIVE = "inactive"
    DUPLICATE = "duplicate"


class MappingResult(BaseModel):
    """The records that leave the adapter plus counts; nothing else."""

    model_config = ConfigDict(frozen=True)

    records: tuple[SupplierRecord, ...]
    dropped: dict[DropReason, int]
    suppliers_seen: int
    orders_used: int
    unresolved_tier2: int

    @property
    def tier_counts(self) -> dict[int, int]:
        return dict(Counter(r.tier for r in self.records))


class PartnerObserver(Protocol):
    """Something that wants to see each business partner while it streams past (a UBO collector)."""

    def observe(self, partner: Mapping[str, Any]) -> None: ...


class PartnerFacts(NamedTuple):
    """What the join keeps of a supplier's business partner (allowlisted)."""

    name: str
    country: str | None
    deleted: bool


@dataclass
class OrderIndex:
    """Supplier numbers by role, from the purchase orders in the look-back window."""

    direct: set[str] = field(default_factory=set)
    indirect: set[str] = field(default_factory=set)
    orders_used: int = 0


def keyed_hash(secret: bytes, value: str) -> str:
    """``0x`` + HMAC-SHA256 hex of ``value`` (UTF-8) under ``secret``: for identifiers that leave."""
    return "0x" + hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


def normalise_sap_id(value: Any) -> str:
    """A SAP number in its comparable form: trimmed, upper-case, leading zeros stripped."""
    text = str(value or "").strip().upper()
    stripped = text.lstrip("0")
    return (stripped or ("0" if text else "")) if text.isdigit() else text


def nav_rows(entity: Mapping[str, Any], names: Sequence[str]) -> list[Mapping[str, Any]] | None:
    """An expanded to-many navigation (v2 ``{"results": [...]}`` or v4 list); None if not expanded."""
    for name in names:
        value = entity.get(name)
        if isinstance(value, list):
            return [v for v in value if isinstance(v, Mapping)]
        if isinstance(value, Mapping) and isinstance(value.get("results"), list):
            return [v for v in value["results"] if isinstance(v, Mapping)]
    return None


def clean_name(value: Any) -> tuple[str | None, DropReason | None]:
    """Whitespace-collapsed name, or the reason it cannot leave (empty, or carries an e-mail/phone)."""
    text = _SPACES.sub(" ", str(value or "")).strip()
    if not text:
        return None, DropReason.MISSING_NAME
    if EMAIL.search(text) or PHONE.search(text):
        return None, DropReason.NAME_HAS_CONTACT_DATA
    return text, None


def standard_country(partner: Mapping[str, Any], as_of: date) -> str | None:
    """Country of the partner's standard address (raw, upper-cased), or None without addresses."""
    addresses = nav_rows(partner, _ADDRESS_NAVS) or []
    default = [
        a
        for a in addresses
        if any(u.get("AddressUsage") == "XXDEFAULT" for u in nav_rows(a, _USAGE_NAVS) or [])
    ]
    valid = [a for a in addresses if _valid_on(a, as_of)]
    for chosen in (*default, *valid, *addresses):
        country = str(chosen.get("Country") or "").strip().upper()
        return country or None
    return None


def _valid_on(row: Mapping[str, Any], day: date) -> bool:
    start = parse_date(row.get("ValidityStartDate"), field="ValidityStartDate") or date.min
    end = parse_date(row.get("ValidityEndDate"), field="ValidityEndDate") or date.max
    return start <= day <= end


def index_purchase_orders(orders: Iterable[Mapping[str, Any]], *, window_start: date) -> OrderIndex:
    """Tier-1 and tier-2 supplier numbers from ``orders`` dated on/after ``window_start``."""
    index = OrderIndex()
    for order in orders:
        ordered = parse_date(order.get("PurchaseOrderDate"), field="PurchaseOrderDate")
        if order.get("PurchasingDocumentDeletionCode") or ordered is None or ordered < window_start:
            continue
        supplier = normalise_sap_id(order.get("Supplier"))
        if not supplier:
            continue
        index.orders_used += 1
        index.direct.add(supplier)
        goods = normalise_sap_id(order.get("SupplyingSupplier"))
        if goods and goods != supplier:
            index.indirect.add(goods)
        for item in nav_rows(order, _ITEM_NAVS) or []:
            sub = normalise_sap_id(item.get("Subcontractor"))
            if sub and not item.get("PurchasingDocumentDeletionCode"):
                index.indirect.add(sub)
    return index


def index_business_partners(
    partners: Iterable[Mapping[str, Any]], *, as_of: date, observers: Sequence[PartnerObserver] = ()
) -> dict[str, PartnerFacts]:
    """Allowlisted facts per supplier number; every partner is also shown to ``observers``."""
    facts: dict[str, PartnerFacts] = {}
    for partner in partners:
        for observer in observers:
            observer.observe(partner)
        supplier = normalise_sap_id(partner.get("Supplier"))
        if not supplier or supplier in facts:
            continue
        name = partner.get("OrganizationBPName1") or partner.get("BusinessPartnerFullName") or ""
        deleted = bool(partner.get("IsMarkedForArchiving"))
        facts[supplier] = PartnerFacts(str(name), standard_country(partner, as_of), deleted)
    return facts


def map_suppliers(
    suppliers: Iterable[Mapping[str, Any]], partners: Mapping[str, PartnerFacts], orders: OrderIndex
) -> MappingResult:
    """Stream ``A_Supplier`` rows into records; counts every row that is left out by reason."""
    records: list[SupplierRecord] = []
    dropped: Counter[DropReason] = Counter()
    seen: set[str] = set()
    total = 0
    for supplier in suppliers:
        total += 1
        number = normalise_sap_id(supplier.get("Supplier"))
        if number in seen:
            dropped[DropReason.DUPLICATE] += 1
            continue
        seen.add(number)
        record, reason = _map_one(number, supplier, partners.get(number), orders)
        if record is None:
            dropped[reason or DropReason.MISSING_NAME] += 1
        else:
            records.append(record)
    unresolved = len((orders.direct | orders.indirect) - seen)
    return MappingResult(
        records=tuple(records),
        dropped=dict(dropped),
        suppliers_seen=total,
        orders_used=orders.orders_used,
        unresolved_tier2=unresolved,
    )


def _map_one(
    number: str, supplier: Mapping[str, Any], partner: PartnerFacts | None, orders: OrderIndex
) -> tuple[SupplierRecord | None, DropReason | None]:
    tier = 1 if number in orders.direct else 2 if number in orders.indirect else None
    if tier is None:
        return None, DropReason.INACTIVE
    if supplier.get("DeletionIndicator") or (partner is not None and partner.deleted):
        return None, DropReason.DELETED
    raw = (
        supplier.get("SupplierName") or supplier.get("SupplierFullName") or (partner.name if partner else "")
    )
    name, reason = clean_name(raw)
    if name is None:
        return None, reason
    if partner is None:
        return None, DropReason.NO_BUSINESS_PARTNER
    if partner.country is None:
        return None, DropReason.MISSING_COUNTRY
    if partner.country not in ISO_ALPHA2:
        return None, DropReason.INVALID_COUNTRY
    return SupplierRecord(name=name, jurisdiction=partner.country, tier=tier), None


def build_supplier_records(
    partners: Iterable[Mapping[str, Any]],
    suppliers: Iterable[Mapping[str, Any]],
    orders: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    lookback_days: int,
    observers: Sequence[PartnerObserver] = (),
) -> MappingResult:
    """The whole mapping over three streams, consumed in the order orders → partners → suppliers.

    Pass the client's generators directly; only small per-supplier facts are held in memory.
    """
    window_start = (now - timedelta(days=lookback_days)).date()
    order_index = index_purchase_orders(orders, window_start=window_start)
    partner_facts = index_business_partners(partners, as_of=now.date(), observers=observers)
    return map_suppliers(suppliers, partner_facts, order_index)


def supplier_csv(records: Iterable[SupplierRecord]) -> str:
    """The commitment CSV text (``name,jurisdiction,tier`` with a header row, RFC 4180 quoting)."""

    def quote(text: str) -> str:
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text

    lines = ["name,jurisdiction,tier"] + [f"{quote(r.name)},{r.jurisdiction},{r.tier}" for r in records]
    return "\n".join(lines) + "\n"
