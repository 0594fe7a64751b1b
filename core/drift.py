"""Drift between a proof and its baseline (SPEC §3, docs/formats/drift.md): typed items, a score, a level.

A :class:`Snapshot` is what drift compares: a proof, a manifest or a registry entry reduced to policy
hash, roots, time and signing key. :func:`analyse_drift` is pure: four items (policy 40, root 30,
timestamp 20, signature 10 points at weight 1), score = round-half-up of their sum, computed exactly
with fractions. Drift never blocks: :func:`drift_check` turns a report into a ``drift`` check that is
``ok`` or ``warn``, never ``fail``. :func:`detect_drift` also meters the analysis.

Rotation awareness: a KID is a *recorded successor* of another when the keyring's history records a
rotation from one to the other (events whose detail starts ``old=<kid> new=<kid>``, as core.rotation
writes them; chains count) and it is not revoked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import timedelta
from enum import Enum
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.enforce import worst
from core.errors import InvalidInputError
from core.events import sink
from core.keyring import Keyring
from core.keys import KeyStatus, parse_timestamp
from core.manifest import Manifest, check_manifest_signature
from core.modes import CheckStatus
from core.proof import Proof, check_proof_signature
from core.registry import RegistryEntry
from core.verify import Check, CheckKind, Report

DRIFT_SCHEMA = "cap-drift.v1"
DRIFT_EVENT = "cap.drift.detected"
DEFAULT_EXPECTED_GAP = timedelta(hours=24)


class DriftType(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, metric labels)
    POLICY = "policy"
    ROOT = "root"
    TIMESTAMP = "timestamp"
    SIGNATURE = "signature"

    @property
    def points(self) -> int:
        """What this type contributes to the score at weight 1.0."""
        return _POINTS[self]


_POINTS = {DriftType.POLICY: 40, DriftType.ROOT: 30, DriftType.TIMESTAMP: 20, DriftType.SIGNATURE: 10}


class DriftLevel(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, event payloads)
    """low < 30 ≤ medium ≤ 60 < high."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def level_for(score: int) -> DriftLevel:
    if score < 30:
        return DriftLevel.LOW
    return DriftLevel.MEDIUM if score <= 60 else DriftLevel.HIGH


class Snapshot(BaseModel):
    """The facts drift compares. Absent sub-roots mean only the company root is known."""

    model_config = ConfigDict(frozen=True)
    source: str
    subject: str | None = None
    created_at: str
    policy_hash: str
    company_root: str
    supplier_root: str | None = None
    ubo_root: str | None = None
    kid: str | None = None
    signature_valid: bool | None = None


Values = dict[str, str | None]


class DriftItem(BaseModel):
    """One drift type: its weight (0..1), its points, baseline vs current values and why."""

    model_config = ConfigDict(frozen=True)
    type: DriftType
    weight: float
    points: float
    baseline: Values
    current: Values
    reason: str


