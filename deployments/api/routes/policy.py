"""``POST /policy/compile`` and ``GET /policy/{policy_id}`` (ETag / If-None-Match → 304)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, Response

from core import service
from core.auth import Scope
from core.errors import InvalidInputError
from core.policy_store import StoredPolicy
from deployments.api.bodies import BoundedJSONRoute
from deployments.api.deps import NowDep, PolicyCompiler, PolicyReader, StateDep
from deployments.api.models import CompileRequest, CompileResponse, ErrorBody, Lint, PolicyResponse

router = APIRouter(prefix="/policy", tags=["policy"], route_class=BoundedJSONRoute)
CACHE_CONTROL = "private, max-age=3600"


def etag_of(ir_hash: str) -> str:
    return f'"ir:{ir_hash}"'


def _policy_text(body: CompileRequest) -> str:
    if (body.policy_yaml is None) == (body.policy is None):
        raise InvalidInputError(
            "give exactly one of policy_yaml and policy",
            field="policy_yaml",
            expected="policy YAML text or a policy object",
        )
    return body.policy_yaml if body.policy_yaml is not None else json.dumps(body.policy, ensure_ascii=False)


@router.post(
    "/compile",
    response_model=CompileResponse,
    responses={400: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def compile_policy(
    body: CompileRequest, caller: PolicyCompiler, state: StateDep, now: NowDep, response: Response
) -> CompileResponse:
    """Lint and compile; with ``persist`` (needs policy:write) store it. Lint errors → 422 with the lints."""
    if body.persist:
        caller.require(Scope.POLICY_WRITE)
    loaded = service.compile_policy_text(_policy_text(body), "<request>", body.lint_mode)
    if body.persist:
        service.store_policy(state.settings, loaded, now)
    c = loaded.compiled
    response.headers["ETag"] = etag_of(c.ir_hash)
    return CompileResponse(
        policy_id=c.policy_id,
        policy_hash=c.policy_hash,
        ir_hash=c.ir_hash,
        ir=json.loads(c.ir_bytes()),
        lints=[Lint(**d.to_dict()) for d in c.lints],
        stored=body.persist,
        etag=etag_of(c.ir_hash),
    )


@router.get(
    "/{policy_id}",
    response_model=PolicyResponse,
    responses={304: {"description": "Not modified"}, 404: {"model": ErrorBody}},
)
def get_policy(
    policy_id: str, _: PolicyReader, state: StateDep, if_none_match: Annotated[str | None, Header()] = None
) -> Response | PolicyResponse:
    stored = service.get_policy(state.settings, policy_id)
    etag = etag_of(stored.ir_hash or stored.hash)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(_view(stored, etag).model_dump_json(), media_type="application/json", headers=headers)


def _matches(header: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def _view(stored: StoredPolicy, etag: str) -> PolicyResponse:
    return PolicyResponse(
        policy_id=stored.id,
        name=stored.name,
        version=stored.version,
        status=stored.status.value,
        policy_hash=stored.hash,
        ir_hash=stored.ir_hash,
        ir=json.loads(stored.ir_json) if stored.ir_json else None,
        etag=etag,
    )
