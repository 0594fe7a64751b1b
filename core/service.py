"""One service function per use case; the CLI, the API and the Prefect tasks all call these.

Each function takes explicit inputs (settings, paths or bytes, ``now``) and returns typed results;
writing output files is the caller's choice (see :func:`write_json`). Errors are ``CapError``s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from core.canonical import canonical_bytes, pretty_bytes
from core.commitments import (
    SUPPLIER_COLUMNS,
    UBO_COLUMNS,
    Commitments,
    RootScheme,
    commit,
    read_suppliers,
    read_ubos,
    record_lines,
)
from core.documents import parse_model
from core.errors import ConfigError, InvalidInputError, KeyError_, NotFoundError
from core.fsio import atomic_write
from core.generation import bump_generation, writing_state
from core.keyring import (
    HistoryEvent,
    Keyring,
    bootstrap_keyring,
    keyring_file_bytes,
    validate_keyring,
)
from core.keyring_chain import LinkSigner, sign_link
from core.keys import KeyMetadata, KeyStore, format_timestamp, load_operator_signer, parse_timestamp
from core.lists_refresh import RefreshResult, load_sources
from core.lists_refresh import refresh_lists as refresh_from_sources
from core.manifest import AuditInfo, Manifest, PolicyInfo, build_manifest
from core.modes import CheckStatus, EnforcementMode
from core.name_keys import CURRENT_KEY_VERSION
from core.policy.compile import CompiledPolicy, compile_policy
from core.policy.lint import Diagnostic, LintMode, lint
from core.policy.load import load_policy_file, load_policy_text
from core.policy.v1 import PolicyV1
from core.policy.v2 import PolicyV2
from core.policy_store import StoredPolicy
from core.proof import Proof, proof_file_bytes
from core.prover import ProofBuild, ProofScheme, build_proof
from core.registry import RegistryEntry
from core.sanctions import ListFormat, load_source, read_high_risk
from core.screen_report import Party, ScreenedRow, ScreenReport, screen_rows
from core.screening import ListsFile, SanctionsList, build_lists, check_lists, load_lists
from core.service_verify import load_local_keyring as load_local_keyring
from core.service_verify import registry_check as registry_check
from core.service_verify import verify_document as verify_document
from core.service_verify import verify_file as verify_file
from core.settings import Settings
from core.signing import Ed25519Signer, Signer
from core.store import (
    audit_log,
    has_registry,
    keyring_store,
    lists_store,
    open_policy_store,
    open_registry,
)
from core.store.keyring import load_stored
from core.trust import lists_info

if TYPE_CHECKING:
    from core.zk.proof_v3 import ZkProving


class LoadedPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)
    policy: PolicyV1 | PolicyV2
    compiled: CompiledPolicy

    @property
    def info(self) -> PolicyInfo:
        p = self.policy
        if isinstance(p, PolicyV1):
            return PolicyInfo(name=p.name, version=p.version, hash=self.compiled.policy_hash)
        return PolicyInfo(name=p.id, version=p.version, hash=self.compiled.policy_hash)


def write_json(path: str | Path, model: object) -> Path:
    """Write a model or JSON value pretty and atomically (UTF-8, newline at the end)."""
    return atomic_write(path, pretty_bytes(model) + b"\n")


# --- keys -------------------------------------------------------------------------------------


def keygen(
    settings: Settings, *, now: datetime, owner: str | None = None, valid_days: int = 730
) -> KeyMetadata:
    """Generate a signing key; the first key also starts the keyring as its default signer. The keyring's
    store is asked first, so an unreachable database leaves no key behind."""
    first = not keyring_store(settings).exists()
    store = KeyStore(settings.layout)
    meta = store.generate(owner or settings.owner, now, valid_days)
    if first:
        save_local_keyring(settings, bootstrap_keyring(meta, now, actor="cap keys keygen"), now)
    return meta


def keyring_link_signer(
    settings: Settings, keyring: Keyring, operator: bool = False
) -> tuple[Signer, LinkSigner]:
    """Who signs ``keyring``'s link: the operator key when asked, or for the first keyring when
    ``CAP_OPERATOR_KEY`` is set; else the outgoing default signer (the one of the keyring on disk);
    else (first keyring or unsigned data dir, no operator key) its own default signer as a bootstrap link,
    which is refused once operator keys are pinned. Raises :class:`ConfigError`, :class:`KeyError_`."""
    ring, store = keyring_store(settings), KeyStore(settings.layout)
    if operator or (not ring.exists() and settings.operator_key_file is not None):
        if settings.operator_key_file is None:
            raise ConfigError(
                "no operator key: set CAP_OPERATOR_KEY to its PEM file", field="CAP_OPERATOR_KEY"
            )
        return load_operator_signer(settings.operator_key_file), LinkSigner.OPERATOR
    chain = ring.chain() if ring.exists() else None
    if chain is None or not chain.links:
        return store.signer(keyring.default_signing_kid), LinkSigner.BOOTSTRAP
    try:
        return store.signer(load_stored(ring).default_signing_kid), LinkSigner.OUTGOING
    except (KeyError_, NotFoundError):  # e.g. reverting a step whose new key is gone: its signer undoes it
        last = chain.links[-1]
        if last.signer is not LinkSigner.OUTGOING:
            raise
        return store.signer(last.signer_kid), LinkSigner.OUTGOING


def _may_stay_unsigned(settings: Settings) -> bool:
    """A legacy unsigned data dir (no chain, no pinned operator key) whose signer's key is not here stays
    unsigned rather than failing; a signed one never does."""
    return not settings.operator_public_keys and keyring_store(settings).chain() is None


def save_local_keyring(
    settings: Settings,
    keyring: Keyring,
    now: datetime,
    *,
    operator: bool = False,
    expected: int | None = None,
) -> Keyring:
    """Sign (see :func:`keyring_link_signer`), save the data dir's keyring and raise the generation —
    never while a restore replaces the directory. The link is written before the keyring, so a reader
    never sees a keyring without its link.

    Raises what :func:`save_keyring` raises, :class:`KeyError_` when the signer's key is unavailable,
    and the retryable ``state_restoring`` during a restore; :class:`ConflictError` ``keyring_changed`` when
    the stored version is not ``expected`` (a stale writer; in one transaction on PostgreSQL).
    """
    store = keyring_store(settings)
    with writing_state(settings.data_dir):
        validate_keyring(keyring, source=store.name)
        link = None
        try:
            signer, role = keyring_link_signer(settings, keyring, operator)
        except (KeyError_, NotFoundError) as exc:
            if exc.code not in ("private_key_missing", "key_not_found") or not _may_stay_unsigned(settings):
                raise
        else:
            link = sign_link(keyring, keyring_file_bytes(keyring), signer, role)
        store.write(keyring, link, expected=expected)
        bump_generation(settings.data_dir, f"keyring v{keyring.version}", now)
    return keyring


ACTION_ANCHOR = "anchor"


def anchor_keyring(settings: Settings, now: datetime, *, actor: str = "cap keys anchor") -> Keyring:
    """An operator vouches for the keyring on disk as it is (e.g. after restoring a legacy, unsigned backup):
    its content as version + 1, signed by the operator key, which must be pinned. Refuses a version below
    the floor. Raises :class:`ConfigError` (no or unpinned operator key), RotationError
    ``keyring_rollback``."""
    if settings.operator_key_file is None:
        raise ConfigError("no operator key: set CAP_OPERATOR_KEY to its PEM file", field="CAP_OPERATOR_KEY")
    operator = load_operator_signer(settings.operator_key_file)
    if operator.public_key_b64 not in settings.operator_public_keys:
        raise ConfigError(
            "the operator key is not pinned: add its public key to CAP_OPERATOR_PUBLIC_KEYS",
            field="CAP_OPERATOR_PUBLIC_KEYS",
            found=operator.kid,
        )
    store = keyring_store(settings)
    current = load_stored(store, min_version=store.floor())
    version = current.version + 1
    event = HistoryEvent(
        version=version,
        action=ACTION_ANCHOR,
        actor=actor,
        at=format_timestamp(now),
        detail=f"operator {operator.kid}",
    )
    anchored = current.model_copy(update={"version": version, "history": (*current.history, event)})
    return save_local_keyring(settings, anchored, now, operator=True)


def list_keys(settings: Settings) -> list[KeyMetadata]:
    return KeyStore(settings.layout).list()


def show_key(settings: Settings, kid: str) -> KeyMetadata:
    return KeyStore(settings.layout).get(kid)


def default_signer(settings: Settings) -> Ed25519Signer:
    """The keyring's default signer, loaded from its 0600 PEM file."""
    keyring = load_local_keyring(settings)
    return KeyStore(settings.layout).signer(keyring.default_signing_kid)


