"""Proving v3 screening evidence: committed suppliers → screened leaves → per-batch Groth16 proofs → evidence.

Each batch proof is cached on disk by the hash of everything it depends on (circuit build, vk, gap root, the
batch's private inputs), so re-proving after adding suppliers or an unchanged list only proves the batches
that changed. The cache holds only proofs and public values, never keys or salts. Proving is minutes of CPU
and runs in the ``zk-prove`` flow (flows/zk_prove.py), never on a request path.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

from core.canonical import canonical_bytes
from core.commitments import Supplier, supplier_leaf
from core.errors import InvalidInputError, NotFoundError, VerificationError
from core.fsio import atomic_write
from core.name_keys import KeyVersion
from core.sanctions import RiskLevel
from core.screening import ListsFile, screening_key
from core.zk.ceremony import Setup
from core.zk.evidence import (
    BatchProof,
    ScreeningCommitment,
    ScreeningEvidence,
    field_hex,
    screening_root,
)
from core.zk.gaptree import GapTree, key248
from core.zk.groth16 import proof_from_snarkjs, public_from_snarkjs, verify
from core.zk.toolchain import calculate_witness, prove
from core.zk.witness import (
    Circuit,
    ScreenedLeaf,
    batch_input,
    batch_outputs,
    batch_root,
    batches,
    blake_field,
    derive_salt,
    jurisdiction_code,
    risk_alpha2,
)


def high_risk_jurisdictions(lists: ListsFile | None) -> tuple[str, ...]:
    """The jurisdictions a v3 proof counts suppliers in: the HIGH ones of ``lists``, sorted (none when the
    lists carry no jurisdiction levels), as ``high_risk_supplier_count`` counts them."""
    levels = lists.high_risk if lists is not None else None
    return tuple(sorted(j for j, level in (levels or {}).items() if level is RiskLevel.HIGH))


def gap_tree(lists: ListsFile, depth: int) -> GapTree:
    """The Poseidon gap tree over a ``cap-lists.v1`` file's screening keys (same keys, same order)."""
    return GapTree((key248(bytes.fromhex(k[2:])) for k in lists.keys), depth)


