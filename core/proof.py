"""The ``cap-proof.v2`` document: manifest, IR, per-rule results with evidence, signature.

The proof is signed with Ed25519 over ``b"<schema>\\n" + canonical JSON`` of the proof without
its ``signature`` (``cap-proof.v2``, or ``cap-proof.v3``, which differs only in its sanctions evidence and
the manifest's screening commitment). Proof files are written as canonical compact JSON plus one
newline, so the stored bytes are exactly the signed bytes (a verifier checks that, too).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.canonical import canonical_bytes, canonical_obj, dumps
from core.digest import sha3_prefixed
from core.documents import parse_json, validate_model
from core.errors import IntegrityError, InvalidInputError
from core.manifest import MANIFEST_DOMAIN, Manifest, SignatureInfo
from core.modes import CheckStatus, EnforcementMode
from core.policy.ir import PolicyIR
from core.rules import RuleResult
from core.signing import ALG, Signer, verify_signature

PROOF_SCHEMA = "cap-proof.v2"
PROOF_SCHEMA_V3 = (
    "cap-proof.v3"  # same document; sanctions evidence and manifest commitment: core/zk/proof_v3.py
)
SCHEMAS = (PROOF_SCHEMA, PROOF_SCHEMA_V3)


def _domain(proof: Proof) -> bytes:
    return proof.schema_.encode() + b"\n"


class EnforcementInfo(BaseModel):
    """The mode the prover evaluated under, whether it refused on failure, and its verdict."""

    model_config = ConfigDict(frozen=True)
    mode: EnforcementMode
    enforced: bool
    verdict: CheckStatus


class Proof(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)
    schema_: str = Field(default=PROOF_SCHEMA, alias="schema")
    created_at: str
    manifest: Manifest
    policy_id: str
    ir_hash: str
    ir: PolicyIR
    public: dict[str, int | bool | str]
    rules: list[RuleResult]
    enforcement: EnforcementInfo
    signature: SignatureInfo | None = None


class ProofForms:
    """A proof's canonical structure, prepared once; every signed or hashed byte form derives from it.

    Verification needs five of them (proof signature, manifest signature, IR hash, and the two registry
    hashes); preparing the structure is the expensive part. The unsigned body is dumped once: the file
    form is that body with the signature, the last field, spliced in.
    """

    __slots__ = ("_domain", "_unsigned", "obj")

    def __init__(self, proof: Proof) -> None:
        self.obj: dict[str, Any] = canonical_obj(proof)
        self._unsigned: bytes | None = None
        self._domain = _domain(proof)

    def unsigned_bytes(self) -> bytes:
        """Canonical JSON of the proof without its ``signature``."""
        if self._unsigned is None:
            self._unsigned = dumps({k: v for k, v in self.obj.items() if k != "signature"})
        return self._unsigned

    def signing_bytes(self) -> bytes:
        return self._domain + self.unsigned_bytes()

    def file_bytes(self) -> bytes:
        signature = self.obj.get("signature")
        if signature is None:
            return self.unsigned_bytes() + b"\n"
        return self.unsigned_bytes()[:-1] + b',"signature":' + dumps(signature) + b"}\n"

    def manifest_bytes(self) -> bytes:
        return dumps(self.obj["manifest"])

    def manifest_signing_bytes(self) -> bytes:
        return MANIFEST_DOMAIN + dumps({**self.obj["manifest"], "signatures": []})

    def ir_hash(self) -> str:
        return sha3_prefixed(dumps({**self.obj["ir"], "ir_hash": ""}))


def proof_signing_bytes(proof: Proof) -> bytes:
    return _domain(proof) + canonical_bytes(proof.model_copy(update={"signature": None}))


def sign_proof(proof: Proof, signer: Signer) -> Proof:
    sig = base64.b64encode(signer.sign(proof_signing_bytes(proof))).decode("ascii")
    return proof.model_copy(update={"signature": SignatureInfo(kid=signer.kid, alg=ALG, sig=sig)})


def check_proof_signature(proof: Proof, public_key_b64: str, signing_bytes: bytes | None = None) -> bool:
    """True iff the proof's signature verifies; ``signing_bytes`` may be precomputed (:class:`ProofForms`)."""
    sig = proof.signature
    if sig is None or sig.alg != ALG:
        return False
    try:
        raw = base64.b64decode(sig.sig, validate=True)
    except (binascii.Error, ValueError):
        return False
    return verify_signature(public_key_b64, raw, signing_bytes or proof_signing_bytes(proof))


def proof_file_bytes(proof: Proof) -> bytes:
    """The stored form: canonical compact JSON and one newline."""
    return canonical_bytes(proof) + b"\n"


def parse_proof_obj(obj: Any, source: str = "<proof>") -> Proof:
    """A proof from parsed JSON. Raises :class:`InvalidInputError` naming the first bad field."""
    if not isinstance(obj, dict):
        raise InvalidInputError("proof is not a JSON object", file=source)
    if obj.get("schema") not in SCHEMAS:
        raise InvalidInputError(
            "not a cap-proof.v2 or v3 document", file=source, field="schema", expected=" or ".join(SCHEMAS)
        )
    return validate_model(Proof, obj, source=source, what="proof", expected=str(obj["schema"]))


def parse_proof_bytes(data: bytes, source: str = "<proof>") -> Proof:
    """Parse stored proof bytes and check they are canonical (exactly the signed bytes)."""
    obj = parse_json(data, source=source, what="proof", expected=PROOF_SCHEMA)
    proof = parse_proof_obj(obj, source)
    try:
        canonical = canonical_bytes(proof)
    except InvalidInputError as exc:
        raise IntegrityError(f"proof is not canonical: {exc.message}", file=source) from None
    if data not in (canonical, canonical + b"\n"):
        raise IntegrityError("proof bytes are not in canonical form (edited after signing?)", file=source)
    return proof
