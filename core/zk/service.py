"""One function per zero-knowledge use case, called alike by the ``cap zk`` CLI and the Prefect tasks.

Verify: :func:`check_evidence` (v3 evidence against a commitment, pinned setups, trusted gap roots).
Setup: :func:`setup_dev` (cached development setup, NOT FOR PRODUCTION), :func:`setup_from_ptau` (phase 2 from
an operator-supplied public phase-1 file), :func:`contribute`, :func:`beacon`, :func:`verify_setup`.
Audit: :func:`open_supplier_row` (the prover opens one committed supplier), :func:`check_supplier_opening` (an
auditor checks that opening against the proof's two commitments).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from core.commitments import RootScheme, Supplier, supplier_leaf
from core.context import check_key_version
from core.documents import parse_model, validate_model
from core.errors import InvalidInputError, NotFoundError
from core.merkle import MerkleTree
from core.name_keys import KeyVersion
from core.proof import PROOF_SCHEMA_V3, Proof
from core.trust import PinnedVk
from core.zk import ceremony
from core.zk.ceremony import Setup
from core.zk.evidence import (
    ScreeningCheck,
    ScreeningCommitment,
    ScreeningEvidence,
    TrustedVk,
    check_screening,
)
from core.zk.opening import OpeningDocument, check_opening, open_supplier
from core.zk.proof_v3 import ZK_EVIDENCE
from core.zk.prover import screened_leaves
from core.zk.toolchain import Compiled, cache_dir, compile_circuit
from core.zk.witness import Circuit

_M = TypeVar("_M", bound=BaseModel)


def setup_dev(circuit: Circuit) -> Setup:
    """Compile ``circuit`` and build (or reuse) its deterministic development setup."""
    return ceremony.dev_setup(circuit)


def setup_from_ptau(circuit: Circuit, ptau: Path, directory: Path | None = None) -> dict[str, Any]:
    """Check an operator-supplied phase-1 file with snarkjs, compile, and start phase 2 in ``directory``.

    Raises SetupInvalidError when the phase-1 file does not verify, InvalidInputError when it is too small.
    """
    production = ceremony.verify_phase1(ptau)
    compiled = compile_circuit(circuit)
    target = directory or cache_dir() / "setups" / compiled.directory.name / "ceremony"
    transcript = ceremony.new_setup(compiled, ptau, target, production=production)
    return {"directory": str(target), **transcript}


def _compiled_for(directory: Path) -> Compiled:
    compiled = compile_circuit(ceremony.setup_circuit(directory))
    transcript = ceremony.read_transcript(directory)
    if transcript["circuit"] != compiled.directory.name:
        raise InvalidInputError(
            "setup was made for another build of the circuit",
            file=str(directory),
            expected=compiled.directory.name,
        )
    return compiled


def contribute(directory: Path, name: str) -> str:
    """Add one phase-2 contribution with fresh local randomness; returns the hash to publish."""
    if not name.strip():
        raise InvalidInputError("contributor name is empty", field="name", expected="who contributes")
    return ceremony.contribute(directory, name)


def beacon(directory: Path, beacon_hex: str, iterations_exp: int) -> dict[str, Any]:
    """Close phase 2 with a public beacon and export the verifying key."""
    return ceremony.beacon(directory, beacon_hex, iterations_exp)


def verify_setup(directory: Path, ptau: Path | None = None) -> dict[str, Any]:
    """Re-check a finished setup from its r1cs and phase-1 file; returns the transcript with the vk hash."""
    compiled = _compiled_for(directory)
    transcript = ceremony.read_transcript(directory)
    source = ptau or Path(transcript["phase1"]["file"])
    return ceremony.verify_setup(compiled, source, directory)


def trusted_vk(directory: Path) -> TrustedVk:
    """Pin the verifying key of a finished setup directory, with the circuit shape and production flag."""
    transcript = ceremony.read_transcript(directory)
    circuit = ceremony.setup_circuit(directory)
    vk = ceremony.load_vk(directory)
    if transcript["final"] is None or transcript["final"]["vk_hash"] != vk.vk_hash:
        raise ceremony.SetupInvalidError(
            "verification_key.json is not the transcript's final key", file=str(directory)
        )
    production = bool(transcript["phase1"]["production"])
    return TrustedVk(vk, circuit.name, circuit.batch_size, circuit.depth, production=production)


def _read_json(path: Path, model: type[_M]) -> _M:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFoundError("file not found", file=str(path)) from exc
    # the shared reader: nesting bounded before parsing, the first bad field named (core.documents)
    return parse_model(model, data, source=str(path), what=model.__name__)


def check_evidence(
    evidence: Path,
    commitment: Path,
    setups: list[Path],
    gap_roots: list[str],
    high_risk: list[str],
    *,
    allow_development: bool,
) -> ScreeningCheck:
    """Check v3 screening evidence against a signed commitment, pinned setups, trusted gap roots and the
    high-risk jurisdictions the verifier counts against."""
    pins = {t.vk.vk_hash: t for t in (trusted_vk(d) for d in setups)}
    return check_screening(
        _read_json(evidence, ScreeningEvidence),
        _read_json(commitment, ScreeningCommitment),
        pins,
        gap_roots,
        high_risk,
        allow_development=allow_development,
    )


def pin(directory: Path) -> PinnedVk:
    """The pin of a finished setup directory's verifying key (``cap zk pin``; a verifier installs it)."""
    t = trusted_vk(directory)
    return PinnedVk(
        origin=f"--zk-setup {directory}",
        circuit=t.circuit,
        batch_size=t.batch_size,
        depth=t.depth,
        production=t.production,
        vk_hash=t.vk.vk_hash,
        vk=t.vk,
    )


