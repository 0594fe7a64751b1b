"""SAP S/4HANA adapter: OData client, delta watermarks, mapping + sanitiser, UBO sources, config.

Only :class:`SupplierRecord`/:class:`UboRecord` rows, counts and keyed hashes leave this package;
every other SAP field is dropped inside it.
"""

from core.sap.config import SapConfig, load_sap_config, parse_sap_config
from core.sap.delta import Watermarks, change_timestamp, load_watermarks, save_watermarks
from core.sap.mapping import (
    DropReason,
    MappingResult,
    SupplierRecord,
    build_supplier_records,
    keyed_hash,
    normalise_sap_id,
    supplier_csv,
)
from core.sap.odata import BasicAuth, NoAuth, OAuth2ClientCredentials, ODataClient, SapAuthError, SapError
from core.sap.services import DEFAULT_PATHS, EntityKind, ServicePaths
from core.sap.ubo import UboCollector, UboRecord, UboSet, UboStatus, ubo_collector
from core.sap.wire import ODataVersion, parse_datetime, parse_edm_time, parse_v2_datetime

__all__ = [
    "DEFAULT_PATHS",
    "BasicAuth",
    "DropReason",
    "EntityKind",
    "MappingResult",
    "NoAuth",
    "OAuth2ClientCredentials",
    "ODataClient",
    "ODataVersion",
    "SapAuthError",
    "SapConfig",
    "SapError",
    "ServicePaths",
    "SupplierRecord",
    "UboCollector",
    "UboRecord",
    "UboSet",
    "UboStatus",
    "Watermarks",
    "build_supplier_records",
    "change_timestamp",
    "keyed_hash",
    "load_sap_config",
    "load_watermarks",
    "normalise_sap_id",
    "parse_datetime",
    "parse_edm_time",
    "parse_sap_config",
    "parse_v2_datetime",
    "save_watermarks",
    "supplier_csv",
    "ubo_collector",
]
