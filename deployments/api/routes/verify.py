"""``POST /verify``: (a) a ``cap-proof.v3`` or ``v2`` document → the full report; (b) compatibility mode,
an IR (by ``policy_id`` or inline) evaluated over a given context. A FAIL is a 200 with ``result: FAIL``."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter

from core import service
from core.auth import Principal, Scope
from core.compat import evaluate_ir
from core.errors import InvalidInputError
from core.modes import EnforcementMode
from core.policy.ir import PolicyIR, load_ir
from core.proof import parse_proof_obj
from core.reverify import add_proof_drift
from core.verify import Report
from deployments.api.bodies import BoundedJSONRoute
from deployments.api.deps import NowDep, StateDep, VerifyRunner
from deployments.api.models import ErrorBody, Trace, VerifyRequest, VerifyResponse
from deployments.api.state import ApiState

router = APIRouter(tags=["verify"], route_class=BoundedJSONRoute)
DEFAULT_MODE = EnforcementMode.STRICT


@router.post(
    "/verify",
    response_model=VerifyResponse,
    responses={400: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def verify(body: VerifyRequest, caller: VerifyRunner, state: StateDep, now: NowDep) -> VerifyResponse:
    """Verify a proof, or evaluate a policy over a context.

    ``options.enforce_mode`` and ``options.drift_detect`` need verify:admin.
    """
    mode = _mode(body, caller)
    if body.proof is not None:
        report, trace_mode = _verify_proof(body, state, mode, now), "proof"
    else:
        report, trace_mode = evaluate_ir(_ir(body, state), _context(body), mode), _compat_mode(body)
    trace = Trace(
        mode=trace_mode, policy_id=report.policy_id, enforce_mode=mode, drift_detect=body.options.drift_detect
    )
    return VerifyResponse.of(report, trace)


def _mode(body: VerifyRequest, caller: Principal) -> EnforcementMode:
    options = body.options
    if options.enforce_mode is not None or options.drift_detect:
        caller.require(Scope.VERIFY_ADMIN)
    return options.enforce_mode or DEFAULT_MODE


def _verify_proof(body: VerifyRequest, state: ApiState, mode: EnforcementMode, now: datetime) -> Report:
    if body.policy_id is not None or body.ir is not None or body.context is not None:
        raise InvalidInputError(
            "a proof is verified on its own: drop policy_id, ir and context", field="proof"
        )
    proof = parse_proof_obj(body.proof, "<request>.proof")
    report = service.verify_document(
        state.settings,
        proof,
        keyring=state.current_keyring(now),
        mode=mode,
        now=now,
        trust=state.trust(),
        registry=state.registry,
    )
    if body.options.drift_detect:
        report = add_proof_drift(state.settings, report, proof, source="<request>.proof")
    return report


def _ir(body: VerifyRequest, state: ApiState) -> PolicyIR:
    if (body.policy_id is None) == (body.ir is None):
        raise InvalidInputError(
            "give a proof, or exactly one of policy_id and ir",
            field="policy_id",
            expected="proof | policy_id | ir",
        )
    if body.ir is not None:
        return load_ir(json.dumps(body.ir, ensure_ascii=False).encode(), "<request>.ir")
    stored = service.get_policy(state.settings, body.policy_id or "")
    if stored.ir_json is None:
        raise InvalidInputError("stored policy has no compiled IR", field="policy_id", found=stored.id)
    return load_ir(stored.ir_json.encode(), f"policy {stored.id}")


def _context(body: VerifyRequest) -> dict[str, object]:
    return body.context.model_dump() if body.context is not None else {}


def _compat_mode(body: VerifyRequest) -> str:
    return "policy_id" if body.policy_id is not None else "embedded_ir"