def ensure_signer(settings: Settings, now: datetime) -> Ed25519Signer:
    """The default signer, creating a first key and keyring on a fresh data directory."""
    if not keyring_store(settings).exists():
        keygen(settings, now=now)
    return default_signer(settings)


# --- commitments, lists, policies ------------------------------------------------------------


def commit_files(suppliers: Path, ubos: Path, scheme: RootScheme, now: datetime) -> Commitments:
    """Commit to two CSV files (roots and counts; the records stay with the caller)."""
    return commit(
        read_suppliers(_existing(suppliers)), read_ubos(_existing(ubos)), scheme, format_timestamp(now)
    )


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise InvalidInputError("file not found" if not path.exists() else "not a file", file=str(path))
    return path


def build_lists_file(
    sources: Sequence[tuple[Path, ListFormat]], high_risk: Path | None, now: datetime
) -> ListsFile:
    """Screening keys and roots over one or more sanctions lists (and optional high-risk levels)."""
    if not sources:
        raise InvalidInputError("at least one sanctions list is needed", field="sanctions")
    loaded = [load_source(path, fmt) for path, fmt in sources]
    entries = [e for item in loaded for e in item.entries]
    sanctions = SanctionsList.from_entries(entries, [str(p) for p, _ in sources], CURRENT_KEY_VERSION)
    levels = read_high_risk(high_risk) if high_risk is not None else None
    return build_lists(sanctions, [item.source for item in loaded], now, levels)


