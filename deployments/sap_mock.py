"""A local SAP-like OData server (v2 or v4) for the demo, the tests and the benchmark.

Serves ``A_BusinessPartner`` (addresses and BP relationships expandable), ``A_Supplier`` and purchase
orders (items expandable) with ``$top``/``$skip``/``$skiptoken`` paging and next links, ``$select``,
``$expand``, ``$filter`` (``eq ne ge gt le lt`` joined by ``and``/``or`` with parentheses; literals
``datetime'…'``, ``datetimeoffset'…'``, ``'text'``, v4 bare ISO dates/timestamps), ``$inlinecount``/
``$count``, basic auth, an OAuth2 client-credentials token endpoint and injectable faults.

Data: SAP's own mock business partners (``sap_odata_v2_a_businesspartner_expanded.json``, see
``tests/shared/fixtures/README.md``; they carry e-mail addresses in ``MiddleName``) made into suppliers,
plus generated data (:func:`generate_dataset`) full of deliberate PII and invalid rows. Entities are kept
in the v2 wire form and converted to v4 shapes when served by a v4 app.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from core.sap.services import DEFAULT_PATHS
from core.sap.wire import ODataVersion, parse_datetime
from deployments.sap_mock_data import SapDataset, generate_dataset, load_fixture_dataset

__all__ = [
    "Fault",
    "FaultPlan",
    "SapDataset",
    "create_app",
    "generate_dataset",
    "load_fixture_dataset",
    "running_server",
    "serve",
]

_OFFSET_FIELDS = frozenset(
    {"LastChangeDateTime", "ValidityStartDate", "ValidityEndDate", "ValidFrom", "ValidTo"}
)
_DECIMAL_FIELDS = frozenset({"NetPriceAmount", "OrderQuantity", "NetPriceQuantity"})
_TOKEN = re.compile(r"\(|\)|datetime(?:offset)?'[^']*'|'(?:[^']|'')*'|[^\s()]+")
_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
}


@dataclass
class Fault:
    """The next ``count`` matching requests fail: ``kind`` is ``status``, ``malformed`` or ``shape``."""

    kind: str = "status"
    status: int = 500
    count: int = 1
    retry_after: str | None = None
    path_contains: str | None = None


@dataclass
class FaultPlan:
    """Thread-safe queue of faults; tests add to it while the server runs."""

    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.count > 0 and (fault.path_contains is None or fault.path_contains in path):
                    fault.count -= 1
                    return fault
        return None


# ---- $filter ---------------------------------------------------------------------------------


def _literal(token: str) -> Any:
    if token.startswith(("datetime'", "datetimeoffset'")):
        return parse_datetime(token[token.index("'") + 1 : -1])
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    if token in ("null",):
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", token):
        return parse_datetime(token)
    return token


def parse_filter(text: str) -> Any:
    """A tiny recursive-descent parser: returns nested ``("or"|"and", [...])`` / ``(field, op, value)``."""
    tokens = _TOKEN.findall(text)
    pos = 0

    def expr(level: str) -> Any:
        nonlocal pos
        parts = [expr("and") if level == "or" else factor()]
        while pos < len(tokens) and tokens[pos] == level:
            pos += 1
            parts.append(expr("and") if level == "or" else factor())
        return parts[0] if len(parts) == 1 else (level, parts)

    def factor() -> Any:
        nonlocal pos
        if tokens[pos] == "(":
            pos += 1
            inner = expr("or")
            pos += 1  # ")"
            return inner
        name, op, value = tokens[pos : pos + 3]
        pos += 3
        return (name, op, _literal(value))

    return expr("or")


def _matches(node: Any, entity: dict[str, Any]) -> bool:
    if node[0] in ("or", "and") and isinstance(node[1], list):
        results = (_matches(part, entity) for part in node[1])
        return any(results) if node[0] == "or" else all(results)
    name, op, wanted = node
    value = entity.get(name)
    if wanted is not None and not isinstance(wanted, str):
        value = parse_datetime(value)
    return bool(_OPS[op](value, wanted))


# ---- shapes ----------------------------------------------------------------------------------


@dataclass
class _Shape:
    select: set[str] | None = None
    expand: dict[str, _Shape] = field(default_factory=dict)


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*parts, current] if p]


def _v4_shape(select: str | None, expand: str | None) -> _Shape:
    shape = _Shape(set(_split_top(select, ",")) if select else None)
    for item in _split_top(expand or "", ","):
        name, _, rest = item.partition("(")
        options = dict(o.split("=", 1) for o in _split_top(rest[:-1], ";")) if rest else {}
        child = _v4_shape(options.get("$select"), options.get("$expand"))
        shape.expand["to_" + name.lstrip("_")] = child
    return shape


def _v2_shape(select: str | None, expand: str | None) -> _Shape:
    shape = _Shape()
    for path in _split_top(expand or "", ","):
        node = shape
        for part in path.split("/"):
            node = node.expand.setdefault(part, _Shape())
    for path in _split_top(select or "", ","):
        *navs, leaf = path.split("/")
        node = shape
        for part in navs:
            node = node.expand.setdefault(part, _Shape())
        if leaf in node.expand and not navs:
            continue
        node.select = (node.select or set()) | {leaf}
    return shape


def _v4_value(name: str, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("/Date("):
        moment = parse_datetime(value)
        assert moment is not None
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if name in _OFFSET_FIELDS else moment.date().isoformat()
    if isinstance(value, str) and name.endswith("Time") and value.startswith("PT"):
        hms = re.fullmatch(r"PT(\d+)H(\d+)M(\d+)S", value)
        return f"{hms.group(1)}:{hms.group(2)}:{hms.group(3)}" if hms else value
    if name in _DECIMAL_FIELDS and isinstance(value, str):
        return float(value)
    return value


def render(entity: dict[str, Any], shape: _Shape, version: ODataVersion, uri: str) -> dict[str, Any]:
    """One entity in the v2 or v4 JSON shape, projected by ``$select``/``$expand``."""
    out: dict[str, Any] = {}
    if version is ODataVersion.V2:
        out["__metadata"] = {"id": uri, "uri": uri, "type": "API.Entity"}
    for name, value in entity.items():
        if name.startswith("to_"):
            child = shape.expand.get(name)
            if child is not None:
                rows = [render(r, child, version, f"{uri}/{name}") for r in (value or {}).get("results", [])]
                out[name if version is ODataVersion.V2 else "_" + name[3:]] = (
                    {"results": rows} if version is ODataVersion.V2 else rows
                )
            elif version is ODataVersion.V2 and shape.select is None:
                out[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
        elif shape.select is None or name in shape.select:
            out[name] = value if version is ODataVersion.V2 else _v4_value(name, value)
    for name in shape.expand:  # expanded but absent navigations: empty lists
        key = name if version is ODataVersion.V2 else "_" + name[3:]
        if key not in out:
            out[key] = {"results": []} if version is ODataVersion.V2 else []
    return out


# ---- the app ---------------------------------------------------------------------------------


def _error(
    version: ODataVersion, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    text = {"lang": "en", "value": message} if version is ODataVersion.V2 else message
    body = json.dumps({"error": {"code": code, "message": text}}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


@dataclass
class _State:
    dataset: SapDataset
    version: ODataVersion
    credentials: tuple[str, str] | None
    oauth_clients: dict[str, str]
    faults: FaultPlan
    max_page_size: int
    next_links: bool
    tokens: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    cache: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def collections(self) -> dict[str, tuple[str, list[dict[str, Any]]]]:
        paths = DEFAULT_PATHS[self.version]
        data = self.dataset
        return {
            paths.business_partner: ("BusinessPartner", data.business_partners),
            paths.supplier: ("Supplier", data.suppliers),
            paths.purchase_order: ("PurchaseOrder", data.purchase_orders),
        }

    def authorised(self, header: str | None) -> bool:
        if self.credentials is None and not self.oauth_clients:
            return True
        if header and header.startswith("Bearer ") and header[7:] in self.tokens:
            return True
        if header and header.startswith("Basic ") and self.credentials is not None:
            expected = base64.b64encode(":".join(self.credentials).encode()).decode()
            return secrets.compare_digest(header[6:], expected)
        return False

    def filtered(self, key: str, rows: list[dict[str, Any]], text: str | None) -> list[int]:
        if not text:
            return list(range(len(rows)))
        with self.lock:
            hit = self.cache.get((key, text))
        if hit is None:
            tree = parse_filter(text)
            hit = [i for i, row in enumerate(rows) if _matches(tree, row)]
            with self.lock:
                if len(self.cache) > 64:
                    self.cache.clear()
                self.cache[(key, text)] = hit
        return hit


def create_app(
    dataset: SapDataset,
    odata_version: int = 2,
    *,
    username: str | None = None,
    password: str | None = None,
    faults: FaultPlan | None = None,
    oauth_clients: dict[str, str] | None = None,
    max_page_size: int = 5000,
    next_links: bool = True,
) -> FastAPI:
    """The FastAPI app. ``app.state.sap`` exposes the fault plan and the request log to tests."""
    version = ODataVersion(odata_version)
    creds = (username, password or "") if username else None
    state = _State(
        dataset, version, creds, dict(oauth_clients or {}), faults or FaultPlan(), max_page_size, next_links
    )
    app = FastAPI(title="SAP OData mock", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sap = state

    @app.post("/oauth/token")
    async def token(request: Request) -> Response:
        form = dict(x.split("=", 1) for x in (await request.body()).decode().split("&") if "=" in x)
        auth = request.headers.get("authorization", "")
        client, _, secret = (
            base64.b64decode(auth[6:] or b"").decode().partition(":") if auth else ("", "", "")
        )
        if (
            form.get("grant_type") != "client_credentials"
            or state.oauth_clients.get(client) != secret
            or not client
        ):
            return Response(b'{"error":"invalid_client"}', status_code=401, media_type="application/json")
        value = secrets.token_urlsafe(16)
        state.tokens.add(value)
        return Response(
            json.dumps({"access_token": value, "token_type": "bearer", "expires_in": 3600}).encode(),
            media_type="application/json",
        )

    @app.get("/{path:path}")
    async def collection(path: str, request: Request) -> Response:
        return _serve(state, "/" + path, request)

    return app


def _serve(state: _State, path: str, request: Request) -> Response:
    params = dict(request.query_params)
    state.requests.append({"path": path, "params": params, "auth": request.headers.get("authorization")})
    fault = state.faults.take(path)
    if fault is not None:
        return _fault_response(state.version, fault)
    if not state.authorised(request.headers.get("authorization")):
        return _error(
            state.version,
            401,
            "/IWFND/CM_CONSUMER/401",
            "Unauthorized",
            {"WWW-Authenticate": 'Basic realm="SAP NetWeaver Application Server"'},
        )
    target = state.collections().get(path)
    if target is None:
        return _error(state.version, 404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{path}'.")
    key, rows = target
    try:
        hits = state.filtered(path, rows, params.get("$filter"))
    except (ValueError, IndexError, KeyError) as exc:
        return _error(state.version, 400, "/IWBEP/CM_MGW_RT/022", f"Invalid filter expression: {exc}")
    return _page(state, request, path, key, rows, hits, params)


def _page(
    state: _State,
    request: Request,
    path: str,
    key: str,
    rows: list[dict[str, Any]],
    hits: list[int],
    params: dict[str, str],
) -> Response:
    top = min(int(params.get("$top", 100)), state.max_page_size)
    skip = int(params.get("$skiptoken") or params.get("$skip") or 0)
    version = state.version
    shape = (_v2_shape if version is ODataVersion.V2 else _v4_shape)(
        params.get("$select"), params.get("$expand")
    )
    base = str(request.base_url).rstrip("/") + path
    page = [
        render(rows[i], shape, version, f"{base}('{rows[i].get(key, '')}')") for i in hits[skip : skip + top]
    ]
    following = {k: v for k, v in params.items() if k not in ("$skip", "$skiptoken")} | {
        "$skiptoken": str(skip + top)
    }
    more = state.next_links and skip + top < len(hits)
    if version is ODataVersion.V2:
        body: dict[str, Any] = {"results": page}
        if params.get("$inlinecount") == "allpages":
            body["__count"] = str(len(hits))
        if more:
            body["__next"] = f"{base}?{urlencode(following)}"
        doc: dict[str, Any] = {"d": body}
    else:
        doc = {"@odata.context": f"$metadata#{path.rsplit('/', 1)[-1]}", "value": page}
        if params.get("$count") == "true":
            doc["@odata.count"] = len(hits)
        if more:
            doc["@odata.nextLink"] = f"{path.rsplit('/', 1)[-1]}?{urlencode(following)}"
    return Response(json.dumps(doc, separators=(",", ":")).encode(), media_type="application/json")


def _fault_response(version: ODataVersion, fault: Fault) -> Response:
    if fault.kind == "malformed":
        return Response(b'{"d": {"results": [', media_type="application/json")
    if fault.kind == "shape":
        return Response(b'{"unexpected": true}', media_type="application/json")
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
    return _error(version, fault.status, "/IWBEP/CM_MGW_RT/000", f"Injected fault {fault.status}", headers)


# ---- running it ------------------------------------------------------------------------------


@contextmanager
def running_server(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` with uvicorn on a free port in a thread; yields the base URL and stops on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("SAP mock server failed to start")
            threading.Event().wait(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    odata_version: int = 2,
    n_suppliers: int = 200,
    n_purchase_orders: int = 1000,
    seed: int = 0,
    username: str | None = None,
    password_env: str | None = None,
    dataset: SapDataset | None = None,
) -> None:
    """Serve ``dataset`` (default: a generated one) until interrupted (``cap sap mock-server``)."""
    dataset = dataset if dataset is not None else generate_dataset(n_suppliers, n_purchase_orders, seed)
    password = os.environ.get(password_env) if password_env else None
    app = create_app(dataset, odata_version, username=username, password=password)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
