"""The verify use case of :mod:`core.service`, importable on its own.

``cap verify`` is a one-shot process: it imports this module instead of ``core.service``, so it loads
what verifying needs (keyring, registry, the verifier) and not the prover, policy compiler, list
refresh, SAP or rotation code. ``core.service`` re-exports every name here; callers keep using it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from core.digest import sha3_hex
from core.keyring import Keyring
from core.manifest import Manifest
from core.modes import CheckStatus, EnforcementMode
from core.proof import Proof, ProofForms
from core.registry import RegistryEntry, verify_entry
from core.settings import Settings
from core.store import RegistryHandleApi, has_registry, keyring_store, open_registry
from core.store.keyring import FileKeyringStore, load_trusted, require_keyring
from core.trust import TrustAnchors
from core.verify import Check, CheckKind, RegistryLookup, Report, verify_proof, verify_proof_bytes


def load_local_keyring(settings: Settings, path: Path | None = None) -> Keyring:
    """The trusted keyring at ``path``, else the one of ``settings``' store (files or database). Raises
    NotFoundError ``keyring_not_found``, RotationError ``keyring_rollback``, IntegrityError (chain)."""
    store = FileKeyringStore(path) if path is not None else keyring_store(settings)
    require_keyring(store)
    return load_trusted(store, settings.operator_public_keys)


def registry_check(
    settings: Settings, keyring: Keyring, handle: RegistryHandleApi | None = None
) -> RegistryLookup:
    """A registry lookup for :func:`verify_proof`: is this exact proof registered with a valid entry?

    A long-running process passes its registry handle (one open connection or pool); one-shot callers
    open the registry for the lookup.
    """
    keys = {k.kid: k.public_key for k in keyring.keys}

    def find(forms: ProofForms) -> RegistryEntry | None:
        hashes = sha3_hex(forms.manifest_bytes()), sha3_hex(forms.file_bytes())
        if handle is not None:
            registry = handle.get()
            return registry.find(*hashes) if registry is not None else None
        with open_registry(settings) as registry:
            return registry.find(*hashes)

    def check(proof: Proof, forms: ProofForms) -> Check:
        if not has_registry(settings):
            return Check(
                id="registry",
                kind=CheckKind.REGISTRY,
                status=CheckStatus.WARN,
                message="no local registry to look the proof up in",
            )
        entry = find(forms)
        if entry is None:
            return Check(
                id="registry",
                kind=CheckKind.REGISTRY,
                status=CheckStatus.WARN,
                message="proof is not in the local registry",
            )
        ok = verify_entry(entry, keys.get)
        return Check(
            id="registry",
            kind=CheckKind.REGISTRY,
            status=CheckStatus.OK if ok else CheckStatus.FAIL,
            message=f"registered as {entry.id}" if ok else f"registry entry {entry.id} signature invalid",
        )

    return check


def verify_file(
    settings: Settings,
    data: bytes,
    *,
    source: str,
    mode: EnforcementMode,
    now: datetime,
    keyring_path: Path | None = None,
    trust: TrustAnchors,
    manifest: Manifest | None = None,
    use_registry: bool = True,
) -> Report:
    """Verify stored proof bytes against the keyring and trust anchors (and the local registry)."""
    keyring = load_local_keyring(settings, keyring_path)
    registry = registry_check(settings, keyring) if use_registry else None
    return verify_proof_bytes(
        data,
        source=source,
        keyring=keyring,
        mode=mode,
        now=now,
        trust=trust,
        manifest=manifest,
        registry=registry,
    )


def verify_document(
    settings: Settings,
    proof: Proof,
    *,
    keyring: Keyring,
    mode: EnforcementMode,
    now: datetime,
    trust: TrustAnchors,
    registry: RegistryHandleApi | None = None,
) -> Report:
    """Verify a parsed proof against ``keyring`` and ``trust``; ``registry`` is a long-running caller's
    open registry."""
    return verify_proof(
        proof,
        keyring=keyring,
        mode=mode,
        now=now,
        trust=trust,
        registry=registry_check(settings, keyring, registry),
    )