def screen_files(
    suppliers: Path, ubos: Path | None, lists: ListsFile, threshold: float = 0.9
) -> ScreenReport:
    """Which supplier (and UBO) rows match which list entries, exactly or nearly: a local report only.

    Raises InvalidInputError (bad CSV, nameless name, threshold out of range) naming file and line.
    """
    names = [s.name for s in read_suppliers(_existing(suppliers))]
    lines = record_lines(suppliers, SUPPLIER_COLUMNS)
    rows = [
        ScreenedRow(Party.SUPPLIER, str(suppliers), n, name) for n, name in zip(lines, names, strict=True)
    ]
    if ubos is not None:
        names = [u.name for u in read_ubos(_existing(ubos))]
        lines = record_lines(ubos, UBO_COLUMNS)
        rows += [ScreenedRow(Party.UBO, str(ubos), n, x) for n, x in zip(lines, names, strict=True)]
    return screen_rows(lists.sanctions_list(), rows, threshold)


def read_lists(
    lists: Path | None, sanctions: Path | None, fmt: ListFormat | None, high_risk: Path | None, now: datetime
) -> ListsFile | None:
    """A lists file from ``--lists`` or built on the fly from ``--sanctions/--format``."""
    if lists is not None:
        return load_lists(lists)
    if sanctions is None:
        if high_risk is not None:
            raise InvalidInputError("--high-risk needs --sanctions or --lists", field="high_risk")
        return None
    if fmt is None:
        raise InvalidInputError("--sanctions needs --format", field="format", expected="ofac, un or csv")
    return build_lists_file([(sanctions, fmt)], high_risk, now)


def install_lists(settings: Settings, lists: ListsFile, now: datetime, actor: str = "cap") -> str:
    """Install ``lists`` as the trusted lists (``<data>/lists/lists.json``, or the database on PostgreSQL),
    audited; returns where they went."""
    check_lists(lists, "lists")
    store = lists_store(settings)
    store.write(pretty_bytes(lists) + b"\n")  # the bytes save_lists writes
    audit_log(settings).append(
        "lists_installed",
        {
            "actor": actor,
            "sanctions_root": lists.sanctions_root,
            "sanctions_count": lists.sanctions_count,
            "jurisdiction_root": lists.jurisdiction_root,
            "generated_at": lists.generated_at,
            "sources": [s.model_dump(mode="json") for s in lists.sources],
        },
        now,
    )
    return store.name


def list_sources_path(settings: Settings) -> Path:
    """The default sources file of :func:`refresh_lists`: ``<data>/lists/sources.yaml``."""
    return settings.layout.lists_dir / "sources.yaml"


