"""Key attestations (``cap-attestation.v1``): one key vouching for the next, and chains of them.

Signed bytes = ``b"cap-attestation.v1\\n"`` ‖ canonical JSON of the typed :class:`Attestation`
(declaration order). The original signed a sorted-key object but verified declaration order, so its
attestations could never verify; we sign and verify the same typed bytes, and the prefix separates this
domain from every other signed format.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.canonical import canonical_bytes
from core.errors import IntegrityError, NotFoundError
from core.keys import KeyMetadata, KeyStatus, Kid, Timestamp, check_metadata, format_timestamp
from core.signing import Signer, derive_kid, verify_signature

ATTESTATION_SCHEMA: Final = "cap-attestation.v1"
DOMAIN = b"cap-attestation.v1\n"

KeyLookup = Callable[[str], KeyMetadata | None]


class Attestation(BaseModel):
    """The statement "key ``signer_kid`` of ``signer_owner`` vouches for ``subject_public_key``"."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: Literal["cap-attestation.v1"] = Field(default=ATTESTATION_SCHEMA, alias="schema")
    signer_kid: Kid
    signer_owner: str
    subject_kid: Kid
    subject_owner: str
    subject_public_key: str
    attested_at: Timestamp


class SignedAttestation(BaseModel):
    """An attestation with its base64 Ed25519 signature and the signer's base64 public key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attestation: Attestation
    signature: str
    signer_public_key: str


class ChainResult(BaseModel):
    """Outcome of :func:`verify_chain`: ``failed_index`` and ``reason`` name the first broken link."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    links_checked: int
    head_kid: str | None = None
    failed_index: int | None = None
    reason: str | None = None


def signing_bytes(attestation: Attestation) -> bytes:
    """The exact bytes an attestation signature covers."""
    return DOMAIN + canonical_bytes(attestation)


def attest(signer: Signer, signer_owner: str, subject: KeyMetadata, now: datetime) -> SignedAttestation:
    """Sign an attestation of ``subject`` by ``signer``.

    Raises :class:`IntegrityError` (or :class:`InvalidInputError`) on inconsistent subject metadata.
    """
    check_metadata(subject, source="subject metadata")
    statement = Attestation(
        signer_kid=signer.kid,
        signer_owner=signer_owner,
        subject_kid=subject.kid,
        subject_owner=subject.owner,
        subject_public_key=subject.public_key,
        attested_at=format_timestamp(now),
    )
    signature = signer.sign(signing_bytes(statement))
    return SignedAttestation(
        attestation=statement,
        signature=base64.b64encode(signature).decode("ascii"),
        signer_public_key=signer.public_key_b64,
    )


def attestation_problem(sa: SignedAttestation) -> str | None:
    """Why ``sa`` does not verify on its own (kids re-derived, signature checked), or ``None`` if it does."""
    att = sa.attestation
    if derive_kid(sa.signer_public_key) != att.signer_kid:
        return "signer_kid does not match the embedded signer public key"
    if derive_kid(att.subject_public_key) != att.subject_kid:
        return "subject_kid does not match the embedded subject public key"
    try:
        signature = base64.b64decode(sa.signature, validate=True)
    except (binascii.Error, ValueError):
        return "signature is not valid base64"
    if not verify_signature(sa.signer_public_key, signature, signing_bytes(att)):
        return "signature does not verify"
    return None


def verify_attestation(sa: SignedAttestation) -> bool:
    """True iff the signature is valid and both kids follow from the embedded public keys."""
    return attestation_problem(sa) is None


def _lookup(key_lookup: KeyLookup, kid: str) -> KeyMetadata | None:
    try:
        return key_lookup(kid)
    except NotFoundError:
        return None


def _link_problem(sa: SignedAttestation, expected_signer: str, key_lookup: KeyLookup) -> str | None:
    att = sa.attestation
    if att.signer_kid != expected_signer:
        return f"signer {att.signer_kid} is not the previous subject {expected_signer}"
    known = _lookup(key_lookup, att.signer_kid)
    if known is None:
        return f"signer {att.signer_kid} is not in the key store"
    if known.public_key != sa.signer_public_key:
        return f"signer {att.signer_kid} has a different public key in the key store"
    if known.status is KeyStatus.REVOKED:
        return f"signer {att.signer_kid} is revoked"
    return attestation_problem(sa)


def verify_chain(
    attestations: Sequence[SignedAttestation], trusted_root_kid: str, key_lookup: KeyLookup
) -> ChainResult:
    """Walk ``trusted_root_kid`` → subject → subject … and report the first broken link.

    Never raises on bad data. Each link's signer must be the previous subject (the root for the first), be
    known to ``key_lookup`` with the same public key and not be revoked, and sign validly. ``key_lookup``
    may return ``None`` or raise :class:`NotFoundError` for an unknown kid. Whether the head key is
    acceptable is the keyring's call (:func:`core.keyring.key_acceptance`).
    """
    expected = trusted_root_kid
    for index, sa in enumerate(attestations):
        problem = _link_problem(sa, expected, key_lookup)
        if problem is not None:
            return ChainResult(ok=False, links_checked=index, failed_index=index, reason=problem)
        expected = sa.attestation.subject_kid
    return ChainResult(ok=True, links_checked=len(attestations), head_kid=expected)


def require_chain(
    attestations: Sequence[SignedAttestation], trusted_root_kid: str, key_lookup: KeyLookup
) -> str:
    """Like :func:`verify_chain` but returns the head kid; raises IntegrityError on a broken link."""
    result = verify_chain(attestations, trusted_root_kid, key_lookup)
    if not result.ok or result.head_kid is None:
        raise IntegrityError(
            f"attestation chain broken at link {result.failed_index}: {result.reason}",
            code="attestation_chain_broken",
            field=f"attestations[{result.failed_index}]",
        )
    return result.head_kid
