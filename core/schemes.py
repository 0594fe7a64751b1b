"""What differs between proof versions when verifying: the rule context, the disclosure bindings and the
attested checks. :func:`scheme_for` picks v2's parts or v3's (``core/zk/verify_v3.py``, imported only for a
``cap-proof.v3``); :mod:`core.verify` runs every other check the same way for both. Pure.
"""

from __future__ import annotations

from typing import Protocol

from core.checks import Check
from core.context import PublicContext
from core.disclosure import attested_checks, binding_checks
from core.proof import PROOF_SCHEMA_V3, Proof
from core.trust import TrustAnchors, TrustedLists


class Scheme(Protocol):
    """The version-specific parts of one verification."""

    def context(self, proof: Proof, trusted: TrustedLists | None) -> PublicContext: ...
    def bindings(self, proof: Proof) -> list[Check]: ...
    def attested(self, proof: Proof) -> list[Check]: ...


class V2Scheme:
    """``cap-proof.v2``: Merkle (non-)membership evidence per screened key (ADR 0004)."""

    def context(self, proof: Proof, trusted: TrustedLists | None) -> PublicContext:
        names = {n.name: n.refs for n in trusted.lists.names} if trusted is not None else None
        version = trusted.lists.version if trusted is not None else None
        return PublicContext(proof.manifest, proof.public, names, version)

    def bindings(self, proof: Proof) -> list[Check]:
        return binding_checks(proof)

    def attested(self, proof: Proof) -> list[Check]:
        return attested_checks(proof)


def scheme_for(proof: Proof, trust: TrustAnchors) -> Scheme:
    """v2's parts, or v3's for a ``cap-proof.v3``."""
    if proof.schema_ == PROOF_SCHEMA_V3:
        from core.zk.verify_v3 import ZkScheme

        return ZkScheme(trust)
    return V2Scheme()