class DriftReport(BaseModel):
    """``cap-drift.v1`` (not signed: floats allowed, the score is an int)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    schema_: str = Field(default=DRIFT_SCHEMA, alias="schema")
    subject: str | None
    company_root: str
    baseline: str
    current: str
    expected_gap_seconds: int
    score: int
    level: DriftLevel
    drifted: bool
    items: list[DriftItem]

    @property
    def alerting(self) -> bool:
        """Medium and high drift raise a ``cap.drift.detected`` event and a ``warn`` check."""
        return self.level is not DriftLevel.LOW

    @property
    def drifted_items(self) -> list[DriftItem]:
        return [i for i in self.items if i.weight > 0]


# --- the four items (pure) ----------------------------------------------------------------------------


def _item(
    kind: DriftType, weight: Fraction, baseline: Values, current: Values, reason: str
) -> tuple[DriftItem, Fraction]:
    points = weight * kind.points
    item = DriftItem(
        type=kind,
        weight=float(weight),
        points=float(points),
        baseline=baseline,
        current=current,
        reason=reason,
    )
    return item, points


def policy_drift(b: Snapshot, c: Snapshot) -> tuple[DriftItem, Fraction]:
    same = b.policy_hash == c.policy_hash
    return _item(
        DriftType.POLICY,
        Fraction(0 if same else 1),
        {"policy_hash": b.policy_hash},
        {"policy_hash": c.policy_hash},
        "same policy hash" if same else "policy hash differs: proved under another policy",
    )


def root_drift(b: Snapshot, c: Snapshot) -> tuple[DriftItem, Fraction]:
    fields = ("supplier_root", "ubo_root")
    if any(getattr(s, f) is None for s in (b, c) for f in fields):
        same = b.company_root == c.company_root
        return _item(
            DriftType.ROOT,
            Fraction(0 if same else 1),
            {"company_root": b.company_root},
            {"company_root": c.company_root},
            "same company root" if same else "company root differs (only the company root is known)",
        )
    changed = [f for f in fields if getattr(b, f) != getattr(c, f)]
    shown = changed or list(fields)
    if changed:
        weight, reason = Fraction(len(changed), 2), f"{' and '.join(changed)} changed: {len(changed)} × 0.5"
    elif b.company_root != c.company_root:
        weight, shown = Fraction(1), ["company_root"]
        reason = "company root differs although supplier and UBO roots are equal"
    else:
        weight, reason = Fraction(0), "supplier and UBO roots unchanged"
    return _item(
        DriftType.ROOT, weight, {f: getattr(b, f) for f in shown}, {f: getattr(c, f) for f in shown}, reason
    )


def _microseconds(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def timestamp_drift(b: Snapshot, c: Snapshot, expected: timedelta) -> tuple[DriftItem, Fraction]:
    gap = _microseconds(
        parse_timestamp(c.created_at, field="current.created_at")
        - parse_timestamp(b.created_at, field="baseline.created_at")
    )
    want = _microseconds(expected)
    hours = f"{gap / 3_600_000_000:.2f} h"
    if gap < 0:
        weight, reason = Fraction(1), f"time went backwards: current is {hours[1:]} before the baseline"
    else:
        weight = min(max(Fraction(gap - want, want), Fraction(0)), Fraction(1))
        reason = (
            f"gap {hours} is within the expected {expected / timedelta(hours=1):g} h"
            if weight == 0
            else f"gap {hours} exceeds the expected {expected / timedelta(hours=1):g} h "
            f"by {float(Fraction(gap - want, want)) * 100:.0f} %"
        )
    return _item(
        DriftType.TIMESTAMP, weight, {"created_at": b.created_at}, {"created_at": c.created_at}, reason
    )


_ROTATION_PAIR = re.compile(r"^old=([0-9a-f]{32}) new=([0-9a-f]{32})")


def rotation_edges(keyring: Keyring) -> dict[str, set[str]]:
    """old KID → new KIDs, from history events whose detail starts ``old=<kid> new=<kid>`` (core.rotation)."""
    edges: dict[str, set[str]] = {}
    for event in keyring.history:
        found = _ROTATION_PAIR.match(event.detail or "")
        if found:
            edges.setdefault(found[1], set()).add(found[2])
    return edges


def is_recorded_successor(keyring: Keyring, old: str, new: str) -> bool:
    """True if recorded rotations lead from ``old`` to ``new`` (one or more) and ``new`` is not revoked."""
    entry = keyring.entry(new)
    if entry is None or entry.status is KeyStatus.REVOKED:
        return False
    edges, seen, todo = rotation_edges(keyring), {old}, [old]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt == new:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _signature_reason(b: Snapshot, c: Snapshot, keyring: Keyring | None) -> tuple[bool, str]:
    """(drifted, why) for the current signature against the baseline's key."""
    if c.kid is None:
        return True, "current is not signed"
    if c.signature_valid is False:
        return True, f"signature by {c.kid} is invalid"
    if keyring is not None and keyring.entry(c.kid) is None:
        return True, f"key {c.kid} is unknown to keyring v{keyring.version}"
    if c.kid == b.kid:
        return False, "signed by the baseline's key"
    if b.kid is None:
        return False, "the baseline is unsigned: no key to compare with"
    if keyring is not None and is_recorded_successor(keyring, b.kid, c.kid):
        return False, f"key {c.kid} is the recorded successor of {b.kid} (keyring v{keyring.version} history)"
    where = "no keyring to look up rotations" if keyring is None else "no recorded rotation links them"
    return True, f"key {c.kid} is unrelated to the baseline's key {b.kid}: {where}"


def signature_drift(b: Snapshot, c: Snapshot, keyring: Keyring | None) -> tuple[DriftItem, Fraction]:
    drifted, reason = _signature_reason(b, c, keyring)
    return _item(DriftType.SIGNATURE, Fraction(1 if drifted else 0), {"kid": b.kid}, {"kid": c.kid}, reason)


