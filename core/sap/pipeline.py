"""The SAP ingest use case: OData → sanitised records → screening → commitments → proof → register → verify.

:func:`ingest` runs every step in-process (``cap sap ingest``); the ``sap-ingest`` flow calls the same
step functions one task each. Records (names, birth dates) exist only in memory inside these steps:
no CSV is written, and what leaves (:class:`IngestResult`, the registry entry, the audit event, metrics)
holds counts, roots, keyed hashes, list-entry ids and verdicts only. Every run reads the full supplier
set (commitments cover all active suppliers; OData has no tombstones). The proof is built with
``enforce=False`` so a FAIL is still signed, registered (not accepted) and reported with its violations.
Drift is computed against ``registry.latest_accepted(company_id)`` *before* the new proof is registered.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from core import service
from core.commitments import Commitments, RootScheme, Supplier, Ubo, commit
from core.drift import DriftReport, detect_drift, snapshot_of_entry, snapshot_of_proof
from core.errors import ConfigError, InvalidInputError
from core.keys import format_timestamp
from core.modes import EnforcementMode
from core.name_keys import CURRENT_KEY_VERSION, key_of_normalised, normalise_name
from core.prover import ProofBuild, ProofScheme, build_proof
from core.registry import RegistryEntry
from core.sap.config import SapConfig, SapRelationshipsUboSource, load_sap_config
from core.sap.mapping import MappingResult, build_supplier_records, keyed_hash
from core.sap.odata import ODataClient
from core.sap.remote_verify import VerifyOutcome, verify_in_process, verify_remote
from core.sap.report import (
    Finding,
    IngestResult,
    ScreeningSummary,
    drift_summary,
    observe_ingest,
    possible_matches,
)
from core.sap.ubo import UboSet, UboStatus, ubo_collector
from core.screening import ListsFile, SanctionsList, load_lists
from core.settings import Settings
from core.store import audit_log, has_registry, open_registry
from core.trust import TrustedLists

if TYPE_CHECKING:
    import httpx

    from core.zk.proof_v3 import ZkProving


class Extracted(BaseModel):
    """Sanitised records straight from SAP. Holds names: it never leaves the adapter (repr shows counts)."""

    model_config = ConfigDict(frozen=True)
    mapping: MappingResult
    ubos: UboSet

    def __repr__(self) -> str:
        return f"Extracted(suppliers={len(self.mapping.records)}, ubos={len(self.ubos.records)})"

    __str__ = __repr__


class Screened(BaseModel):
    """Commitment records that passed screening preparation. Holds names (repr shows counts)."""

    model_config = ConfigDict(frozen=True)
    suppliers: tuple[Supplier, ...]
    ubos: tuple[Ubo, ...]
    summary: ScreeningSummary

    def __repr__(self) -> str:
        return f"Screened(suppliers={len(self.suppliers)}, ubos={len(self.ubos)})"

    __str__ = __repr__


@dataclass(frozen=True)
class ScreeningLists:
    """The lists document (public roots, high-risk levels) and its sanctions tree, built once per run."""

    file: ListsFile
    sanctions: SanctionsList


# --- steps ----------------------------------------------------------------------------------------


def load_ingest_config(path: str | Path, mode: EnforcementMode | None = None) -> SapConfig:
    """:func:`load_sap_config` plus the policy path taken relative to the file; ``mode`` overrides.

    Raises :class:`ConfigError` (also when no policy is configured).
    """
    config = load_sap_config(path)
    if not config.policy:
        raise ConfigError(
            "the SAP ingest needs a policy",
            file=str(path),
            field="policy",
            expected="a policy file path (relative to the config file)",
        )
    policy = Path(config.policy)
    update: dict[str, Any] = {"policy": str(policy if policy.is_absolute() else Path(path).parent / policy)}
    if mode is not None:
        update["enforce_mode"] = mode
    return config.model_copy(update=update)


def open_client(
    config: SapConfig, env: Mapping[str, str] | None = None, transport: httpx.BaseTransport | None = None
) -> ODataClient:
    """An OData client for ``config`` (secrets read now). Raises :class:`ConfigError` if one is unset."""
    return ODataClient(
        config.base_url,
        version=config.odata_version,
        auth=config.auth.client_auth(env),
        sap_client=config.sap_client,
        page_size=config.page_size,
        paths=config.paths(),
        timeout=config.timeout_seconds,
        max_attempts=config.max_attempts,
        transport=transport,
    )


def extract_records(
    config: SapConfig,
    now: datetime,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Extracted:
    """Stream partners, suppliers and orders and map them (sanitised). Raises :class:`SapError`."""
    collector = ubo_collector(config.ubo_source, as_of=now.date())
    relationships = isinstance(config.ubo_source, SapRelationshipsUboSource)
    ordered_from = (now - timedelta(days=config.lookback_days)).date()
    with open_client(config, env, transport) as client:
        mapping = build_supplier_records(
            client.iter_business_partners(with_relationships=relationships),
            client.iter_suppliers(),
            client.iter_purchase_orders(ordered_from=ordered_from),
            now=now,
            lookback_days=config.lookback_days,
            observers=[collector] if collector else [],
        )
    ubos = (
        collector.result()
        if collector
        else UboSet(status=UboStatus.UNKNOWN, source="none", reason="no_ubo_source")
    )
    return Extracted(mapping=mapping, ubos=ubos)


def load_screening_lists(config: SapConfig, now: datetime) -> ScreeningLists | None:
    """The configured sanctions (and high-risk) lists, or None when none are configured."""
    if config.lists_file is not None:
        lists = load_lists(config.lists_file)
        return ScreeningLists(file=lists, sanctions=lists.sanctions_list())
    if not config.sanctions:
        return None
    sources = [(s.path, s.format) for s in config.sanctions]
    lists = service.build_lists_file(sources, config.high_risk, now)
    return ScreeningLists(file=lists, sanctions=lists.sanctions_list())


def screen_records(extracted: Extracted, lists: ScreeningLists | None, secret: bytes) -> Screened:
    """Commitment records plus exact hits (keyed hashes + list-entry ids); unscreenable names are dropped."""
    suppliers = [Supplier(r.name, r.jurisdiction, r.tier) for r in extracted.mapping.records]
    ubos = [Ubo(u.name, u.birthdate.isoformat(), u.citizenship) for u in extracted.ubos.records]
    version = lists.sanctions.key_version if lists is not None else CURRENT_KEY_VERSION
    kept_s = [s for s in suppliers if normalise_name(s.name, version)]
    kept_u = [u for u in ubos if normalise_name(u.name, version)]
    hits: list[Finding] = []
    if lists is not None:
        hits += _hits(lists.sanctions, "supplier", [s.name for s in kept_s], secret)
        hits += _hits(lists.sanctions, "ubo", [u.name for u in kept_u], secret)
    summary = ScreeningSummary(
        screened_suppliers=len(kept_s),
        screened_ubos=len(kept_u),
        unscreenable=len(suppliers) + len(ubos) - len(kept_s) - len(kept_u),
        hits=tuple(hits),
    )
    return Screened(suppliers=tuple(kept_s), ubos=tuple(kept_u), summary=summary)


def _hits(sanctions: SanctionsList, party: str, names: Sequence[str], secret: bytes) -> list[Finding]:
    """Exact screening-key matches only (near matches go into the proof's evidence)."""
    found = []
    for name in names:
        key = key_of_normalised(sanctions.normalise(name))
        i = bisect.bisect_left(sanctions.keys, key)
        if i < sanctions.count and sanctions.keys[i] == key:
            found.append(
                Finding(party=party, id=keyed_hash(secret, f"{party}:{name}"), refs=sanctions.refs[i])
            )
    return found


def commit_records(screened: Screened, now: datetime, scheme: RootScheme = RootScheme.MERKLE) -> Commitments:
    return commit(screened.suppliers, screened.ubos, scheme, format_timestamp(now))


def build_ingest_proof(
    settings: Settings,
    config: SapConfig,
    screened: Screened,
    commitments: Commitments,
    lists: ScreeningLists | None,
    now: datetime,
) -> ProofBuild:
    """Evaluate the configured policy on the in-memory records under ``config.enforce_mode`` and sign.

    The proof is a ``cap-proof.v3`` when ``settings.proof_scheme`` says so and lists are configured (under
    ``CAP_ZK_SETUP``, else the development setup). A listed name cannot be proved unlisted: that run's
    failing proof is published as v2, so the failure is still registered and verified.
    """
    loaded = service.load_policy(Path(str(config.policy)))
    subject = settings.model_copy(update={"subject": config.company_id})
    manifest = service.make_manifest(subject, commitments, loaded, lists.file if lists else None, now)
    v3 = lists is not None and ProofScheme(settings.proof_scheme) is ProofScheme.V3

    def build(zk: ZkProving | None) -> ProofBuild:
        return build_proof(
            manifest=manifest,
            ir=loaded.compiled.ir,
            suppliers=screened.suppliers,
            ubos=screened.ubos,
            lists=lists.sanctions if lists else None,
            high_risk=lists.file.high_risk if lists else None,
            mode=config.enforce_mode,
            enforce=False,
            signer=service.ensure_signer(settings, now),
            created_at=format_timestamp(now),
            constraints=loaded.compiled.rule_constraints,
            zk=zk,
        )

    if not v3 or lists is None:
        return build(None)
    try:
        return build(service.zk_proving_for(settings, lists.file))
    except InvalidInputError as exc:
        if exc.code != "v3_listed_name":
            raise
        return build(None)


def drift_against_baseline(settings: Settings, built: ProofBuild) -> DriftReport | None:
    """Drift of the new proof against the subject's last accepted registry entry (None: no baseline)."""
    if not has_registry(settings):
        return None
    with open_registry(settings) as registry:
        baseline = registry.latest_accepted(built.proof.manifest.subject)
    if baseline is None:
        return None
    keyring = service.load_local_keyring(settings)
    current = snapshot_of_proof(built.proof, "current", keyring)
    return detect_drift(snapshot_of_entry(baseline), current, keyring=keyring)


def register_ingest_proof(settings: Settings, built: ProofBuild, now: datetime) -> RegistryEntry:
    """Register the proof (accepted unless FAIL) and append a ``sap_ingest`` audit event (hashes only)."""
    entry = service.register_proof(
        settings, built.proof, built.verdict, service.default_signer(settings), now
    )
    m = built.proof.manifest
    audit_log(settings).append(
        "sap_ingest",
        {
            "registry_id": entry.id,
            "subject": m.subject,
            "company_commitment_root": m.company_commitment_root,
            "policy_id": built.proof.policy_id,
            "verdict": built.verdict.value,
            "violations": len(built.violations),
            "supplier_count": built.proof.public.get("supplier_count"),
            "ubo_count": built.proof.public.get("ubo_count"),
        },
        now,
    )
    return entry


def verify_ingest_proof(
    settings: Settings,
    config: SapConfig,
    built: ProofBuild,
    now: datetime,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> VerifyOutcome:
    """Through the API when ``verify_url`` is set, else in-process. Raises :class:`RemoteVerifyError`."""
    if config.verify_url:
        return verify_remote(
            config.verify_url, built.proof, config.enforce_mode, env=env, transport=transport
        )
    return verify_in_process(settings, built.proof, config.enforce_mode, now, configured_lists(config, now))


def configured_lists(config: SapConfig, now: datetime) -> TrustedLists | None:
    """The lists this ingest's config names, as an in-process verifier's anchor (the operator's own)."""
    lists = load_screening_lists(config, now)
    if lists is None:
        return None
    names = [str(config.lists_file)] if config.lists_file else [str(s.path) for s in config.sanctions]
    return TrustedLists(origin=f"SAP config {', '.join(names)}", lists=lists.file)


def summarise(
    config: SapConfig,
    extracted: Extracted,
    screened: Screened,
    built: ProofBuild,
    entry: RegistryEntry,
    verification: VerifyOutcome,
    drift: DriftReport | None,
) -> IngestResult:
    """The run's summary; also counts records and the run in ``cap_sap_ingest_*``."""
    m, mapping = built.proof.manifest, extracted.mapping
    dropped = {k.value: v for k, v in sorted(mapping.dropped.items())}
    if screened.summary.unscreenable:
        dropped["unscreenable_name"] = screened.summary.unscreenable
    result = IngestResult(
        company_id=config.company_id,
        created_at=built.proof.created_at,
        mode=config.enforce_mode,
        suppliers_seen=mapping.suppliers_seen,
        supplier_count=len(screened.suppliers),
        ubo_count=len(screened.ubos),
        ubo_status=extracted.ubos.status,
        orders_used=mapping.orders_used,
        tiers=dict(sorted(Counter(s.tier for s in screened.suppliers).items())),
        dropped=dropped,
        screening=screened.summary.model_copy(update={"possible_matches": possible_matches(built)}),
        supplier_root=m.supplier_root,
        ubo_root=m.ubo_root,
        company_root=m.company_commitment_root,
        sanctions_root=m.sanctions_root,
        jurisdiction_root=m.jurisdiction_root,
        policy_id=built.proof.policy_id,
        policy_hash=m.policy.hash,
        verdict=built.verdict,
        violations=dict(sorted(Counter(v.constraint for v in built.violations).items())),
        registry_id=entry.id,
        accepted=entry.accepted,
        proof_hash=entry.proof_hash,
        verification=verification,
        drift=drift_summary(drift),
    )
    observe_ingest(result)
    return result


# --- the whole use case ---------------------------------------------------------------------------


def ingest(
    config: SapConfig,
    settings: Settings,
    now: datetime,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    verify_transport: httpx.BaseTransport | None = None,
) -> IngestResult:
    """One SAP ingest run, in-process. Raises :class:`SapError`, :class:`ConfigError`, ``CapError``s of the
    list readers and policy loader, or :class:`RemoteVerifyError`; a FAIL verdict is a result, not an error.
    """
    secret = config.company_secret(env)
    extracted = extract_records(config, now, env=env, transport=transport)
    lists = load_screening_lists(config, now)
    screened = screen_records(extracted, lists, secret)
    commitments = commit_records(screened, now)
    built = build_ingest_proof(settings, config, screened, commitments, lists, now)
    drift = drift_against_baseline(settings, built)
    entry = register_ingest_proof(settings, built, now)
    verification = verify_ingest_proof(settings, config, built, now, env=env, transport=verify_transport)
    return summarise(config, extracted, screened, built, entry, verification, drift)