def refresh_lists(
    settings: Settings,
    now: datetime,
    *,
    sources_path: Path | None = None,
    allow_shrink: bool = False,
    actor: str = "cap",
) -> RefreshResult:
    """Fetch the lists named in the sources file and install ``<data>/lists/lists.json`` if they changed."""
    sources = load_sources(sources_path or list_sources_path(settings))
    return refresh_from_sources(settings, sources, now, allow_shrink=allow_shrink, actor=actor)


def lint_policy_file(path: Path, mode: LintMode) -> list[Diagnostic]:
    """Diagnostics for a policy file (v1 policies are validated on load and have no lints)."""
    policy = load_policy_file(path)
    return [] if isinstance(policy, PolicyV1) else lint(policy, mode)


def load_policy(path: Path, mode: LintMode = LintMode.STRICT) -> LoadedPolicy:
    policy = load_policy_file(path)
    return LoadedPolicy(policy=policy, compiled=compile_policy(policy, mode))


def compile_policy_text(text: str, source: str, mode: LintMode) -> LoadedPolicy:
    policy = load_policy_text(text, source)
    return LoadedPolicy(policy=policy, compiled=compile_policy(policy, mode))


def store_policy(settings: Settings, loaded: LoadedPolicy, now: datetime) -> StoredPolicy:
    """Persist a compiled policy (deduplicated by hash; a different policy under the same id conflicts)."""
    c, info = loaded.compiled, loaded.info
    description = loaded.policy.notes if isinstance(loaded.policy, PolicyV1) else loaded.policy.description
    with open_policy_store(settings) as store:
        return store.save(
            c.policy_id,
            info.name,
            info.version,
            c.policy_hash,
            c.policy_bytes.decode("utf-8"),
            c.ir_bytes().decode("utf-8"),
            c.ir_hash,
            description,
            now,
        )


def get_policy(settings: Settings, policy_id: str) -> StoredPolicy:
    with open_policy_store(settings) as store:
        return store.get(policy_id)


# --- manifest, proof, verify -----------------------------------------------------------------


def make_manifest(
    settings: Settings, commitments: Commitments, loaded: LoadedPolicy, lists: ListsFile | None, now: datetime
) -> Manifest:
    """An unsigned manifest binding the commitments to the policy, the lists and the audit tail."""
    digest, count = audit_log(settings).tail()
    return build_manifest(
        commitments,
        loaded.info,
        subject=settings.subject,
        created_at=format_timestamp(now),
        audit=AuditInfo(tail_digest=digest, events_count=count),
        sanctions_root=lists.sanctions_root if lists else None,
        jurisdiction_root=lists.jurisdiction_root if lists else None,
        lists=lists_info(lists) if lists else None,
    )


def prove(
    settings: Settings,
    *,
    manifest: Manifest,
    loaded: LoadedPolicy,
    suppliers: Path,
    ubos: Path,
    lists: ListsFile | None,
    mode: EnforcementMode,
    enforce: bool,
    now: datetime,
    scheme: ProofScheme = ProofScheme.V2,
    zk: ZkOptions | None = None,
) -> ProofBuild:
    """Evaluate the policy on the real records, sign, register and audit the proof.

    ``scheme`` v3 proves the screening in zero knowledge under ``zk`` (default: the development setup, NOT
    FOR PRODUCTION); it needs lists. Raises InvalidInputError (``v3_listed_name``) when a screened name is
    listed, ZkToolError when proving fails.
    """
    signer = ensure_signer(settings, now)
    if lists is not None:  # the manifest names the lists actually screened against, with their sources
        manifest = manifest.model_copy(
            update={
                "sanctions_root": lists.sanctions_root,
                "jurisdiction_root": lists.jurisdiction_root,
                "lists": lists_info(lists),
            }
        )
    proving = zk_proving_for(settings, lists, zk) if scheme is ProofScheme.V3 else None
    built = build_proof(
        manifest=manifest,
        ir=loaded.compiled.ir,
        suppliers=read_suppliers(suppliers),
        ubos=read_ubos(ubos),
        lists=lists.sanctions_list() if lists else None,
        high_risk=lists.high_risk if lists else None,
        mode=mode,
        enforce=enforce,
        signer=signer,
        created_at=format_timestamp(now),
        constraints=loaded.compiled.rule_constraints,
        zk=proving,
    )
    entry = register_proof(settings, built.proof, built.verdict, signer, now)
    audit_log(settings).append(
        "proof_built",
        {
            "registry_id": entry.id,
            "policy_id": built.proof.policy_id,
            "ir_hash": built.proof.ir_hash,
            "company_commitment_root": built.proof.manifest.company_commitment_root,
            "verdict": built.verdict.value,
            "mode": mode.value,
            "violations": len(built.violations),
        },
        now,
    )
    return built


