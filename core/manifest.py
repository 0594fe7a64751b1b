"""The manifest (``manifest.v1.0`` field set of the original, extended) and its signature.

Field order is the original's (version … signatures, time_anchor?) followed by our extensions
(subject, root_scheme, sanctions_root?, jurisdiction_root?, lists?, screening?); ``lists`` carries the lists'
build time and sources so a verifier can judge their age and see which lists were used; ``screening`` (only in
``cap-proof.v3`` manifests) the hiding screening commitments beside the untouched BLAKE3 roots. A manifest
signature is Ed25519 over
``b"manifest.v1.0\\n" + canonical JSON of the manifest with signatures = []``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.canonical import canonical_bytes
from core.commitments import Commitments, RootScheme
from core.signing import ALG, Signer, verify_signature
from core.zk.evidence import ScreeningCommitments

MANIFEST_VERSION = "manifest.v1.0"
ZERO_DIGEST = "0x" + "00" * 32
MANIFEST_DOMAIN = b"manifest.v1.0\n"
_DOMAIN = MANIFEST_DOMAIN


class PolicyInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    version: str
    hash: str


class AuditInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    tail_digest: str = ZERO_DIGEST
    events_count: int = 0


class ProofInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    type: str = "none"
    status: str = "none"


class SignatureInfo(BaseModel):
    """A detached Ed25519 signature: key id, algorithm, base64 signature."""

    model_config = ConfigDict(frozen=True)
    kid: str
    alg: str = ALG
    sig: str


class ListSourceInfo(BaseModel):
    """One list a proof was screened against: who publishes it, which file, its digest."""

    model_config = ConfigDict(frozen=True)
    publisher: str
    format: str
    file: str
    sha3_256: str


class ListsInfo(BaseModel):
    """The lists behind ``sanctions_root``/``jurisdiction_root``: build time and sources (signed)."""

    model_config = ConfigDict(frozen=True)
    generated_at: str
    sources: list[ListSourceInfo]


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: str = MANIFEST_VERSION
    created_at: str
    supplier_root: str
    ubo_root: str
    company_commitment_root: str
    policy: PolicyInfo
    audit: AuditInfo = Field(default_factory=AuditInfo)
    proof: ProofInfo = Field(default_factory=ProofInfo)
    signatures: list[SignatureInfo] = Field(default_factory=list)
    time_anchor: dict[str, Any] | None = None
    subject: str
    root_scheme: RootScheme
    sanctions_root: str | None = None
    jurisdiction_root: str | None = None
    lists: ListsInfo | None = None
    screening: ScreeningCommitments | None = None


def build_manifest(
    commitments: Commitments,
    policy: PolicyInfo,
    *,
    subject: str,
    created_at: str,
    audit: AuditInfo | None = None,
    sanctions_root: str | None = None,
    jurisdiction_root: str | None = None,
    lists: ListsInfo | None = None,
) -> Manifest:
    """A fresh, unsigned manifest over ``commitments`` for ``policy``."""
    return Manifest(
        created_at=created_at,
        supplier_root=commitments.supplier_root,
        ubo_root=commitments.ubo_root,
        company_commitment_root=commitments.company_commitment_root,
        policy=policy,
        audit=audit or AuditInfo(),
        subject=subject,
        root_scheme=commitments.scheme,
        sanctions_root=sanctions_root,
        jurisdiction_root=jurisdiction_root,
        lists=lists,
    )


def manifest_signing_bytes(manifest: Manifest) -> bytes:
    return _DOMAIN + canonical_bytes(manifest.model_copy(update={"signatures": []}))


def sign_manifest(manifest: Manifest, signer: Signer) -> Manifest:
    """The manifest with one signature by ``signer`` (replacing any earlier ones)."""
    sig = base64.b64encode(signer.sign(manifest_signing_bytes(manifest))).decode("ascii")
    return manifest.model_copy(update={"signatures": [SignatureInfo(kid=signer.kid, sig=sig)]})


def check_manifest_signature(
    manifest: Manifest, sig: SignatureInfo, public_key_b64: str, signing_bytes: bytes | None = None
) -> bool:
    """True iff ``sig`` verifies over the manifest (``signing_bytes`` may be precomputed)."""
    try:
        raw = base64.b64decode(sig.sig, validate=True)
    except (binascii.Error, ValueError):
        return False
    data = signing_bytes or manifest_signing_bytes(manifest)
    return sig.alg == ALG and verify_signature(public_key_b64, raw, data)
