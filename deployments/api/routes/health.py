"""``/healthz`` (liveness), ``/readyz`` (registry, keyring, policy store, JWKS) and ``/metrics``."""

from __future__ import annotations

import contextlib
from datetime import datetime

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.errors import CapError
from core.generation import generation_number
from core.metrics import ObservedState, declare_signers, scrape_registry
from core.modes import CheckStatus
from core.status import observe_rotation, observe_status
from core.store import RegistryStore, schema_version
from deployments.api.bodies import BoundedJSONRoute
from deployments.api.config import API_VERSION
from deployments.api.deps import MetricsReader, NowDep, StateDep
from deployments.api.models import Health, Readiness, ReadyCheck
from deployments.api.state import ApiState

router = APIRouter(tags=["health"], route_class=BoundedJSONRoute)


@router.get("/healthz", response_model=Health)
async def healthz(state: StateDep) -> Health:
    return Health(status="OK", version=API_VERSION, build=state.config.build)


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(state: StateDep, now: NowDep) -> Response:
    checks = [
        _database(state, "registry"),
        _keyring(state, now),
        _database(state, "policy_store"),
        _jwks(state),
    ]
    generation, check = _generation(state)
    checks.append(check)
    ready = all(c.status is CheckStatus.OK for c in checks)
    body = Readiness(status="OK" if ready else "FAIL", generation=generation, checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(_: MetricsReader, state: StateDep, now: NowDep) -> Response:
    """Event counters of every process writing to ``PROMETHEUS_MULTIPROC_DIR`` (or this one), and the state
    gauges computed now from the live keyring, the status book and the registry."""
    return Response(generate_latest(scrape_registry(_observed(state, now))), media_type=CONTENT_TYPE_LATEST)


def _observed(state: ApiState, now: datetime) -> ObservedState:
    keyring = None
    with contextlib.suppress(CapError):  # no usable keyring: /readyz says so; the rotation gauges are absent
        keyring = state.current_keyring(now)
        declare_signers(entry.kid for entry in keyring.keys)
    try:
        return observe_status(state.settings.layout, keyring, now, registry=_registry(state))
    except CapError:  # an unreadable status book or registry: keep the keyring gauges
        return observe_rotation(keyring, now)


def _check(name: str, ok: bool, message: str) -> ReadyCheck:
    return ReadyCheck(name=name, status=CheckStatus.OK if ok else CheckStatus.FAIL, message=message)


def _registry(state: ApiState) -> RegistryStore | None:
    return state.registry.get() if state.settings.database.is_postgresql else None


def _database(state: ApiState, name: str) -> ReadyCheck:
    """A store's schema version, on either engine (never created here)."""
    try:
        version = schema_version(state.settings, name)
    except CapError as exc:
        return _check(name, False, exc.message)
    return _check(name, version > 0, f"schema version {version}")


def _keyring(state: ApiState, now: datetime) -> ReadyCheck:
    try:
        keyring = state.keyring.current(now)
        entry = keyring.default_entry
    except CapError as exc:
        return _check("keyring", False, exc.message)
    if not state.settings.database.is_postgresql and not state.settings.layout.keyring.exists():
        return _check("keyring", False, "keyring file is gone (serving the last good copy)")
    refused = state.keyring.last_error
    if refused is not None:
        return _check("keyring", False, f"serving v{keyring.version}; the file is refused: {refused.message}")
    return _check("keyring", True, f"v{keyring.version}, default signer {entry.kid}")


def _generation(state: ApiState) -> tuple[int, ReadyCheck]:
    try:
        number = generation_number(state.settings.data_dir)
    except CapError as exc:
        return 0, _check("generation", False, exc.message)
    return number, _check("generation", True, f"generation {number}")


def _jwks(state: ApiState) -> ReadyCheck:
    ok = state.tokens.keys.ready()
    return _check("jwks", ok, state.tokens.keys.source if ok else "no token keys could be loaded")