class ZkOptions(BaseModel):
    """How a v3 proof is proved: a finished setup directory (else the development setup of the smallest
    circuit fitting the lists, NOT FOR PRODUCTION), the development batch size, the batch-proof cache."""

    model_config = ConfigDict(frozen=True)
    setup_dir: Path | None = None
    batch_size: int = 2
    cache: Path | None = None


def zk_proving_for(
    settings: Settings, lists: ListsFile | None, options: ZkOptions | None = None
) -> ZkProving:
    """Proving for a v3 build: ``options`` (default: the setup in ``CAP_ZK_SETUP``, else the development
    setup), the data dir's salt seed. Raises InvalidInputError without lists."""
    from core.zk.proof_v3 import load_salt_seed, zk_proving  # the proving toolchain only for v3 builds

    options = options or ZkOptions()
    setup_dir = options.setup_dir or settings.zk_setup_dir
    if lists is None:
        raise InvalidInputError(
            "a cap-proof.v3 screens against sanctions lists: give --lists or --sanctions (or --scheme v2)",
            field="lists",
        )
    seed = load_salt_seed(settings.layout.keys_dir)
    return zk_proving(lists, seed, setup_dir=setup_dir, batch_size=options.batch_size, cache=options.cache)


def register_proof(
    settings: Settings, proof: Proof, outcome: CheckStatus, signer: Ed25519Signer, now: datetime
) -> RegistryEntry:
    m = proof.manifest
    with writing_state(settings.data_dir), open_registry(settings) as registry:
        return registry.register(
            proof_file_bytes(proof),
            canonical_bytes(m),
            subject=m.subject,
            policy_hash=m.policy.hash,
            ir_hash=proof.ir_hash,
            company_root=m.company_commitment_root,
            supplier_root=m.supplier_root,
            ubo_root=m.ubo_root,
            result=outcome.value.upper(),
            accepted=outcome is not CheckStatus.FAIL,
            signer=signer,
            now=now,
        )


# --- key rotation, revocation, attestation (ISSUE 6) ------------------------------------------
# Imports for this section stay here so the section can be appended without touching the header.

import contextlib  # noqa: E402
from collections.abc import Callable  # noqa: E402

import yaml  # noqa: E402

from core import rotation  # noqa: E402
from core.attestation import ChainResult, SignedAttestation, attest, attestation_problem, verify_chain  # noqa: E402
from core.errors import CapError, RotationError  # noqa: E402
from core.events import sink  # noqa: E402
from core.keyring import KeyAcceptance, entry_from_metadata, key_acceptance  # noqa: E402
from core.keys import KeyStatus, build_metadata  # noqa: E402

SIGNING_VALUES_FILE = "helm-signing-values.yaml"
PREVIEW_KEY = "<new key, generated when applied>"


class PreparedKey(BaseModel):
    """Phase 0's new key (public metadata only) and the attestation the old key made of it."""

    model_config = ConfigDict(frozen=True)
    meta: KeyMetadata
    attestation: Path
    generated: bool


class RotationOutcome(BaseModel):
    """What one rotation call did (or, for a dry run, would do)."""

    model_config = ConfigDict(frozen=True)
    action: rotation.RotationAction
    phase: rotation.RotationPhase
    dry_run: bool
    noop: bool
    old_kid: str
    new_kid: str | None
    version_before: int
    version_after: int
    diff: tuple[str, ...]
    dual_accept_until: str | None = None
    census: int = 0
    values_file: Path | None = None
    verified_signer: str | None = None
    attestation: Path | None = None


class ChainCheck(BaseModel):
    model_config = ConfigDict(frozen=True)
    chain: ChainResult
    head_acceptance: KeyAcceptance | None = None


def rotation_census(
    settings: Settings, keyring: Keyring, request: rotation.RotationRequest, now: datetime
) -> int:
    """Registry entries the rotation's old key signed within ``request.census_window`` (0: no registry)."""
    if request.action is not rotation.RotationAction.DECOMMISSION or not has_registry(settings):
        return 0
    old = rotation.resolve(keyring, request).old_kid
    with open_registry(settings) as registry:
        return registry.count_signed_by(old, now - request.census_window)


