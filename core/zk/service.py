"""One function per zero-knowledge use case, called alike by the ``cap zk`` CLI and the Prefect tasks.

Setup: :func:`setup_dev` (cached development setup, NOT FOR PRODUCTION), :func:`setup_from_ptau` (phase 2 from
an operator-supplied public phase-1 file), :func:`contribute`, :func:`beacon`, :func:`verify_setup`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from core.zk import ceremony
from core.zk.ceremony import Setup
from core.zk.toolchain import Compiled, cache_dir, compile_circuit
from core.zk.witness import Circuit


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