def round_half_up(value: Fraction) -> int:
    return int((value * 2 + 1) // 2)


def analyse_drift(
    baseline: Snapshot,
    current: Snapshot,
    *,
    keyring: Keyring | None,
    expected_gap: timedelta = DEFAULT_EXPECTED_GAP,
) -> DriftReport:
    """The drift report of ``current`` against ``baseline`` (pure).

    Raises :class:`InvalidInputError` for a non-positive ``expected_gap``, subjects that differ or a bad
    timestamp.
    """
    if expected_gap <= timedelta(0):
        raise InvalidInputError("expected gap must be positive", field="expected_gap", expected="> 0")
    if baseline.subject and current.subject and baseline.subject != current.subject:
        raise InvalidInputError(
            f"baseline is for subject {baseline.subject}, current for {current.subject}",
            field="subject",
            expected="the same subject",
        )
    scored = [
        policy_drift(baseline, current),
        root_drift(baseline, current),
        timestamp_drift(baseline, current, expected_gap),
        signature_drift(baseline, current, keyring),
    ]
    score = round_half_up(sum((p for _, p in scored), Fraction(0)))
    items = [i for i, _ in scored]
    return DriftReport(
        subject=current.subject or baseline.subject,
        company_root=current.company_root,
        baseline=baseline.source,
        current=current.source,
        expected_gap_seconds=int(expected_gap.total_seconds()),
        score=score,
        level=level_for(score),
        drifted=any(i.weight > 0 for i in items),
        items=items,
    )


def observe_drift(report: DriftReport, seconds: float) -> None:
    """Meter one analysis: duration, detections and drifted types. The severity gauge is state, not an
    event: :func:`core.status.record_entry_drift` books registry entries' scores for it. Through
    :func:`core.events.sink`: nothing is loaded or counted where nobody can read it."""
    metrics = sink()
    if metrics is None:
        return
    metrics.DRIFT_DURATION.observe(seconds)
    if report.drifted:
        metrics.DRIFT_DETECTED.inc()
    for item in report.items:
        if item.weight > 0:
            metrics.DRIFT_BY_TYPE.labels(item.type.value).inc()


def detect_drift(
    baseline: Snapshot,
    current: Snapshot,
    *,
    keyring: Keyring | None,
    expected_gap: timedelta = DEFAULT_EXPECTED_GAP,
) -> DriftReport:
    """:func:`analyse_drift`, metered. Raises as :func:`analyse_drift`."""
    start = time.perf_counter()
    report = analyse_drift(baseline, current, keyring=keyring, expected_gap=expected_gap)
    observe_drift(report, time.perf_counter() - start)
    return report


# --- snapshots ----------------------------------------------------------------------------------------


def snapshot_of_proof(
    proof: Proof, source: str, keyring: Keyring | None, *, signature_valid: bool | None = None
) -> Snapshot:
    """A proof's facts. Pass ``signature_valid`` when it is known (just signed, or from a verification
    report); otherwise the signature is checked when the keyring knows the KID, which re-serialises the
    whole proof (about 0.7 s for 10,000 suppliers with sanctions evidence)."""
    m, sig = proof.manifest, proof.signature
    entry = keyring.entry(sig.kid) if keyring is not None and sig is not None else None
    valid = signature_valid
    if valid is None and entry is not None:
        valid = check_proof_signature(proof, entry.public_key)
    return _snapshot(m, source, proof.created_at, sig.kid if sig else None, False if sig is None else valid)


def snapshot_of_manifest(manifest: Manifest, source: str, keyring: Keyring | None) -> Snapshot:
    """A manifest's facts; its first signature is checked when the keyring knows the KID."""
    sig = manifest.signatures[0] if manifest.signatures else None
    entry = keyring.entry(sig.kid) if keyring is not None and sig is not None else None
    valid = check_manifest_signature(manifest, sig, entry.public_key) if entry is not None and sig else None
    return _snapshot(
        manifest, source, manifest.created_at, sig.kid if sig else None, False if sig is None else valid
    )


def _snapshot(m: Manifest, source: str, created_at: str, kid: str | None, valid: bool | None) -> Snapshot:
    """The drift-relevant facts of a manifest, with the signer and whether its signature checked out."""
    return Snapshot(
        source=source,
        subject=m.subject,
        created_at=created_at,
        policy_hash=m.policy.hash,
        company_root=m.company_commitment_root,
        supplier_root=m.supplier_root,
        ubo_root=m.ubo_root,
        kid=kid,
        signature_valid=valid,
    )


def snapshot_of_entry(
    entry: RegistryEntry, *, kid: str | None = None, signature_valid: bool | None = None
) -> Snapshot:
    """A registry entry's recorded facts (time = ``registered_at``, key = the registering KID by default)."""
    return Snapshot(
        source=f"registry:{entry.id}",
        subject=entry.subject,
        created_at=entry.registered_at,
        policy_hash=entry.policy_hash,
        company_root=entry.company_root,
        supplier_root=entry.supplier_root,
        ubo_root=entry.ubo_root,
        kid=kid or entry.kid,
        signature_valid=signature_valid,
    )


def pick_baseline(
    entries: Sequence[RegistryEntry],
    subject: str,
    *,
    entry_id: str | None = None,
    proof_hash: str | None = None,
) -> RegistryEntry | None:
    """The baseline among ``entries`` (newest first): the newest accepted entry of ``subject`` older than
    the entry ``entry_id`` — or, for a proof known by ``proof_hash``, older than its newest registration
    and not a copy of it (the newest accepted entry when the proof is not registered)."""
    pos = next((i for i, e in enumerate(entries) if _is_reference(e, entry_id, proof_hash)), -1)
    return next(
        (
            e
            for e in entries[pos + 1 :]
            if e.subject == subject and e.accepted and (entry_id is not None or e.proof_hash != proof_hash)
        ),
        None,
    )


def _is_reference(entry: RegistryEntry, entry_id: str | None, proof_hash: str | None) -> bool:
    """Whether ``entry`` is the reference: matched by ``entry_id`` if given, else by ``proof_hash``."""
    return entry.id == entry_id if entry_id is not None else entry.proof_hash == proof_hash


# --- reports, checks, events --------------------------------------------------------------------------


def drift_check(drift: DriftReport | None, subject: str | None = None) -> Check:
    """The ``drift`` check of a verification report: ``warn`` for medium/high drift, else ``ok``."""
    if drift is None:
        return Check(
            id="drift",
            kind=CheckKind.DRIFT,
            status=CheckStatus.OK,
            message=f"no baseline: no earlier accepted proof of {subject or 'this subject'}",
        )
    parts = "; ".join(f"{i.type.value} +{i.points:g}: {i.reason}" for i in drift.drifted_items) or "none"
    return Check(
        id="drift",
        kind=CheckKind.DRIFT,
        status=CheckStatus.WARN if drift.alerting else CheckStatus.OK,
        message=f"drift score {drift.score} ({drift.level.value}) against {drift.baseline}: {parts}",
    )


def signature_valid(report: Report) -> bool:
    """Whether a verification report found the proof signed, by a known key, with valid signatures."""
    return report.kid is not None and all(
        c.status is CheckStatus.OK for c in report.checks if c.kind is CheckKind.SIGNATURE
    )


def with_checks(report: Report, *extra: Check) -> Report:
    """``report`` with ``extra`` checks appended and its result recomputed."""
    checks = [*report.checks, *extra]
    return report.model_copy(update={"checks": checks, "result": worst(c.status for c in checks)})


def with_drift(report: Report, drift: DriftReport | None) -> Report:
    """``report`` with its ``drift`` check added (the result can rise to ``warn``, never to ``fail``)."""
    return with_checks(report, drift_check(drift, report.subject))


def current_lists_check(proof: Proof, sanctions_root: str | None) -> Check:
    """Was the proof screened against the sanctions list in force now? ``warn`` when the lists moved on."""
    claimed = proof.manifest.sanctions_root
    if sanctions_root is None or claimed is None:
        what = "no current lists" if sanctions_root is None else "the proof makes no sanctions claim"
        return Check(id="current_lists", kind=CheckKind.EVIDENCE, status=CheckStatus.OK, message=what)
    same = claimed == sanctions_root
    return Check(
        id="current_lists",
        kind=CheckKind.EVIDENCE,
        status=CheckStatus.OK if same else CheckStatus.WARN,
        message="screened against the current sanctions lists"
        if same
        else f"screened against sanctions root {claimed}; the current lists have {sanctions_root}",
    )


class DriftEvent(BaseModel):
    """The arguments of a ``cap.drift.detected`` Prefect event (the flow emits it)."""

    model_config = ConfigDict(frozen=True)
    event: str = DRIFT_EVENT
    resource: dict[str, str]
    payload: dict[str, Any]


def drift_event(drift: DriftReport) -> DriftEvent:
    """The event for one drift report; resource ``cap.company.<company root>``."""
    resource = {"prefect.resource.id": f"cap.company.{drift.company_root}"}
    if drift.subject:
        resource["prefect.resource.name"] = drift.subject
    payload = {
        "score": drift.score,
        "level": drift.level.value,
        "subject": drift.subject,
        "baseline": drift.baseline,
        "current": drift.current,
        "items": [i.model_dump(mode="json") for i in drift.drifted_items],
    }
    return DriftEvent(resource=resource, payload=payload)
