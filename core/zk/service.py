"""One function per zero-knowledge use case, called alike by the ``cap zk`` CLI and the Prefect tasks.

Verify: :func:`check_evidence` (v3 evidence against a commitment, pinned setups, trusted gap roots).
Setup: :func:`setup_dev` (cached development setup, NOT FOR PRODUCTION), :func:`setup_from_ptau` (phase 2 from
an operator-supplied public phase-1 file), :func:`contribute`, :func:`beacon`, :func:`verify_setup`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from core.documents import parse_model
from core.errors import InvalidInputError, NotFoundError
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
    evidence: Path, commitment: Path, setups: list[Path], gap_roots: list[str], *, allow_development: bool
) -> ScreeningCheck:
    """Check v3 screening evidence against a signed commitment, pinned setups and trusted gap roots."""
    pins = {t.vk.vk_hash: t for t in (trusted_vk(d) for d in setups)}
    return check_screening(
        _read_json(evidence, ScreeningEvidence),
        _read_json(commitment, ScreeningCommitment),
        pins,
        gap_roots,
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
