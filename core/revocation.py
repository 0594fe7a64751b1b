"""Revoking a signing key: the pure keyring transition and the service function behind the API.

Revocation is immediate and terminal (a revoked key never verifies again). It is not a rotation phase, so it
does not go through the rotation flow: the keyring gets a new version with the key marked ``revoked`` and a
``revoke`` history event, then the key's metadata status follows. The default signer cannot be revoked —
rotate first. Verifiers holding the keyring pick the new version up through :class:`KeyringWatcher`.
"""

from __future__ import annotations

from datetime import datetime

from core.errors import ConflictError, NotFoundError
from core.keyring import HistoryEvent, Keyring
from core.keys import KeyStatus, KeyStore, format_timestamp
from core.settings import Settings

ACTION_REVOKE = "revoke"


def revoked_keyring(
    keyring: Keyring, kid: str, *, now: datetime, actor: str, reason: str | None = None
) -> Keyring:
    """``keyring`` with ``kid`` revoked in a new version. Raises NotFoundError or ConflictError."""
    entry = keyring.entry(kid)
    if entry is None:
        raise NotFoundError(f"key {kid} is not in the keyring", code="key_not_found", field="kid", found=kid)
    if kid == keyring.default_signing_kid:
        raise ConflictError(
            "the default signing key cannot be revoked; rotate to a new key first",
            code="key_is_default_signer",
            field="kid",
            found=kid,
        )
    if entry.status is KeyStatus.REVOKED:
        return keyring
    version = keyring.version + 1
    event = HistoryEvent(
        version=version, action=ACTION_REVOKE, actor=actor, at=format_timestamp(now), kid=kid, detail=reason
    )
    keys = tuple(
        e.model_copy(update={"status": KeyStatus.REVOKED}) if e.kid == kid else e for e in keyring.keys
    )
    return keyring.model_copy(update={"version": version, "keys": keys, "history": (*keyring.history, event)})


def revoke_key(
    settings: Settings, kid: str, *, now: datetime, actor: str, reason: str | None = None
) -> Keyring:
    """Revoke ``kid`` in the local keyring (new version) and its key metadata. Idempotent.

    Raises NotFoundError (no keyring, unknown kid), ConflictError (default signer), errors of save_keyring.
    """
    from core.service import load_local_keyring, save_local_keyring  # service builds on this module

    current = load_local_keyring(settings)
    updated = revoked_keyring(current, kid, now=now, actor=actor, reason=reason)
    if updated is not current:
        save_local_keyring(settings, updated, now)
    store = KeyStore(settings.layout)
    if settings.layout.key_metadata_path(kid).exists():
        store.set_status(kid, KeyStatus.REVOKED)
    return updated
