"""One service function per use case; the CLI, the API and the Prefect tasks all call these.

Each function takes explicit inputs (settings, paths or bytes, ``now``) and returns typed results;
writing output files is the caller's choice (see :func:`write_json`). Errors are ``CapError``s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from core.audit import AuditLog
from core.canonical import canonical_bytes, pretty_bytes
from core.commit_parallel import supplier_leaves
from core.commitments import Commitments, RootScheme, commit_leaves, read_suppliers, read_ubos, ubo_leaf
from core.digest import sha3_hex
from core.errors import InvalidInputError, NotFoundError
from core.fsio import atomic_write
from core.keyring import Keyring, bootstrap_keyring, load_keyring, save_keyring
from core.keys import KeyMetadata, KeyStore, format_timestamp
from core.manifest import AuditInfo, Manifest, PolicyInfo, build_manifest
from core.modes import CheckStatus, EnforcementMode
from core.policy.compile import CompiledPolicy, compile_policy
from core.policy.lint import Diagnostic, LintMode, lint
from core.policy.load import load_policy_file, load_policy_text
from core.policy.v1 import PolicyV1
from core.policy.v2 import PolicyV2
from core.policy_store import PolicyStore, StoredPolicy
from core.proof import Proof, proof_file_bytes
from core.prover import ProofBuild, build_proof
from core.registry import Registry, RegistryEntry, verify_entry
from core.sanctions import ListFormat, load_source, read_high_risk
from core.screening import ListsFile, SanctionsList, build_lists, load_lists
from core.settings import Settings
from core.signing import Ed25519Signer
from core.verify import Check, CheckKind, RegistryLookup, Report, verify_proof, verify_proof_bytes


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


def keygen(settings: Settings, *, now: datetime, owner: str | None = None, valid_days: int = 730) -> KeyMetadata:
    """Generate a signing key; the first key also starts the keyring as its default signer."""
    store = KeyStore(settings.layout)
    meta = store.generate(owner or settings.owner, now, valid_days)
    if not settings.layout.keyring.exists():
        save_keyring(settings.layout.keyring, bootstrap_keyring(meta, now, actor="cap keys keygen"))
    return meta


def list_keys(settings: Settings) -> list[KeyMetadata]:
    return KeyStore(settings.layout).list()


def show_key(settings: Settings, kid: str) -> KeyMetadata:
    return KeyStore(settings.layout).get(kid)


def load_local_keyring(settings: Settings, path: Path | None = None) -> Keyring:
    target = path or settings.layout.keyring
    if not target.exists():
        raise NotFoundError("no keyring: run `cap keys keygen` first", code="keyring_not_found", file=str(target))
    return load_keyring(target)


def default_signer(settings: Settings) -> Ed25519Signer:
    """The keyring's default signer, loaded from its 0600 PEM file."""
    keyring = load_local_keyring(settings)
    return KeyStore(settings.layout).signer(keyring.default_signing_kid)


def ensure_signer(settings: Settings, now: datetime) -> Ed25519Signer:
    """The default signer, creating a first key and keyring on a fresh data directory."""
    if not settings.layout.keyring.exists():
        keygen(settings, now=now)
    return default_signer(settings)


# --- commitments, lists, policies ------------------------------------------------------------


def commit_files(suppliers: Path, ubos: Path, scheme: RootScheme, now: datetime) -> Commitments:
    """Commit to two CSV files (large supplier files are parsed and hashed on all cores)."""
    s_leaves = supplier_leaves(_existing(suppliers))
    return commit_leaves(s_leaves, [ubo_leaf(u) for u in read_ubos(ubos)], scheme, format_timestamp(now))


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise InvalidInputError("file not found" if not path.exists() else "not a file", file=str(path))
    return path


def build_lists_file(sources: Sequence[tuple[Path, ListFormat]], high_risk: Path | None, now: datetime) -> ListsFile:
    """Screening keys and roots over one or more sanctions lists (and optional high-risk levels)."""
    if not sources:
        raise InvalidInputError("at least one sanctions list is needed", field="sanctions")
    loaded = [load_source(path, fmt) for path, fmt in sources]
    entries = [e for item in loaded for e in item.entries]
    sanctions = SanctionsList.from_entries(entries, [str(p) for p, _ in sources])
    levels = read_high_risk(high_risk) if high_risk is not None else None
    return build_lists(sanctions, [item.source for item in loaded], now, levels)


def read_lists(lists: Path | None, sanctions: Path | None, fmt: ListFormat | None,
               high_risk: Path | None, now: datetime) -> ListsFile | None:
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
    with PolicyStore(settings.layout.policy_db) as store:
        return store.save(c.policy_id, info.name, info.version, c.policy_hash, c.policy_bytes.decode("utf-8"),
                          c.ir_bytes().decode("utf-8"), c.ir_hash, description, now)