def dev_pin(circuit: Circuit) -> PinnedVk:
    """The pin of ``circuit``'s development setup (built if missing): NOT FOR PRODUCTION."""
    return pin(setup_dev(circuit).directory)


def _supplier_evidence(proof: Proof) -> tuple[ScreeningEvidence, KeyVersion]:
    """The v3 supplier screening evidence of ``proof`` and the key version it screened under."""
    if proof.schema_ != PROOF_SCHEMA_V3 or proof.manifest.screening is None:
        raise InvalidInputError(
            f"an opening needs a cap-proof.v3; this is {proof.schema_} (a v2 proof discloses every key)",
            field="schema",
            expected=PROOF_SCHEMA_V3,
        )
    if proof.manifest.root_scheme is not RootScheme.MERKLE:
        raise InvalidInputError(
            "an opening needs the Merkle supplier commitment",
            field="manifest.root_scheme",
            expected=RootScheme.MERKLE.value,
        )
    rules = {
        r.id for r in proof.ir.rules if isinstance(r.lhs, dict) and r.lhs.get("var") == "supplier_hashes"
    }
    for result in proof.rules:
        if result.rule_id in rules and isinstance(result.evidence.get(ZK_EVIDENCE), dict):
            evidence = validate_model(
                ScreeningEvidence,
                result.evidence[ZK_EVIDENCE],
                source="proof",
                what="supplier screening evidence",
            )
            return evidence, check_key_version(result.evidence)
    raise InvalidInputError(
        "the proof screens no suppliers in zero knowledge",
        field="rules",
        expected="a supplier screening rule",
    )


def open_supplier_row(
    proof: Proof, suppliers: Sequence[Supplier], salt_seed: bytes, *, row: int | None, name: str | None
) -> OpeningDocument:
    """The prover's opening of one committed supplier (by ``row`` or exact ``name``) for an auditor.

    ``suppliers`` must be the records the proof's manifest commits to, ``salt_seed`` the seed the proof was
    built with. Raises InvalidInputError (other records, other seed, no such row) or NotFoundError (no such
    name).
    """
    evidence, version = _supplier_evidence(proof)
    root = "0x" + MerkleTree([supplier_leaf(s) for s in suppliers]).root.hex()
    if root != proof.manifest.supplier_root:
        raise InvalidInputError(
            "these supplier records are not the ones the proof commits to",
            field="suppliers",
            expected=f"records with supplier_root {proof.manifest.supplier_root}",
            found=root,
        )
    index = _row_of(suppliers, row, name)
    opening = open_supplier(
        screened_leaves(suppliers, salt_seed, version), suppliers, evidence.batch_size, index
    )
    if check_opening(opening, bytes.fromhex(root[2:]), evidence, version):
        raise InvalidInputError(
            "this salt seed did not build the proof's batches (another key directory?)",
            field="salt_seed",
            expected="the seed `cap proof build` used",
        )
    return OpeningDocument(subject=proof.manifest.subject, supplier_root=root, opening=opening)


def _row_of(suppliers: Sequence[Supplier], row: int | None, name: str | None) -> int:
    if (row is None) == (name is None):
        raise InvalidInputError("give exactly one of row or name", field="row", expected="row or name")
    if row is not None:
        if not 0 <= row < len(suppliers):
            raise InvalidInputError(
                f"row {row} is outside the {len(suppliers)} committed suppliers",
                field="row",
                expected=f"0 … {len(suppliers) - 1}",
            )
        return row
    rows = [i for i, s in enumerate(suppliers) if s.name == name]
    if not rows:
        raise NotFoundError(f"no committed supplier is named {name!r}", field="name")
    if len(rows) > 1:
        raise InvalidInputError(
            f"{len(rows)} committed suppliers are named {name!r} (rows {rows}); open one by row",
            field="name",
            expected="a unique name or --row",
        )
    return rows[0]


def check_supplier_opening(proof: Proof, document: OpeningDocument) -> list[str]:
    """Failures of an auditor's check that ``document`` opens a supplier of ``proof`` (empty: it does).

    The opening is checked against the proof's signed BLAKE3 supplier root and its proved Poseidon batches;
    that the proof itself verifies is `cap verify`'s job.
    """
    evidence, version = _supplier_evidence(proof)
    failures = []
    if document.subject != proof.manifest.subject or document.supplier_root != proof.manifest.supplier_root:
        failures.append("the opening names another proof (subject or supplier_root differ)")
    root = bytes.fromhex(proof.manifest.supplier_root.removeprefix("0x"))
    return failures + check_opening(document.opening, root, evidence, version)
