"""Read-only OData v2/v4 client for SAP S/4HANA: paging, delta, auth, retries, error translation.

The client streams entities page by page (a generator; nothing is loaded at once). It sends ``$top``
and follows ``d.__next`` (v2) or ``@odata.nextLink`` (v4) as opaque links; when a server pages by
``$top`` only, it continues with ``$skip``. Retries 429/5xx and transport failures with bounded
attempts, honouring ``Retry-After`` (seconds or HTTP date); ``sleep`` and ``clock`` are injectable.
httpx exceptions are translated in exactly one place (:meth:`ODataClient._send`). httpx is imported
when a client is built, not at module import: importing httpx also loads ``rich`` (its CLI extra),
which nothing in ``core`` may load at import time.
Wire-value parsing (``/Date(ms)/`` …) lives in :mod:`core.sap.wire`; watermarks in :mod:`core.sap.delta`.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from core.errors import CapError

if TYPE_CHECKING:
    import httpx
from core.sap.services import (
    ADDRESS_SELECT,
    BP_SELECT,
    DEFAULT_PATHS,
    ITEM_SELECT,
    NAV,
    PO_SELECT,
    RELATIONSHIP_SELECT,
    SUPPLIER_SELECT,
    Projection,
    ServicePaths,
    select_expand,
)
from core.sap.wire import ODataVersion, filter_date, filter_datetime

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class SapError(CapError):
    """The SAP system answered with an error, an unexpected payload, or could not be reached."""

    code = "sap_error"


class SapAuthError(SapError):
    """SAP refused the credentials (401) or the authorisation (403)."""

    code = "sap_auth_failed"


class NoAuth(BaseModel):
    """No credentials (local mock server, sandbox behind a proxy)."""

    model_config = ConfigDict(frozen=True)
    type: Literal["none"] = "none"


class BasicAuth(BaseModel):
    """HTTP basic auth with a communication user."""

    model_config = ConfigDict(frozen=True)
    type: Literal["basic"] = "basic"
    username: str
    password: SecretStr


class OAuth2ClientCredentials(BaseModel):
    """OAuth 2.0 client-credentials grant; the token is cached until shortly before expiry."""

    model_config = ConfigDict(frozen=True)
    type: Literal["oauth2"] = "oauth2"
    token_url: str
    client_id: str
    client_secret: SecretStr


ClientAuth = NoAuth | BasicAuth | OAuth2ClientCredentials


def redact_url(url: str) -> str:
    """``url`` without user-info and query (safe to put into messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def sap_error_message(body: bytes) -> tuple[str | None, str | None]:
    """``(code, message)`` from a v2 ``{"error":{"code","message":{"value"}}}`` or v4 error body."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return None, None
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    code = error.get("code")
    return (str(code) if code is not None else None), (str(message) if message is not None else None)


_log = logging.getLogger("cap.sap")  # retry lines: the CLI prints them, Prefect can capture them


def retry_after_seconds(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now_epoch)


class ODataClient:
    """A streaming, read-only OData client for one SAP system. Use as a context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        version: ODataVersion = ODataVersion.V2,
        auth: ClientAuth | None = None,
        sap_client: str | None = None,
        page_size: int = 1000,
        paths: ServicePaths | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_delay: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = ODataVersion(version)
        self.auth: ClientAuth = auth or NoAuth()
        self.sap_client = sap_client
        self.page_size = page_size
        self.paths = paths or DEFAULT_PATHS[self.version]
        self.max_attempts = max(1, max_attempts)
        self.backoff, self.max_delay = backoff, max_delay
        self._sleep, self._clock = sleep, clock
        self._token: tuple[str, float] | None = None
        headers = {"Accept": "application/json"}
        self._httpx: ModuleType = importlib.import_module("httpx")
        self._http: httpx.Client = self._httpx.Client(timeout=timeout, transport=transport, headers=headers)

    def __enter__(self) -> ODataClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # ---- entity sets -------------------------------------------------------------------------

    def iter_business_partners(
        self, *, since: datetime | None = None, with_relationships: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Supplier business partners with their addresses expanded; ``since`` filters by change date.

        ``with_relationships`` also expands BP relationships, selects ``BirthDate`` and reads every
        partner (owners are usually not suppliers) for the relationship UBO source.
        """
        nav = NAV[self.version]
        fields = [*BP_SELECT, *(["BirthDate"] if with_relationships else [])]
        expand: dict[str, Projection] = {
            nav["address"]: (ADDRESS_SELECT, {nav["usage"]: (("AddressUsage",), {})})
        }
        if with_relationships:
            expand[nav["relationship"]] = (RELATIONSHIP_SELECT, {})
        filters = [] if with_relationships else ["Supplier ne ''"]  # owners are not suppliers
        if since is not None:
            day = filter_date(since.date(), self.version)
            filters.insert(0, f"(LastChangeDate ge {day} or CreationDate ge {day})")
        params = {"$orderby": "BusinessPartner"}
        if filters:
            params["$filter"] = " and ".join(filters)
        params.update(select_expand(self.version, fields, expand))
        return self.iter_entities(self.paths.business_partner, params)

    def iter_suppliers(self) -> Iterator[dict[str, Any]]:
        """All ``A_Supplier`` rows (allowlisted fields only). A_Supplier has no change date."""
        params = {"$orderby": "Supplier", **select_expand(self.version, SUPPLIER_SELECT, {})}
        return self.iter_entities(self.paths.supplier, params)

    def iter_purchase_orders(
        self, *, ordered_from: date | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Purchase orders with items; ``ordered_from`` bounds PurchaseOrderDate, ``since`` the change."""
        filters = []
        if ordered_from is not None:
            filters.append(f"PurchaseOrderDate ge {filter_date(ordered_from, self.version)}")
        if since is not None:
            filters.append(f"LastChangeDateTime ge {filter_datetime(since, self.version)}")
        expand: dict[str, Projection] = {NAV[self.version]["item"]: (ITEM_SELECT, {})}
        params = {"$orderby": "PurchaseOrder", **select_expand(self.version, PO_SELECT, expand)}
        if filters:
            params["$filter"] = " and ".join(filters)
        return self.iter_entities(self.paths.purchase_order, params)

    # ---- paging ------------------------------------------------------------------------------

    def iter_entities(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Yield every entity of ``path`` (relative to ``base_url`` unless absolute), page by page.

        Raises :class:`SapError` (or :class:`SapAuthError`) on errors and unexpected payloads.
        """
        url = path if "://" in path else self.base_url + "/" + path.lstrip("/")
        query = {**params, "$top": str(self.page_size)}
        if self.version is ODataVersion.V2:
            query.setdefault("$format", "json")
        if self.sap_client:
            query["sap-client"] = self.sap_client
        total, server_paged, previous = 0, False, None
        next_url: str | None = url
        next_params: dict[str, str] | None = query
        while next_url is not None:
            rows, link = self._page(next_url, next_params)
            if rows and previous is not None and rows[0] == previous:
                raise SapError(f"{redact_url(url)} ignores $skip: the same page came back", expected="paging")
            yield from rows
            total += len(rows)
            server_paged = server_paged or bool(link)
            if link:
                next_url, next_params, previous = self._follow(next_url, link), None, None
            elif len(rows) == self.page_size and not server_paged:
                next_url, next_params, previous = url, {**query, "$skip": str(total)}, rows[0]
            else:
                next_url = None

    def _follow(self, current: str, link: str) -> str:
        """Resolve a next link (opaque, maybe relative) and keep ``sap-client`` on it."""
        target = urljoin(current, link)
        if self.sap_client and "sap-client=" not in target:
            parts = urlsplit(target)
            pairs = [*parse_qsl(parts.query, keep_blank_values=True), ("sap-client", self.sap_client)]
            target = urlunsplit(parts._replace(query=urlencode(pairs)))
        return target

    def _page(self, url: str, params: Mapping[str, str] | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page: ``(rows, next link)``; raises :class:`SapError` on an unexpected shape."""
        doc = self._get_json(url, params)
        if self.version is ODataVersion.V2:
            container = doc.get("d") if isinstance(doc, dict) else None
            rows = container.get("results") if isinstance(container, dict) else None
            link = container.get("__next") if isinstance(container, dict) else None
            expected = 'a v2 collection {"d": {"results": [...]}}'
        else:
            rows = doc.get("value") if isinstance(doc, dict) else None
            link = doc.get("@odata.nextLink") if isinstance(doc, dict) else None
            expected = 'a v4 collection {"value": [...]}'
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise SapError(f"unexpected OData payload from {redact_url(url)}", expected=expected)
        if link is not None and not isinstance(link, str):
            raise SapError(f"next link from {redact_url(url)} is not a string", expected="a URL")
        return rows, link

    # ---- HTTP --------------------------------------------------------------------------------

    def _get_json(self, url: str, params: Mapping[str, str] | None) -> Any:
        response = self._request("GET", url, params=params, headers=self._auth_headers())
        if response.status_code == 401 and isinstance(self.auth, OAuth2ClientCredentials):
            self._token = None  # token revoked or expired early: fetch once more
            response = self._request("GET", url, params=params, headers=self._auth_headers())
        self._raise_for_status(response, url)
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SapError(f"malformed JSON from {redact_url(url)}", expected="a JSON body") from exc

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        basic: tuple[str, str] | None = None,
    ) -> httpx.Response:
        """Send with bounded retries on 429/5xx and transport errors; returns the final response."""
        last: SapError | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._send(method, url, params=params, headers=headers, data=data, basic=basic)
            except SapError as exc:
                last, delay = exc, self._backoff(attempt)
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                last = self._status_error(response, url)
                hint = retry_after_seconds(response.headers.get("Retry-After"), self._clock())
                delay = self._backoff(attempt) if hint is None else min(hint, self.max_delay)
            if attempt < self.max_attempts:
                _log.warning(
                    "%s; retry %d of %d in %.1f s", last.message, attempt + 1, self.max_attempts, delay
                )
                self._sleep(delay)
        assert last is not None
        raise SapError(
            f"{last.message}; gave up after {self.max_attempts} attempts", transient=True, **last.details
        ) from last

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        basic: tuple[str, str] | None,
    ) -> httpx.Response:
        """The one place httpx exceptions are translated into :class:`SapError`."""
        lib = self._httpx
        try:
            response: httpx.Response = self._http.request(
                method, url, params=params, headers=headers, data=data, auth=basic or lib.USE_CLIENT_DEFAULT
            )
        except lib.TimeoutException as exc:
            raise SapError(f"timeout talking to {redact_url(url)}", transient=True) from exc
        except lib.HTTPError as exc:
            raise SapError(f"cannot reach {redact_url(url)}: {type(exc).__name__}", transient=True) from exc
        return response

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_delay, self.backoff * 2 ** (attempt - 1)))

    def _status_error(self, response: httpx.Response, url: str) -> SapError:
        code, message = sap_error_message(response.content)
        text = f"SAP returned HTTP {response.status_code} for {redact_url(url)}"
        if message:
            text += f": {message}"
        transient = response.status_code in RETRY_STATUSES
        return SapError(text, transient=transient, status=response.status_code, sap_code=code)

    def _raise_for_status(self, response: httpx.Response, url: str) -> None:
        status = response.status_code
        if status < 400:
            return
        if status in (401, 403):
            who = f" as user {self.auth.username!r}" if isinstance(self.auth, BasicAuth) else ""
            what = "authentication failed" if status == 401 else "not authorised"
            raise SapAuthError(
                f"SAP {what} (HTTP {status}) for {redact_url(url)}{who}; "
                f"check the {self.auth.type} credentials",
                status=status,
            )
        raise self._status_error(response, url)

    # ---- auth --------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        if isinstance(self.auth, BasicAuth):
            pair = f"{self.auth.username}:{self.auth.password.get_secret_value()}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        if isinstance(self.auth, OAuth2ClientCredentials):
            return {"Authorization": f"Bearer {self._access_token(self.auth)}"}
        return {}

    def _access_token(self, auth: OAuth2ClientCredentials) -> str:
        """A cached client-credentials token; fetched from ``token_url`` when absent or near expiry."""
        now = self._clock()
        if self._token is not None and now < self._token[1]:
            return self._token[0]
        client = (auth.client_id, auth.client_secret.get_secret_value())
        form = {"grant_type": "client_credentials"}
        response = self._request("POST", auth.token_url, data=form, basic=client)
        if response.status_code in (400, 401, 403):
            raise SapAuthError(
                f"OAuth2 token request refused (HTTP {response.status_code}) by {redact_url(auth.token_url)} "
                f"for client {auth.client_id!r}",
                status=response.status_code,
            )
        self._raise_for_status(response, auth.token_url)
        try:
            doc = json.loads(response.content)
            token, lifetime = str(doc["access_token"]), float(doc.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as exc:
            raise SapAuthError(
                f"malformed OAuth2 token response from {redact_url(auth.token_url)}",
                expected='{"access_token": ..., "expires_in": ...}',
            ) from exc
        self._token = (token, now + max(0.0, lifetime - min(60.0, lifetime / 10)))
        return token
