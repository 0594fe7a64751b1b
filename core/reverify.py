"""Use cases around drift: re-verifying registered proofs (verification runs), drift of a proof or a
file against its baseline (``--drift-detect``, ``cap drift``).

The CLI, the Prefect tasks and the API call these; the rules live in :mod:`core.verify` and
:mod:`core.drift`. Baseline = an explicit file, else the last accepted registry entry of the same
subject (older than the proof itself when the proof is registered).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from core.digest import sha3_hex
from core.drift import (
    DEFAULT_EXPECTED_GAP,
    DriftLevel,
    DriftReport,
    Snapshot,
    current_lists_check,
    detect_drift,
    pick_baseline,
    signature_valid,
    snapshot_of_entry,
    snapshot_of_manifest,
    snapshot_of_proof,
    with_checks,
    with_drift,
)
from core.errors import CapError, InvalidInputError
from core.keyring import Keyring, load_keyring
from core.manifest import MANIFEST_VERSION, Manifest
from core.modes import CheckStatus, EnforcementMode
from core.proof import SCHEMAS, Proof, parse_proof_bytes, proof_file_bytes
from core.registry import RegistryEntry, check_entry
from core.screening import load_lists
from core.settings import Settings
from core.store import has_registry, keyring_store, lists_store, open_registry
from core.store.keyring import load_stored
from core.store.lists import load_installed
from core.trust import TrustAnchors
from core.verify import Check, CheckKind, Report, report_for_unreadable, verify_proof

# --- snapshots from files and the registry -------------------------------------------------------------


def snapshot_of_bytes(data: bytes, source: str, keyring: Keyring | None) -> Snapshot:
    """A snapshot of a proof (``cap-proof.v2`` or ``.v3``) or a ``manifest.v1.0`` manifest. Raises
    InvalidInputError."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("not a JSON document", file=source, expected="a proof or manifest") from None
    if isinstance(obj, dict) and obj.get("schema") in SCHEMAS:
        return snapshot_of_proof(parse_proof_bytes(data, source), source, keyring)
    if isinstance(obj, dict) and obj.get("version") == MANIFEST_VERSION:
        return snapshot_of_manifest(Manifest.model_validate(obj), source, keyring)
    raise InvalidInputError(
        "neither a proof nor a manifest",
        file=source,
        field="schema",
        expected=f"{' or '.join(SCHEMAS)} or {MANIFEST_VERSION}",
    )


def read_snapshot(path: Path, keyring: Keyring | None) -> Snapshot:
    """:func:`snapshot_of_bytes` of a file. Raises InvalidInputError (also for a missing file)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise InvalidInputError("file not found", file=str(path)) from None
    return snapshot_of_bytes(data, str(path), keyring)


def optional_keyring(settings: Settings, path: Path | None = None) -> Keyring | None:
    """The keyring at ``path`` (must exist) or the local one when there is one."""
    if path is not None:
        return load_keyring(path)
    store = keyring_store(settings)
    return load_stored(store) if store.exists() else None


def subject_baseline(settings: Settings, subject: str, path: Path | None = None) -> Snapshot | None:
    """``path``'s snapshot, else the last accepted registry entry of ``subject`` (call before registering)."""
    if path is not None:
        return read_snapshot(path, None)
    if not has_registry(settings):
        return None
    with open_registry(settings) as registry:
        entry = registry.latest_accepted(subject)
    return snapshot_of_entry(entry) if entry is not None else None


def baseline_for(settings: Settings, proof: Proof, path: Path | None = None) -> Snapshot | None:
    """``path``'s snapshot, else the last accepted entry of the proof's subject older than the proof."""
    if path is not None:
        return read_snapshot(path, None)
    if not has_registry(settings):
        return None
    with open_registry(settings) as registry:
        entries = registry.entries()
    found = pick_baseline(entries, proof.manifest.subject, proof_hash=sha3_hex(proof_file_bytes(proof)))
    return snapshot_of_entry(found) if found is not None else None


# --- drift of one proof or two files ---------------------------------------------------------------------


def proof_drift(
    settings: Settings,
    proof: Proof,
    baseline: Snapshot | None,
    *,
    source: str,
    signature_valid: bool | None = None,
    expected_gap: timedelta = DEFAULT_EXPECTED_GAP,
) -> DriftReport | None:
    """Metered drift of ``proof`` against ``baseline`` (None when there is none). Pass ``signature_valid``
    when known (a proof just built, a verified one): checking it again re-serialises the whole proof."""
    if baseline is None:
        return None
    keyring = optional_keyring(settings)
    current = snapshot_of_proof(proof, source, keyring, signature_valid=signature_valid)
    return detect_drift(baseline, current, keyring=keyring, expected_gap=expected_gap)


def compare_files(
    settings: Settings,
    baseline: Path,
    current: Path,
    *,
    keyring_path: Path | None = None,
    expected_gap: timedelta = DEFAULT_EXPECTED_GAP,
) -> DriftReport:
    """``cap drift``: metered drift of one proof/manifest file against another."""
    keyring = optional_keyring(settings, keyring_path)
    return detect_drift(
        read_snapshot(baseline, keyring),
        read_snapshot(current, keyring),
        keyring=keyring,
        expected_gap=expected_gap,
    )


