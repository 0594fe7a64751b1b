"""Proof build: evaluate the policy's rules on the prover's real data, enforce, sign.

The manifest's roots must be the roots of the records given (else the proof would speak about
other data). With ``enforce=True`` a FAIL verdict refuses the proof; without it, the proof is
built and carries its violations.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from core.commitments import Supplier, Ubo, commit
from core.context import POSSIBLE_MATCH_COUNT, ProverContext, possible_match_total, prover_public
from core.enforce import Violation, record_enforcement, verdict, violations_of
from core.errors import CapError, InvalidInputError
from core.events import sink
from core.manifest import Manifest, ProofInfo, sign_manifest
from core.modes import CheckStatus, EnforcementMode
from core.policy.ir import PolicyIR
from core.policy.select import active_rule_ids
from core.proof import PROOF_SCHEMA, PROOF_SCHEMA_V3, EnforcementInfo, Proof, sign_proof
from core.rules import RuleResult, evaluate_rule
from core.sanctions import RiskLevel
from core.screening import SanctionsList
from core.signing import Signer

if TYPE_CHECKING:
    from core.zk.proof_v3 import ZkProving


class ProofScheme(StrEnum):
    """Which proof ``cap proof build`` makes: v3 proves the screening in zero knowledge (confidential); v2
    discloses every screened key (not confidential, ADR 0004)."""

    V2 = "v2"
    V3 = "v3"


class PolicyFailedError(CapError):
    """Enforcement refused the proof: the verdict under the chosen mode is FAIL."""

    code = "policy_failed"


#: Appended to a refusal caused by a screening rule: where a compliance officer sees which rows matched.
SCREEN_HINT = (
    "; run `cap screen --suppliers F --ubos F --lists F` for the matching rows, listed names and scores"
)


class ProofBuild(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    proof: Proof
    results: list[RuleResult]
    violations: list[Violation]
    verdict: CheckStatus


def check_manifest_matches(manifest: Manifest, suppliers: Sequence[Supplier], ubos: Sequence[Ubo]) -> None:
    """Raise :class:`InvalidInputError` if the manifest's roots are not those of the records."""
    actual = commit(suppliers, ubos, manifest.root_scheme, manifest.created_at)
    for field in ("supplier_root", "ubo_root", "company_commitment_root"):
        if getattr(actual, field) != getattr(manifest, field):
            raise InvalidInputError(
                f"manifest {field} is not the root of the given CSV files",
                field=field,
                expected=getattr(actual, field),
            )


def build_proof(
    *,
    manifest: Manifest,
    ir: PolicyIR,
    suppliers: Sequence[Supplier],
    ubos: Sequence[Ubo],
    lists: SanctionsList | None,
    high_risk: dict[str, RiskLevel] | None,
    mode: EnforcementMode,
    enforce: bool,
    signer: Signer,
    created_at: str,
    constraints: dict[str, str] | None = None,
    zk: ZkProving | None = None,
) -> ProofBuild:
    """Evaluate, enforce and sign. Raises :class:`PolicyFailedError` if ``enforce`` and FAIL.

    With ``zk`` the proof is a ``cap-proof.v3``: the screening evidence is proved in zero knowledge
    (:func:`core.zk.proof_v3.apply_zk`, minutes of CPU) and the manifest signs the screening commitments.
    """
    check_manifest_matches(manifest, suppliers, ubos)
    manifest = manifest.model_copy(
        update={
            "sanctions_root": lists.root_hex if lists is not None else manifest.sanctions_root,
        }
    )
    start = time.perf_counter()
    public = prover_public(suppliers, ubos, high_risk)
    ctx = ProverContext(manifest, suppliers, ubos, lists, public)
    active = set(active_rule_ids(ir, public))
    results = [evaluate_rule(rule, ctx) for rule in ir.rules if rule.id in active]
    if lists is not None:
        public = {**public, POSSIBLE_MATCH_COUNT: possible_match_total(results)}
    violations = violations_of(results, constraints)
    outcome = verdict(violations, mode)
    record_enforcement((v.constraint for v in violations), outcome, mode, time.perf_counter() - start)
    if enforce and outcome is CheckStatus.FAIL:
        screened = any("list_root" in v.evidence for v in violations)
        raise PolicyFailedError(
            f"policy {ir.policy_id} fails in {mode.value} mode: "
            + "; ".join(f"{v.rule_id} ({v.severity.value}): {v.message}" for v in violations)
            + (SCREEN_HINT if screened else ""),
            violations=[v.model_dump(mode="json", exclude={"evidence"}) for v in violations],
        )
    schema = PROOF_SCHEMA
    if zk is not None:
        from core.zk.proof_v3 import apply_zk  # the proving toolchain only when a v3 proof is built

        screening, results = apply_zk(ir, results, suppliers, ubos, zk)
        manifest, schema = manifest.model_copy(update={"screening": screening}), PROOF_SCHEMA_V3
    status = "failed" if outcome is CheckStatus.FAIL else "ok"
    manifest = sign_manifest(
        manifest.model_copy(update={"proof": ProofInfo(type=schema, status=status)}), signer
    )
    proof = Proof(
        schema=schema,
        created_at=created_at,
        manifest=manifest,
        policy_id=ir.policy_id,
        ir_hash=ir.ir_hash,
        ir=ir,
        public=public,
        rules=results,
        enforcement=EnforcementInfo(mode=mode, enforced=enforce, verdict=outcome),
    )
    if (metrics := sink()) is not None:
        metrics.SIGNATURES_CREATED.labels(kid=signer.kid).inc()
    return ProofBuild(
        proof=sign_proof(proof, signer), results=results, violations=violations, verdict=outcome
    )
