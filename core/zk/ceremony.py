"""Trusted setup for the v3 circuits: phase 1 (powers of tau) and the per-circuit Groth16 phase 2.

A setup directory holds the numbered phase-2 keys (``0000.zkey`` … ), ``final.zkey``, the exported
``verification_key.json`` and ``setup.json``, the transcript: where phase 1 came from (an operator-supplied
public ceremony file checked with ``snarkjs powersoftau verify``, or a *development* file generated here,
which is never for production because its randomness is a public beacon), each contribution's name and snarkjs
hash, the beacon, and the vk hash. :func:`verify_setup` re-checks the whole chain with ``snarkjs zkey verify``
from the r1cs and the phase-1 file, and that the exported vk is the final key's.

Soundness rests on one honest phase-2 contributor whose randomness is destroyed; the prover must not be the
only one (docs/adr/0012-zk-trusted-setup.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError, NotFoundError, VerificationError
from core.fsio import atomic_write
from core.zk.groth16 import VerifyingKey, vk_from_snarkjs
from core.zk.toolchain import Compiled, ZkToolError, cache_dir, compile_circuit, snarkjs
from core.zk.witness import Circuit

DEV_BEACON = "cap-verifier-dev-beacon-NOT-FOR-PRODUCTION"
DEV_PHASE1_BEACON = bytes(range(1, 32)).hex()
"""Public beacon of the development phase 1: everyone knows τ, which is the point of calling it NOT FOR
PRODUCTION."""
_HASH_LINE = re.compile(r"Contribution Hash:\s*((?:[0-9a-f]{8}\s*)+)", re.IGNORECASE)
_TRANSCRIPT_FIELDS = ("format", "circuit", "batch_size", "depth", "phase1", "steps", "final")
_BEACON_HEX = re.compile(r"[0-9a-f]{2,128}")


class SetupInvalidError(VerificationError):
    """A trusted-setup artefact does not verify (phase-1 file, contribution chain, final key or vk)."""

    code = "zk_setup_invalid"


def _checked(ok_text: str, what: str, file: Path, *args: str) -> str:
    """Run a snarkjs verification; any failure (non-zero exit or no ``ok_text``) is SetupInvalidError."""
    try:
        out = snarkjs(*args, what=what)
    except ZkToolError as exc:
        raise SetupInvalidError(f"{what}: {exc.message}", file=str(file)) from exc
    if ok_text not in out:
        raise SetupInvalidError(f"{what} did not report {ok_text!r}", file=str(file))
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ptau_power(compiled: Compiled) -> int:
    """The smallest phase-1 size (2^power points) that fits the circuit."""
    need = int(compiled.info["constraints"]) + 8
    return max(8, (need - 1).bit_length())


def dev_phase1(power: int) -> Path:
    """A locally generated, prepared phase-1 file of 2^power points, cached. NOT FOR PRODUCTION: its only
    contribution is a public beacon, so τ is known to anyone who reads this code."""
    target = cache_dir() / "ptau" / f"dev-{power}.ptau"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    work.mkdir()
    try:
        snarkjs("powersoftau", "new", "bn128", str(power), str(work / "0.ptau"), what="powersoftau new")
        snarkjs(
            "powersoftau",
            "beacon",
            str(work / "0.ptau"),
            str(work / "1.ptau"),
            DEV_PHASE1_BEACON,
            "10",
            "-n=dev",
            what="powersoftau beacon",
        )
        snarkjs(
            "powersoftau",
            "prepare",
            "phase2",
            str(work / "1.ptau"),
            str(work / "final.ptau"),
            what="powersoftau prepare phase2",
        )
        (work / "final.ptau").rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def verify_phase1(ptau: Path) -> bool:
    """Check an operator-supplied phase-1 file; returns whether it may serve production, i.e. is not our own
    development file. Raises SetupInvalidError unless snarkjs says ``Powers of Tau Ok!``."""
    if not ptau.is_file():
        raise NotFoundError("phase-1 file not found", file=str(ptau))
    out = _checked("Powers of Tau Ok!", "powersoftau verify", ptau, "powersoftau", "verify", str(ptau))
    return f"Beacon generator: {DEV_PHASE1_BEACON}" not in out


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _contribution_hash(output: str) -> str:
    found = _HASH_LINE.findall(output)
    return " ".join(found[-1].split()) if found else ""


def read_transcript(directory: Path) -> dict[str, Any]:
    """The transcript ``setup.json``. Raises NotFoundError, or InvalidInputError naming a missing field."""
    path = directory / "setup.json"
    if not path.is_file():
        raise NotFoundError("not a setup directory (no setup.json)", file=str(directory))
    try:
        transcript = dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("setup.json is not a JSON object", file=str(path)) from exc
    for name in _TRANSCRIPT_FIELDS:
        if name not in transcript:
            raise InvalidInputError(
                "setup.json lacks a field", file=str(path), field=name, expected="cap-zk-setup.v1"
            )
    return transcript


def _save(directory: Path, transcript: dict[str, Any]) -> None:
    atomic_write(directory / "setup.json", json.dumps(transcript, indent=1).encode())


def _latest(directory: Path, transcript: dict[str, Any]) -> Path:
    return directory / f"{len(transcript['steps']):04d}.zkey"


def new_setup(compiled: Compiled, ptau: Path, directory: Path, *, production: bool) -> dict[str, Any]:
    """Start phase 2 (``groth16 setup``) for ``compiled`` from a prepared phase-1 file."""
    if (directory / "setup.json").exists():
        raise InvalidInputError("setup directory already holds a setup", file=str(directory))
    directory.mkdir(parents=True, exist_ok=True)
    snarkjs(
        "groth16", "setup", str(compiled.r1cs), str(ptau), str(directory / "0000.zkey"), what="groth16 setup"
    )
    transcript: dict[str, Any] = {
        "format": "cap-zk-setup.v1",
        "circuit": compiled.directory.name,
        "batch_size": compiled.circuit.batch_size,
        "depth": compiled.circuit.depth,
        "phase1": {"file": str(ptau), "sha256": _sha256(ptau), "production": production},
        "steps": [],
        "final": None,
    }
    _save(directory, transcript)
    return transcript


def contribute(directory: Path, name: str, entropy: bytes | None = None) -> str:
    """Add one phase-2 contribution; returns its snarkjs contribution hash. ``entropy`` defaults to 64 fresh
    random bytes that exist only in this call (never logged, never stored)."""
    transcript = read_transcript(directory)
    _require_open(transcript, directory)
    source, target = _latest(directory, transcript), directory / f"{len(transcript['steps']) + 1:04d}.zkey"
    secret = (entropy or secrets.token_bytes(64)).hex()
    out = snarkjs(
        "zkey",
        "contribute",
        str(source),
        str(target),
        f"--name={name}",
        what="zkey contribute",
        stdin=secret + "\n",
    )
    digest = _contribution_hash(out)
    transcript["steps"].append(
        {"kind": "contribution", "name": name, "hash": digest, "sha256": _sha256(target)}
    )
    _save(directory, transcript)
    return digest


def beacon(
    directory: Path, beacon_hex: str, iterations_exp: int = 10, name: str = "final beacon"
) -> dict[str, Any]:
    """Close phase 2 with a public random beacon, write ``final.zkey`` and ``verification_key.json``."""
    if not _BEACON_HEX.fullmatch(beacon_hex) or len(beacon_hex) % 2:
        raise InvalidInputError("beacon must be hex", field="beacon", expected="even-length lowercase hex")
    if not 10 <= iterations_exp <= 63:
        raise InvalidInputError("beacon iterations out of range", field="iterations", expected="10..63")
    transcript = read_transcript(directory)
    _require_open(transcript, directory)
    final = directory / "final.zkey"
    out = snarkjs(
        "zkey",
        "beacon",
        str(_latest(directory, transcript)),
        str(final),
        beacon_hex,
        str(iterations_exp),
        f"-n={name}",
        what="zkey beacon",
    )
    snarkjs(
        "zkey",
        "export",
        "verificationkey",
        str(final),
        str(directory / "verification_key.json"),
        what="zkey export verificationkey",
    )
    vk = load_vk(directory)
    transcript["steps"].append(
        {
            "kind": "beacon",
            "name": name,
            "beacon": beacon_hex,
            "iterations_exp": iterations_exp,
            "hash": _contribution_hash(out),
        }
    )
    transcript["final"] = {"sha256": _sha256(final), "vk_hash": vk.vk_hash}
    _save(directory, transcript)
    return transcript


def _require_open(transcript: dict[str, Any], directory: Path) -> None:
    if transcript["final"] is not None:
        raise InvalidInputError("setup is already closed by a beacon", file=str(directory))


def setup_circuit(directory: Path) -> Circuit:
    """The circuit shape a setup directory was made for (from its transcript)."""
    transcript = read_transcript(directory)
    return Circuit(int(transcript["batch_size"]), int(transcript["depth"]))


def load_vk(directory: Path) -> VerifyingKey:
    path = directory / "verification_key.json"
    if not path.is_file():
        raise NotFoundError("setup has no verification key yet (run the beacon)", file=str(path))
    return vk_from_snarkjs(json.loads(path.read_text()), source=str(path))


def verify_setup(compiled: Compiled, ptau: Path, directory: Path) -> dict[str, Any]:
    """Re-check a finished setup: every contribution from the r1cs and phase-1 file (``snarkjs zkey verify``),
    the final key's hash, and that ``verification_key.json`` is the final key's. Raises SetupInvalidError on
    any mismatch."""
    transcript = read_transcript(directory)
    final = directory / "final.zkey"
    if transcript["final"] is None or not final.is_file():
        raise SetupInvalidError("setup is not finished (no beacon)", file=str(directory))
    if _sha256(ptau) != transcript["phase1"]["sha256"]:
        raise SetupInvalidError("phase-1 file is not the one this setup was built from", file=str(ptau))
    if _sha256(final) != transcript["final"]["sha256"]:  # cheap refusals first
        raise SetupInvalidError("final.zkey is not the key the transcript recorded", file=str(final))
    _checked("ZKey Ok!", "zkey verify", final, "zkey", "verify", str(compiled.r1cs), str(ptau), str(final))
    exported = directory / ".vk-check.json"
    snarkjs(
        "zkey", "export", "verificationkey", str(final), str(exported), what="zkey export verificationkey"
    )
    fresh = vk_from_snarkjs(json.loads(exported.read_text()))
    exported.unlink()
    if fresh != load_vk(directory) or fresh.vk_hash != transcript["final"]["vk_hash"]:
        raise SetupInvalidError("verification_key.json is not the final key's", file=str(directory))
    return transcript


@dataclass(frozen=True)
class Setup:
    """A finished setup for one compiled circuit: what the prover needs (zkey, wasm) and the vk."""

    compiled: Compiled
    directory: Path

    @property
    def zkey(self) -> Path:
        return self.directory / "final.zkey"

    @property
    def vk(self) -> VerifyingKey:
        return load_vk(self.directory)

    @property
    def transcript(self) -> dict[str, Any]:
        return read_transcript(self.directory)


def open_setup(compiled: Compiled, directory: Path) -> Setup:
    """A finished setup directory for ``compiled``. Raises NotFoundError / InvalidInputError when it is
    not."""
    transcript = read_transcript(directory)
    if transcript["circuit"] != compiled.directory.name:
        raise InvalidInputError(
            "setup was made for another circuit build", file=str(directory), expected=compiled.directory.name
        )
    if transcript["final"] is None:
        raise InvalidInputError("setup is not finished (run the beacon)", file=str(directory))
    return Setup(compiled, directory)


def dev_setup(circuit: Circuit) -> Setup:
    """The cached development setup of ``circuit``: local phase 1 and a beacon-only phase 2, fully
    deterministic (so golden vectors regenerate byte-identically) and therefore NOT FOR PRODUCTION: anyone can
    forge proofs."""
    compiled = compile_circuit(circuit)
    directory = cache_dir() / "setups" / compiled.directory.name / "dev"
    try:
        if read_transcript(directory)["final"] is not None:
            return Setup(compiled, directory)
    except (NotFoundError, InvalidInputError):
        pass  # absent, or left by an older build of this tool: rebuild (deterministic, same keys)
    ptau = dev_phase1(ptau_power(compiled))
    work = directory.with_name(f".dev.{secrets.token_hex(4)}")
    try:
        new_setup(compiled, ptau, work, production=False)
        beacon(work, _hex(DEV_BEACON), 10, name="dev beacon NOT FOR PRODUCTION")
        shutil.rmtree(directory, ignore_errors=True)
        work.rename(directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Setup(compiled, directory)
