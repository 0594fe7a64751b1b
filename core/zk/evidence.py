"""The v3 screening evidence and its verification: every committed supplier is outside the trusted list.

What a verifier sees (docs/formats/proof_v3.md): the circuit shape, the vk hash, the sanctions gap root, the
high-risk jurisdictions counted against, the supplier count, the screening root and, per batch, its active
count, its Poseidon batch root, its largest tier, its number of records in high-risk jurisdictions and a
Groth16 proof. Batch roots are trees of salted Poseidon commitments, so they reveal nothing about which
suppliers they hold.

All acceptance rules are here, without I/O: :func:`check_screening` returns a :class:`ScreeningCheck` naming
each failed rule; :func:`verify_screening` raises :class:`~core.errors.VerificationError` with the first one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import blake3
from pydantic import BaseModel, ConfigDict

from core.digest import digests_equal
from core.errors import InvalidInputError, VerificationError
from core.zk.groth16 import Proof, VerifyingKey, batch_verify
from core.zk.poseidon import P
from core.zk.witness import Circuit, risk_words

SCHEME = "screen-groth16-bn254-v1"
_ROOT_DOMAIN = b"cap-verifier zk screening root v1\x00"


def field_hex(value: int) -> str:
    """``0x`` + 64 hex of a field element (how v3 writes roots)."""
    return "0x" + value.to_bytes(32, "big").hex()


def parse_field(text: str, name: str) -> int:
    """A ``0x`` + 64 hex field element. Raises InvalidInputError naming ``name``."""
    if not isinstance(text, str) or len(text) != 66 or not text.startswith("0x"):
        raise InvalidInputError("not a field element", field=name, expected="0x + 64 hex")
    try:
        value = int(text[2:], 16)
    except ValueError as exc:
        raise InvalidInputError("not a field element", field=name, expected="0x + 64 hex") from exc
    if value >= P:
        raise InvalidInputError("field element not reduced", field=name, expected="< BN254 r")
    return value


def screening_root(batch_size: int, count: int, batch_roots: Sequence[int]) -> str:
    """BLAKE3 over the batch size, the supplier count and the batch roots in order: the value the manifest
    signs."""
    h = blake3.blake3(_ROOT_DOMAIN)
    h.update(batch_size.to_bytes(4, "big") + count.to_bytes(8, "big") + len(batch_roots).to_bytes(4, "big"))
    for root in batch_roots:
        h.update(root.to_bytes(32, "big"))
    return "0x" + h.hexdigest()


class ScreeningCommitment(BaseModel):
    """The signed, hiding commitment to the screened suppliers (coexists with the BLAKE3
    ``supplier_root``)."""

    model_config = ConfigDict(frozen=True)

    scheme: str = SCHEME
    batch_size: int
    count: int
    screening_root: str


class ScreeningCommitments(BaseModel):
    """The screening commitments a ``cap-proof.v3`` manifest signs: one per screened list of records."""

    model_config = ConfigDict(frozen=True)

    suppliers: ScreeningCommitment
    ubos: ScreeningCommitment | None = None


class BatchProof(BaseModel):
    model_config = ConfigDict(frozen=True)

    active_count: int
    batch_root: str
    max_tier: int
    high_risk_count: int
    proof: Proof

    def public_signals(self, gap_root: int, risk: Sequence[int]) -> tuple[int, ...]:
        """In the circuit's order: the outputs ``batchRoot``, ``maxTier``, ``highRiskCount``, then the inputs
        ``gapRoot``, ``activeCount``, ``riskPacked``."""
        root = parse_field(self.batch_root, "batch_root")
        return (root, self.max_tier, self.high_risk_count, gap_root, self.active_count, *risk)


class ScreeningEvidence(BaseModel):
    """The ``sanctions`` evidence of a ``cap-proof.v3`` proof."""

    model_config = ConfigDict(frozen=True)

    scheme: str = SCHEME
    circuit: str
    batch_size: int
    depth: int
    vk_hash: str
    gap_root: str
    high_risk: tuple[str, ...]
    count: int
    screening_root: str
    batches: tuple[BatchProof, ...]

    @property
    def max_tier(self) -> int:
        """The largest tier of the screened records (proved per batch; 0 when there are none)."""
        return max((b.max_tier for b in self.batches), default=0)

    @property
    def high_risk_count(self) -> int:
        """How many screened records are in one of ``high_risk`` (proved per batch)."""
        return sum(b.high_risk_count for b in self.batches)


@dataclass(frozen=True)
class TrustedVk:
    """A pinned verifying key: the vk itself and the circuit shape it was set up for."""

    vk: VerifyingKey
    circuit: str
    batch_size: int
    depth: int
    production: bool


class Failure(StrEnum):
    WRONG_SCHEME = "wrong_scheme"
    UNTRUSTED_VK = "untrusted_vk"
    UNTRUSTED_LIST_ROOT = "untrusted_list_root"
    UNTRUSTED_HIGH_RISK = "untrusted_high_risk_set"
    COMMITMENT_MISMATCH = "screening_commitment_mismatch"
    COUNT_MISMATCH = "count_mismatch"
    BATCH_LAYOUT = "batch_layout"
    PROOF_INVALID = "zk_proof_invalid"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class ScreeningCheck:
    failures: tuple[tuple[Failure, str], ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.failures


def _expected_counts(count: int, batch_size: int) -> list[int]:
    full, rest = divmod(count, batch_size)
    return [batch_size] * full + ([rest] if rest or not full else [])


def _layout_failures(ev: ScreeningEvidence, commitment: ScreeningCommitment) -> list[tuple[Failure, str]]:
    out: list[tuple[Failure, str]] = []
    if ev.count != commitment.count:
        out.append(
            (
                Failure.COUNT_MISMATCH,
                f"proof screens {ev.count} suppliers, commitment holds {commitment.count}",
            )
        )
    if ev.batch_size != commitment.batch_size:
        out.append((Failure.BATCH_LAYOUT, "batch size differs from the commitment's"))
    counts = [b.active_count for b in ev.batches]
    if counts != _expected_counts(ev.count, ev.batch_size):
        out.append(
            (Failure.BATCH_LAYOUT, f"batch counts {counts[:8]} do not cover {ev.count} suppliers in order")
        )
    return out


def check_screening(
    ev: ScreeningEvidence,
    commitment: ScreeningCommitment,
    trusted_vks: Mapping[str, TrustedVk],
    trusted_gap_roots: Sequence[str],
    high_risk: Sequence[str] = (),
    *,
    allow_development: bool = False,
) -> ScreeningCheck:
    """Every rule, in order of cost; the pairing check runs only when every cheap rule passed.

    ``high_risk`` are the jurisdictions the verifier itself takes as high-risk (the HIGH ones of the trusted
    lists, none for UBOs): the proofs are checked against their packed codes, never against the evidence's
    own list. A vk pinned as a development key (``production=False``: anyone can forge under it) is refused
    unless ``allow_development`` (tests, demos).
    """
    failures: list[tuple[Failure, str]] = []
    if ev.scheme != SCHEME or commitment.scheme != SCHEME:
        return ScreeningCheck(((Failure.WRONG_SCHEME, f"expected {SCHEME}"),))
    trusted = trusted_vks.get(ev.vk_hash)
    if trusted is None or trusted.vk.vk_hash != ev.vk_hash:
        failures.append((Failure.UNTRUSTED_VK, f"vk {ev.vk_hash} is not pinned by this verifier"))
    elif (trusted.circuit, trusted.batch_size, trusted.depth) != (ev.circuit, ev.batch_size, ev.depth):
        failures.append((Failure.UNTRUSTED_VK, "vk is pinned for another circuit shape"))
    elif (not trusted.production or trusted.vk.degenerate) and not allow_development:
        kind = "degenerate (a public input is unbound)" if trusted.vk.degenerate else "a development key"
        failures.append((Failure.UNTRUSTED_VK, f"vk is {kind} (NOT FOR PRODUCTION)"))
    if not any(digests_equal(ev.gap_root, root) for root in trusted_gap_roots):
        failures.append((Failure.UNTRUSTED_LIST_ROOT, f"gap root {ev.gap_root} is not a trusted list root"))
    expected_risk = tuple(sorted(set(high_risk)))
    if tuple(ev.high_risk) != expected_risk:
        failures.append(
            (
                Failure.UNTRUSTED_HIGH_RISK,
                f"proof counts high-risk jurisdictions {list(ev.high_risk)}, the trusted lists name "
                f"{list(expected_risk)}",
            )
        )
    failures += _layout_failures(ev, commitment)
    try:
        gap_root = parse_field(ev.gap_root, "gap_root")
        roots = [parse_field(b.batch_root, f"batches[{i}].batch_root") for i, b in enumerate(ev.batches)]
        circuit = Circuit(ev.batch_size, ev.depth)
        risk = risk_words(expected_risk, circuit)
    except InvalidInputError as exc:
        return ScreeningCheck((*failures, (Failure.MALFORMED, exc.diagnostics())))
    recomputed = screening_root(ev.batch_size, ev.count, roots)
    if not (
        digests_equal(recomputed, ev.screening_root) and digests_equal(recomputed, commitment.screening_root)
    ):
        failures.append((Failure.COMMITMENT_MISMATCH, "batch roots do not rebuild the signed screening root"))
    if failures or trusted is None:
        return ScreeningCheck(tuple(failures))
    items = [(b.proof, b.public_signals(gap_root, risk)) for b in ev.batches]
    if not batch_verify(trusted.vk, items):
        failures.append((Failure.PROOF_INVALID, "a batch proof does not verify"))
    return ScreeningCheck(tuple(failures))


def verify_screening(
    ev: ScreeningEvidence,
    commitment: ScreeningCommitment,
    trusted_vks: Mapping[str, TrustedVk],
    trusted_gap_roots: Sequence[str],
    high_risk: Sequence[str] = (),
    *,
    allow_development: bool = False,
) -> None:
    """Raise VerificationError (code of the first failed rule) unless :func:`check_screening` passes."""
    result = check_screening(
        ev, commitment, trusted_vks, trusted_gap_roots, high_risk, allow_development=allow_development
    )
    if not result.ok:
        code, message = result.failures[0]
        raise VerificationError(message, code=code.value, failures=[c.value for c, _ in result.failures])