def prepare_rotation_key(
    settings: Settings, keyring: Keyring, request: rotation.RotationRequest, now: datetime
) -> PreparedKey | None:
    """Phase 0: generate (0600, status pending) or take the supplied new key, and attest it with the old one.

    None when there is nothing to prepare (another phase, or phase 0 already applied).
    """
    if request.action is not rotation.RotationAction.PREPARE:
        return None
    pair = rotation.resolve(keyring, request)
    if pair.new_kid is not None and keyring.entry(pair.new_kid) is not None:
        return None
    store = KeyStore(settings.layout)
    old = store.get(pair.old_kid)
    generated = pair.new_kid is None
    if generated:
        meta = store.generate(old.owner, now, status=KeyStatus.PENDING)
    else:
        meta = store.get(str(pair.new_kid))
    if not store.has_private_key(meta.kid):
        raise RotationError(
            "the new key has no private key file", code="private_key_missing", field="new_kid", found=meta.kid
        )
    signed = attest(store.signer(old.kid), old.owner, meta, now)
    problem = attestation_problem(signed)
    if problem is not None:
        raise RotationError(f"attestation of the new key fails: {problem}", code="rotation_probe_failed")
    path = write_json(settings.layout.keys_dir / f"{meta.kid}.attestation.json", signed)
    return PreparedKey(meta=meta, attestation=path, generated=generated)


def discard_rotation_key(settings: Settings, prepared: PreparedKey) -> None:
    """Compensation for phase 0: a key generated for a failed rotation is revoked and never used."""
    if prepared.generated:
        KeyStore(settings.layout).set_status(prepared.meta.kid, KeyStatus.REVOKED)
    with contextlib.suppress(FileNotFoundError):
        prepared.attestation.unlink()


def plan_rotation(
    keyring: Keyring,
    request: rotation.RotationRequest,
    now: datetime,
    census: int = 0,
    prepared: PreparedKey | None = None,
) -> rotation.RotationPlan:
    """The pure step (``rotation.plan``); a dry run of phase 0 shows an illustrative, unsaved new key."""
    entry = entry_from_metadata(prepared.meta) if prepared else None
    pair = rotation.resolve(keyring, request)
    if entry is None and request.action is rotation.RotationAction.PREPARE and pair.new_kid is None:
        ephemeral = Ed25519Signer.generate()  # public half only; dropped, never written
        entry = entry_from_metadata(
            build_metadata(ephemeral.public_key_b64, "preview", now, status=KeyStatus.PENDING)
        )
    return rotation.plan(keyring, request, now, census=census, new_entry=entry)


def write_rotation_keyring(settings: Settings, plan: rotation.RotationPlan) -> Keyring:
    """Save ``plan.after`` if the store still holds ``plan.before``'s version (compared and written in one
    transaction on PostgreSQL); else ConflictError ``keyring_changed``."""
    load_local_keyring(settings)  # the stored keyring must still be trusted (floor, chain)
    at = parse_timestamp(plan.after.history[-1].at)
    return save_local_keyring(settings, plan.after, at, expected=plan.before.version)


def revert_rotation_keyring(
    settings: Settings, previous: Keyring, now: datetime, actor: str, reason: str
) -> Keyring:
    """Compensation: write ``previous``'s content under a higher version (watchers refuse lower ones)."""
    reverted = rotation.revert(load_local_keyring(settings), previous, now, actor, reason)
    return save_local_keyring(settings, reverted, now)


def sync_key_statuses(settings: Settings, keyring: Keyring) -> dict[str, KeyStatus]:
    """Make each stored key's status the keyring's; returns the statuses replaced (for compensation)."""
    store, replaced = KeyStore(settings.layout), {}
    for entry in keyring.keys:
        if settings.layout.key_metadata_path(entry.kid).exists():
            before = store.get(entry.kid).status
            if before is not entry.status:
                store.set_status(entry.kid, entry.status)
                replaced[entry.kid] = before
    return replaced


def restore_key_statuses(settings: Settings, replaced: dict[str, KeyStatus]) -> None:
    store = KeyStore(settings.layout)
    for kid, status in replaced.items():
        store.set_status(kid, status)