def read_salt_seed(path: Path) -> bytes:
    """The prover's secret 32-byte salt seed (64 hex characters in a file). Raises
    InvalidInputError/NotFoundError."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise NotFoundError("salt seed file not found", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            "salt seed is not hex text", file=str(path), expected="64 hex characters"
        ) from exc
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInputError(
            "salt seed must be 64 lowercase hex characters", file=str(path), expected="32 bytes"
        )
    return bytes.fromhex(text)


def cached_proof(
    setup: Setup, gaps: GapTree, risk: Sequence[int], batch: Sequence[ScreenedLeaf], cache: Path
) -> BatchProof | None:
    """The cached proof of exactly these inputs, if any."""
    path = cache / f"{batch_key(setup, gaps, risk, batch)}.json"
    return BatchProof.model_validate_json(path.read_bytes()) if path.is_file() else None


def screened_leaves(
    suppliers: Sequence[Supplier], salt_seed: bytes, version: KeyVersion = KeyVersion.V1
) -> list[ScreenedLeaf]:
    """The circuit's view of each committed supplier, in commitment row order.

    ``version`` must be the key version of the lists the gap tree is built from (``lists.version``).
    """
    return [
        ScreenedLeaf(
            key248(screening_key(s.name, version)),
            derive_salt(salt_seed, i),
            blake_field(supplier_leaf(s)),
            tier=s.tier,
            jurisdiction=jurisdiction_code(s.jurisdiction),
        )
        for i, s in enumerate(suppliers)
    ]


def commit(leaves: Sequence[ScreenedLeaf], circuit: Circuit) -> ScreeningCommitment:
    """The hiding screening commitment over ``leaves`` (what the manifest signs)."""
    roots = [batch_root(b, circuit) for b in batches(leaves, circuit.batch_size)]
    return ScreeningCommitment(
        batch_size=circuit.batch_size,
        count=len(leaves),
        screening_root=screening_root(circuit.batch_size, len(leaves), roots),
    )


def batch_key(setup: Setup, gaps: GapTree, risk: Sequence[int], batch: Sequence[ScreenedLeaf]) -> str:
    """The cache key of one batch proof: a hash over its circuit build, vk, public inputs and private
    inputs."""
    h = hashlib.sha3_256()
    h.update(setup.compiled.directory.name.encode() + b"\x00" + setup.vk.vk_hash.encode())
    h.update(gaps.root.to_bytes(32, "big") + len(batch).to_bytes(4, "big") + len(risk).to_bytes(4, "big"))
    for word in risk:
        h.update(word.to_bytes(32, "big"))
    for leaf in batch:
        h.update(
            leaf.key.to_bytes(32, "big")
            + leaf.salt.to_bytes(32, "big")
            + leaf.blake_leaf.to_bytes(32, "big")
            + leaf.tier.to_bytes(2, "big")
            + leaf.jurisdiction.to_bytes(2, "big")
        )
    return h.hexdigest()


def prove_batch(
    setup: Setup,
    gaps: GapTree,
    risk: Sequence[int],
    batch: Sequence[ScreenedLeaf],
    *,
    cache: Path | None = None,
    seed: bytes | None = None,
) -> BatchProof:
    """One batch proof under the public ``risk`` words, read from ``cache`` (a directory) when a proof of
    the same inputs is there.

    Raises InvalidInputError (code ``listed_key``) when a key is listed, ZkToolError when proving fails, and
    VerificationError when the fresh proof does not verify (a broken setup must never yield evidence).
    """
    circuit = setup.compiled.circuit
    key = batch_key(setup, gaps, risk, batch)
    cached = None if cache is None or seed is not None else cache / f"{key}.json"
    if cached is not None and cached.is_file():
        return BatchProof.model_validate_json(cached.read_bytes())
    if cache is not None and seed is None:
        cache.mkdir(parents=True, exist_ok=True)
    inputs = batch_input(batch, circuit, gaps, risk)
    with tempfile.TemporaryDirectory() as tmp:
        wtns = Path(tmp) / "batch.wtns"
        calculate_witness(setup.compiled, inputs, wtns)
        proof_doc, public_doc = prove(setup.zkey, wtns, seed=seed)
    proof, public = proof_from_snarkjs(proof_doc), public_from_snarkjs(public_doc)
    root, max_tier, high_risk = batch_outputs(batch, circuit, risk)
    result = BatchProof(
        active_count=len(batch),
        batch_root=field_hex(root),
        max_tier=max_tier,
        high_risk_count=high_risk,
        proof=proof,
    )
    if public != result.public_signals(gaps.root, risk) or not verify(setup.vk, proof, public):
        raise VerificationError("fresh batch proof does not verify", code="zk_proof_invalid")
    if cached is not None:
        atomic_write(cached, result.model_dump_json().encode())
    return result


def assemble(
    setup: Setup,
    gaps: GapTree,
    risk: Sequence[int],
    leaves: Sequence[ScreenedLeaf],
    proofs: Sequence[BatchProof],
) -> ScreeningEvidence:
    """The evidence over all batches (in order). Raises VerificationError when the proofs do not match."""
    circuit = setup.compiled.circuit
    commitment = commit(leaves, circuit)
    roots = [int(p.batch_root, 16) for p in proofs]
    if screening_root(circuit.batch_size, len(leaves), roots) != commitment.screening_root:
        raise VerificationError(
            "batch proofs do not rebuild the screening commitment", code="screening_commitment_mismatch"
        )
    return ScreeningEvidence(
        circuit=circuit.name,
        batch_size=circuit.batch_size,
        depth=circuit.depth,
        vk_hash=setup.vk.vk_hash,
        gap_root=field_hex(gaps.root),
        high_risk=risk_alpha2(risk),
        count=len(leaves),
        screening_root=commitment.screening_root,
        batches=tuple(proofs),
    )


def prove_all(
    setup: Setup,
    gaps: GapTree,
    risk: Sequence[int],
    leaves: Sequence[ScreenedLeaf],
    *,
    cache: Path | None = None,
    seed: bytes | None = None,
) -> ScreeningEvidence:
    """Prove every batch in turn (the flow does the same in parallel) and assemble the evidence."""
    parts = batches(leaves, setup.compiled.circuit.batch_size)
    proofs = [
        prove_batch(
            setup, gaps, risk, b, cache=cache, seed=None if seed is None else seed + i.to_bytes(4, "big")
        )
        for i, b in enumerate(parts)
    ]
    return assemble(setup, gaps, risk, leaves, proofs)


def dump(ev: ScreeningEvidence) -> bytes:
    """Canonical JSON bytes of the evidence."""
    return canonical_bytes(ev)