def add_drift(
    settings: Settings,
    report: Report,
    data: bytes,
    *,
    source: str,
    baseline: Path | None = None,
    expected_gap: timedelta = DEFAULT_EXPECTED_GAP,
) -> Report:
    """``cap verify --drift-detect``: ``report`` with a ``drift`` check (an unreadable proof stays as is)."""
    if report.policy_id is None:
        return report
    return add_proof_drift(
        settings,
        report,
        parse_proof_bytes(data, source),
        source=source,
        baseline=baseline,
        expected_gap=expected_gap,
    )


def add_proof_drift(
    settings: Settings,
    report: Report,
    proof: Proof,
    *,
    source: str,
    baseline: Path | None = None,
    expected_gap: timedelta = DEFAULT_EXPECTED_GAP,
) -> Report:
    """``report`` (of ``proof``) with a ``drift`` check against the subject's baseline (``POST /verify``)."""
    base = baseline_for(settings, proof, baseline)
    drift = proof_drift(
        settings,
        proof,
        base,
        source=source,
        signature_valid=signature_valid(report),
        expected_gap=expected_gap,
    )
    return with_drift(report, drift)


# --- verification runs -----------------------------------------------------------------------------------


def current_sanctions_root(settings: Settings, lists_path: Path | None = None) -> str | None:
    """The sanctions root in force: ``lists_path`` or ``<data>/lists/lists.json`` when present."""
    if lists_path is not None:
        return load_lists(lists_path).sanctions_root
    installed = load_installed(lists_store(settings))
    return installed.sanctions_root if installed is not None else None


def load_registry_entries(settings: Settings, limit: int | None = None) -> list[RegistryEntry]:
    """Registry entries, newest first (none without a registry)."""
    if not has_registry(settings):
        return []
    with open_registry(settings) as registry:
        return registry.entries(limit=limit)


def _entry_check(entry: RegistryEntry, keyring: Keyring) -> Check:
    keys = {k.kid: k.public_key for k in keyring.keys}
    problems = check_entry(entry, keys.get)
    return Check(
        id="registry",
        kind=CheckKind.REGISTRY,
        status=CheckStatus.FAIL if problems else CheckStatus.OK,
        message="; ".join(problems) if problems else f"registry entry {entry.id} verifies",
    )


def reverify_entry(
    entry: RegistryEntry,
    *,
    keyring: Keyring,
    sanctions_root: str | None,
    trust: TrustAnchors,
    mode: EnforcementMode,
    now: datetime,
) -> Report:
    """Verify a registered proof again against the current keyring, trust anchors and lists (never
    raises for bad proofs)."""
    source = f"registry:{entry.id}"
    try:
        proof = parse_proof_bytes(entry.proof_json.encode("utf-8"), source)
    except CapError as exc:
        return report_for_unreadable(exc, mode)
    report = verify_proof(
        proof,
        keyring=keyring,
        mode=mode,
        now=now,
        trust=trust,
        registry=lambda _proof, _forms: _entry_check(entry, keyring),
    )
    return with_checks(report, current_lists_check(proof, sanctions_root))


def entry_drift(
    entry: RegistryEntry,
    entries: Sequence[RegistryEntry],
    report: Report,
    *,
    keyring: Keyring,
    expected_gap: timedelta = DEFAULT_EXPECTED_GAP,
) -> DriftReport | None:
    """Metered drift of a registered proof against its baseline among ``entries`` (newest first)."""
    base = pick_baseline(entries, entry.subject, entry_id=entry.id)
    if base is None:
        return None
    current = snapshot_of_entry(entry, kid=report.kid, signature_valid=signature_valid(report))
    return detect_drift(snapshot_of_entry(base), current, keyring=keyring, expected_gap=expected_gap)


def run_row(entry: RegistryEntry, report: Report, drift: DriftReport | None) -> dict[str, str | int | None]:
    """One row of the verification-run table artifact: verdict and drift first, then who and when."""
    return {
        "result": report.result.value.upper(),
        "failed_checks": ", ".join(c.id for c in report.checks if c.status is CheckStatus.FAIL) or None,
        "drift_level": drift.level.value if drift else None,
        "drift_score": drift.score if drift else None,
        "subject": entry.subject,
        "entry": entry.id,
        "registered_at": entry.registered_at,
        "drift_types": ", ".join(i.type.value for i in drift.drifted_items) if drift else None,
        "kid": report.kid or entry.kid,
        "baseline": drift.baseline if drift else None,
    }


def run_summary(reports: Sequence[Report], drifts: Sequence[DriftReport | None]) -> dict[str, int]:
    """Counts of a verification run: entries by result, drift by level, alerts raised."""
    summary = {"entries": len(reports)}
    summary.update({s.value: sum(r.result is s for r in reports) for s in CheckStatus})
    analysed = [d for d in drifts if d is not None]
    summary["drift_analysed"] = len(analysed)
    summary.update({f"drift_{lv.value}": sum(d.level is lv for d in analysed) for lv in DriftLevel})
    summary["drift_alerts"] = sum(d.alerting for d in analysed)
    return summary


def summary_text(summary: dict[str, int]) -> str:
    return (
        f"{summary['entries']} entries re-verified: {summary['ok']} OK, {summary['warn']} WARN, "
        f"{summary['fail']} FAIL; drift analysed for {summary['drift_analysed']}: "
        f"{summary['drift_low']} low, {summary['drift_medium']} medium, {summary['drift_high']} high"
    )