def write_signing_values(
    settings: Settings, keyring: Keyring, mount: str = rotation.DEFAULT_KEY_MOUNT
) -> Path:
    """The Helm ``verifier.signing`` block for ``keyring`` as ``var/helm-signing-values.yaml``."""
    values = rotation.signing_values(keyring, mount).model_dump(mode="json", exclude_none=True)
    header = f"# verifier.signing for keyring v{keyring.version}; written by key rotation, do not edit\n"
    text = header + yaml.safe_dump({"verifier": {"signing": values}}, sort_keys=False)
    return atomic_write(settings.layout.root / SIGNING_VALUES_FILE, text.encode("utf-8"))


def check_rotation_signer(settings: Settings, keyring: Keyring, now: datetime) -> str:
    """A fresh signature by the keyring's default signer verifies and is acceptable; returns its kid."""
    return rotation.probe_signer(keyring, KeyStore(settings.layout).signer(keyring.default_signing_kid), now)


def rotation_outcome(
    plan: rotation.RotationPlan,
    now: datetime,
    *,
    dry_run: bool = False,
    census: int = 0,
    values: Path | None = None,
    signer: str | None = None,
    prepared: PreparedKey | None = None,
) -> RotationOutcome:
    """The report of a planned or applied step; an applied change counts in ``cap_key_rotations_total``."""
    metrics = sink()
    if not dry_run and not plan.noop and metrics is not None:
        metrics.KEY_ROTATIONS.inc()
    new_kid: str | None = plan.step.new_kid
    diff = plan.diff
    if prepared is None and plan.step.new_entry is not None and plan.request.new_kid is None:
        # a preview of phase 0: its key id belongs to a throwaway key, so name no id that will never exist
        diff = tuple(line.replace(plan.step.new_kid, PREVIEW_KEY) for line in diff)
        new_kid = None
    return RotationOutcome(
        action=plan.step.action,
        phase=plan.request.phase,
        dry_run=dry_run,
        noop=plan.noop,
        old_kid=plan.pair.old_kid,
        new_kid=new_kid,
        version_before=plan.before.version,
        version_after=plan.after.version,
        diff=diff,
        dual_accept_until=plan.after.dual_accept_until,
        census=census,
        values_file=values,
        verified_signer=signer,
        attestation=prepared.attestation if prepared else None,
    )


def rotate_signing_key(
    settings: Settings,
    request: rotation.RotationRequest,
    now: datetime,
    *,
    dry_run: bool = False,
    confirm: Callable[[rotation.RotationPlan], bool] | None = None,
) -> RotationOutcome:
    """One rotation phase without Prefect (``cap keys rotate``): the flow's steps, as a saga, in-process.

    Phases 2 and 3 ask ``confirm`` unless forced. Raises :class:`RotationError` (illegal step, refused
    confirmation), :class:`ConflictError` (keyring changed underneath), or the failing step's error after
    undoing the completed steps in reverse.
    """
    keyring = load_local_keyring(settings)
    census = rotation_census(settings, keyring, request, now)
    preview = plan_rotation(keyring, request, now, census)
    if dry_run or preview.noop:
        return rotation_outcome(preview, now, dry_run=dry_run, census=census)
    if request.needs_approval and not (confirm and confirm(preview)):
        raise RotationError("rotation not confirmed", code="rotation_rejected")
    undo: list[Callable[[], object]] = []
    try:
        prepared = prepare_rotation_key(settings, keyring, request, now)
        if prepared is not None:
            undo.append(lambda: discard_rotation_key(settings, prepared))
        plan = plan_rotation(keyring, request, now, census, prepared)
        after = write_rotation_keyring(settings, plan)
        undo.append(lambda: revert_rotation_keyring(settings, keyring, now, request.actor, "a step failed"))
        replaced = sync_key_statuses(settings, after)
        undo.append(lambda: restore_key_statuses(settings, replaced))
        values = write_signing_values(settings, after)
        undo.append(lambda: write_signing_values(settings, keyring))
        signer = check_rotation_signer(settings, after, now)
    except BaseException as exc:
        compensate(undo, exc)
        raise
    return rotation_outcome(plan, now, census=census, values=values, signer=signer, prepared=prepared)


def compensate(undo: Sequence[Callable[[], object]], failure: BaseException) -> None:
    """Run a saga's compensations in reverse; a failing one is noted on ``failure``, the rest still run."""
    for step in reversed(undo):
        try:
            step()
        except CapError as exc:
            failure.add_note(f"compensation failed: [{exc.code}] {exc.diagnostics()}")