def get_policy(settings: Settings, policy_id: str) -> StoredPolicy:
    with PolicyStore(settings.layout.policy_db) as store:
        return store.get(policy_id)


# --- manifest, proof, verify -----------------------------------------------------------------


def make_manifest(settings: Settings, commitments: Commitments, loaded: LoadedPolicy,
                  lists: ListsFile | None, now: datetime) -> Manifest:
    """An unsigned manifest binding the commitments to the policy, the lists and the audit tail."""
    digest, count = AuditLog(settings.layout.audit_log).tail()
    return build_manifest(
        commitments, loaded.info, subject=settings.subject, created_at=format_timestamp(now),
        audit=AuditInfo(tail_digest=digest, events_count=count),
        sanctions_root=lists.sanctions_root if lists else None,
        jurisdiction_root=lists.jurisdiction_root if lists else None,
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
) -> ProofBuild:
    """Evaluate the policy on the real records, sign, register and audit the proof."""
    signer = ensure_signer(settings, now)
    built = build_proof(
        manifest=manifest, ir=loaded.compiled.ir, suppliers=read_suppliers(suppliers), ubos=read_ubos(ubos),
        lists=lists.sanctions_list() if lists else None, high_risk=lists.high_risk if lists else None,
        mode=mode, enforce=enforce, signer=signer, created_at=format_timestamp(now),
        constraints=loaded.compiled.rule_constraints,
    )
    entry = register_proof(settings, built.proof, built.verdict, signer, now)
    AuditLog(settings.layout.audit_log).append("proof_built", {
        "registry_id": entry.id, "policy_id": built.proof.policy_id, "ir_hash": built.proof.ir_hash,
        "company_commitment_root": built.proof.manifest.company_commitment_root,
        "verdict": built.verdict.value, "mode": mode.value, "violations": len(built.violations),
    }, now)
    return built


def register_proof(settings: Settings, proof: Proof, outcome: CheckStatus, signer: Ed25519Signer,
                   now: datetime) -> RegistryEntry:
    m = proof.manifest
    with Registry(settings.layout.registry_db) as registry:
        return registry.register(
            proof_file_bytes(proof), canonical_bytes(m), subject=m.subject, policy_hash=m.policy.hash,
            ir_hash=proof.ir_hash, company_root=m.company_commitment_root, supplier_root=m.supplier_root,
            ubo_root=m.ubo_root, result=outcome.value.upper(), accepted=outcome is not CheckStatus.FAIL,
            signer=signer, now=now,
        )


def registry_check(settings: Settings, keyring: Keyring) -> RegistryLookup:
    """A registry lookup for :func:`verify_proof`: is this exact proof registered with a valid entry?"""
    path = settings.layout.registry_db
    keys = {k.kid: k.public_key for k in keyring.keys}

    def check(proof: Proof) -> Check:
        if not path.exists():
            return Check(id="registry", kind=CheckKind.REGISTRY, status=CheckStatus.WARN,
                         message="no local registry to look the proof up in")
        with Registry(path) as registry:
            entry = registry.find(sha3_hex(canonical_bytes(proof.manifest)), sha3_hex(proof_file_bytes(proof)))
        if entry is None:
            return Check(id="registry", kind=CheckKind.REGISTRY, status=CheckStatus.WARN,
                         message="proof is not in the local registry")
        ok = verify_entry(entry, keys.get)
        return Check(id="registry", kind=CheckKind.REGISTRY, status=CheckStatus.OK if ok else CheckStatus.FAIL,
                     message=f"registered as {entry.id}" if ok else f"registry entry {entry.id} signature invalid")

    return check


def verify_file(
    settings: Settings,
    data: bytes,
    *,
    source: str,
    mode: EnforcementMode,
    now: datetime,
    keyring_path: Path | None = None,
    manifest: Manifest | None = None,
    use_registry: bool = True,
) -> Report:
    """Verify stored proof bytes against the keyring (and the local registry when present)."""
    keyring = load_local_keyring(settings, keyring_path)
    registry = registry_check(settings, keyring) if use_registry else None
    return verify_proof_bytes(data, source=source, keyring=keyring, mode=mode, now=now, manifest=manifest,
                              registry=registry)


def verify_document(settings: Settings, proof: Proof, *, keyring: Keyring, mode: EnforcementMode,
                    now: datetime) -> Report:
    return verify_proof(proof, keyring=keyring, mode=mode, now=now, registry=registry_check(settings, keyring))
