"""The SAP ingest's summary (:class:`IngestResult`) and its metrics: counts, roots, keyed hashes, verdicts.

Nothing in these models can hold a name: screening hits are keyed hashes plus list-entry ids, drift is
reduced to score, level and points per type.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.drift import DriftReport
from core.metrics import SAP_INGEST_RECORDS, SAP_INGEST_RUNS
from core.modes import CheckStatus, EnforcementMode
from core.prover import ProofBuild
from core.sap.remote_verify import VerifyOutcome
from core.sap.ubo import UboStatus


class Finding(BaseModel):
    """An exact sanctions hit: which party (keyed hash of its name) and which list entries."""

    model_config = ConfigDict(frozen=True)
    party: str
    id: str
    refs: tuple[str, ...]


class ScreeningSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    screened_suppliers: int
    screened_ubos: int
    unscreenable: int
    hits: tuple[Finding, ...] = ()
    possible_matches: int = 0


class DriftSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    score: int
    level: str
    baseline: str
    items: dict[str, float]


class IngestResult(BaseModel):
    """The run's summary: counts, roots, verdicts, violations by constraint, drift. No PII."""

    model_config = ConfigDict(frozen=True)
    company_id: str
    created_at: str
    mode: EnforcementMode
    suppliers_seen: int
    supplier_count: int
    ubo_count: int
    ubo_status: UboStatus
    orders_used: int
    tiers: dict[int, int]
    dropped: dict[str, int]
    screening: ScreeningSummary
    supplier_root: str
    ubo_root: str
    company_root: str
    sanctions_root: str | None
    jurisdiction_root: str | None
    policy_id: str
    policy_hash: str
    verdict: CheckStatus
    violations: dict[str, int]
    registry_id: str
    accepted: bool
    proof_hash: str
    verification: VerifyOutcome
    drift: DriftSummary | None

    @property
    def result(self) -> CheckStatus:
        """The worse of the policy verdict and the verification result."""
        return max((self.verdict, self.verification.result), key=lambda s: s.severity)


def possible_matches(built: ProofBuild) -> int:
    """Near matches recorded in the proof's non-membership evidence (for human review)."""
    return sum(
        len(r.evidence.get("possible_matches") or [])
        for r in built.results
        if isinstance(r.evidence.get("possible_matches"), list)
    )


def drift_summary(drift: DriftReport | None) -> DriftSummary | None:
    if drift is None:
        return None
    items = {i.type.value: i.points for i in drift.drifted_items}
    return DriftSummary(score=drift.score, level=drift.level.value, baseline=drift.baseline, items=items)


def observe_ingest(result: IngestResult) -> None:
    """Meter kept and dropped records (by reason code) and the run's overall result."""
    SAP_INGEST_RECORDS.labels("supplier_kept").inc(result.supplier_count)
    SAP_INGEST_RECORDS.labels("ubo_kept").inc(result.ubo_count)
    for reason, count in result.dropped.items():
        SAP_INGEST_RECORDS.labels(f"dropped_{reason}").inc(count)
    SAP_INGEST_RUNS.labels(result.result.value).inc()