def revoke_signing_key(
    settings: Settings, kid: str, now: datetime, *, actor: str = "cap", reason: str | None = None
) -> Keyring:
    """Revoke ``kid`` in the keyring (new version) and the key store. Raises RotationError, NotFoundError."""
    keyring = load_local_keyring(settings)
    revoked = rotation.revoke(keyring, kid, now, actor, reason)
    if revoked.version != keyring.version:
        save_local_keyring(settings, revoked, now)
        write_signing_values(settings, revoked)
    if settings.layout.key_metadata_path(kid).exists():
        KeyStore(settings.layout).set_status(kid, KeyStatus.REVOKED)
    return revoked


def attest_key(settings: Settings, signer_kid: str, subject_kid: str, now: datetime) -> SignedAttestation:
    """``signer_kid`` attests ``subject_kid`` (both in the key store; the signer's private key is used)."""
    store = KeyStore(settings.layout)
    signer_meta = store.get(signer_kid)
    return attest(store.signer(signer_kid), signer_meta.owner, store.get(subject_kid), now)


def read_attestation(path: Path) -> SignedAttestation:
    """Parse one attestation file. Raises :class:`InvalidInputError` naming the file and field."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"attestation file is not readable: {exc.strerror}", file=str(path)) from exc
    return parse_model(
        SignedAttestation, data, source=str(path), what="attestation", expected="cap-attestation.v1"
    )


def verify_attestation_files(
    settings: Settings,
    paths: Sequence[Path],
    now: datetime,
    root_kid: str | None = None,
    mode: EnforcementMode = EnforcementMode.STRICT,
) -> ChainCheck:
    """Verify a chain of attestation files from ``root_kid`` (default: the first file's signer, which must
    be in the local key store) and judge the head key against the local keyring when there is one."""
    chain = [read_attestation(p) for p in paths]
    if not chain:
        raise InvalidInputError("no attestation files given", field="files")
    root = root_kid or chain[0].attestation.signer_kid
    result = verify_chain(chain, root, KeyStore(settings.layout).get)
    head = None
    if result.ok and result.head_kid and keyring_store(settings).exists():
        head = key_acceptance(load_local_keyring(settings), result.head_kid, mode, now)
    return ChainCheck(chain=result, head_acceptance=head)


# --- what an operator sees of the keys (ISSUE 21) -----------------------------------------------------


class KeyRow(BaseModel):
    """One key as ``cap keys list`` shows it: the store's view and the keyring's side by side."""

    model_config = ConfigDict(frozen=True)
    kid: str
    owner: str | None
    store_status: str | None  # None: public key only in the keyring (no local key files)
    keyring_status: str | None  # None: not a member of the keyring
    default_signer: bool
    valid_from: str
    valid_to: str


class KeysOverview(BaseModel):
    model_config = ConfigDict(frozen=True)
    keyring_version: int | None
    mode: str | None
    default_signing_kid: str | None
    dual_accept_until: str | None
    keys: tuple[KeyRow, ...]
    history: tuple[HistoryEvent, ...]


def keys_overview(settings: Settings) -> KeysOverview:
    """Every key of the store and the keyring: signer, membership, statuses, validity, keyring history."""
    stored = {m.kid: m for m in KeyStore(settings.layout).list()}
    ring = load_local_keyring(settings) if keyring_store(settings).exists() else None
    members = {e.kid: e for e in ring.keys} if ring else {}
    rows = []
    for kid in [*stored, *(k for k in members if k not in stored)]:
        meta, entry = stored.get(kid), members.get(kid)
        window = meta or entry
        assert window is not None
        rows.append(
            KeyRow(
                kid=kid,
                owner=meta.owner if meta else None,
                store_status=meta.status.value if meta else None,
                keyring_status=entry.status.value if entry else None,
                default_signer=ring is not None and ring.default_signing_kid == kid,
                valid_from=window.valid_from,
                valid_to=window.valid_to,
            )
        )
    return KeysOverview(
        keyring_version=ring.version if ring else None,
        mode=ring.mode.value if ring else None,
        default_signing_kid=ring.default_signing_kid if ring else None,
        dual_accept_until=ring.dual_accept_until if ring else None,
        keys=tuple(rows),
        history=ring.history if ring else (),
    )
