"""The circom/snarkjs toolchain as subprocesses: locate it, compile circuits into the cache, witness, prove.

The toolchain is the npm packages pinned in ``package.json``/``package-lock.json`` and installed by ``npm ci``
(``make install``). Compiled circuits live in the artifact cache (``$CAP_ZK_CACHE``, default
``~/.cache/cap-zk``), keyed by a hash of the circuit source, its parameters and the toolchain lock file, so a
changed circuit is never confused with an old build. Every directory is built under a temporary name and
renamed into place: a crash never leaves a half-built artifact that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import CapError, ConfigError
from core.fsio import atomic_write
from core.zk.witness import Circuit

ROOT = Path(__file__).resolve().parents[2]
CIRCUIT_SOURCE = ROOT / "circuits" / "screen_batch.circom"
_TIMEOUT_S = 6 * 3600


class ZkToolError(CapError):
    """A circom/snarkjs step failed (bad witness, failed check, broken artifact)."""

    code = "zk_tool_failed"


def cache_dir() -> Path:
    """Where compiled circuits, phase-1 files and setups are kept (never in git)."""
    configured = os.environ.get("CAP_ZK_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "cap-zk"


def node_modules() -> Path:
    """The installed toolchain. Raises ConfigError when ``npm ci`` has not run."""
    modules = ROOT / "node_modules"
    if (
        not (modules / "snarkjs" / "build" / "cli.cjs").is_file()
        or not (modules / "circom2" / "cli.js").is_file()
    ):
        raise ConfigError(
            "the zero-knowledge toolchain is not installed",
            file=str(modules),
            expected="`make install` (runs npm ci for snarkjs, circom2, circomlib)",
        )
    return modules


def run_node(args: Sequence[str], *, cwd: Path | None = None, what: str, stdin: str | None = None) -> str:
    """Run ``node args`` and return stdout. Raises ZkToolError naming ``what`` with the tool's last output
    lines."""
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node is not installed", expected="node >= 18 on PATH")
    try:
        done = subprocess.run(
            [node, *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ZkToolError(f"{what} timed out", transient=True) from exc
    if done.returncode != 0 or "[ERROR]" in done.stdout:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise ZkToolError(f"{what} failed: {tail}", step=what)
    return done.stdout


def snarkjs(*args: str, what: str, stdin: str | None = None) -> str:
    """Run the snarkjs CLI. Secrets go through ``stdin`` (never argv, which other local users can read)."""
    return run_node([str(node_modules() / "snarkjs" / "build" / "cli.cjs"), *args], what=what, stdin=stdin)


@dataclass(frozen=True)
class Compiled:
    """A compiled circuit shape in the cache."""

    circuit: Circuit
    directory: Path

    @property
    def r1cs(self) -> Path:
        return self.directory / "main.r1cs"

    @property
    def wasm(self) -> Path:
        return self.directory / "main_js" / "main.wasm"

    @property
    def sym(self) -> Path:
        return self.directory / "main.sym"

    @property
    def info(self) -> dict[str, Any]:
        return dict(json.loads((self.directory / "info.json").read_text()))


def circuit_id(circuit: Circuit) -> str:
    """Name plus a hash of everything the compiled artifact depends on."""
    h = hashlib.sha3_256()
    h.update(CIRCUIT_SOURCE.read_bytes())
    h.update(_main_source(circuit).encode())
    lock = ROOT / "package-lock.json"
    h.update(lock.read_bytes() if lock.is_file() else b"")
    return f"{circuit.name}-{h.hexdigest()[:16]}"


def _main_source(circuit: Circuit) -> str:
    return (
        "pragma circom 2.1.6;\n"
        'include "screen_batch.circom";\n'
        "component main {public [gapRoot, activeCount, riskPacked]} = "
        f"ScreenBatch({circuit.batch_size}, {circuit.depth}, {circuit.key_bits}, {circuit.risk_words});\n"
    )


def compile_circuit(circuit: Circuit) -> Compiled:
    """The cached build of ``circuit``, compiling it (circom --O2) on first use."""
    target = cache_dir() / "circuits" / circuit_id(circuit)
    if (target / "info.json").is_file():
        return Compiled(circuit, target)
    modules = node_modules()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        # circom2 (WASI) only reaches files below its working directory: stage the sources there.
        shutil.copytree(
            modules / "circomlib" / "circuits", work / "lib", ignore=shutil.ignore_patterns("*.js")
        )
        shutil.copy2(CIRCUIT_SOURCE, work / "lib" / CIRCUIT_SOURCE.name)
        (work / "main.circom").write_text(_main_source(circuit))
        run_node(
            [
                str(modules / "circom2" / "cli.js"),
                "main.circom",
                "--r1cs",
                "--wasm",
                "--sym",
                "--O2",
                "-l",
                "lib",
                "-o",
                ".",
            ],
            cwd=work,
            what=f"circom compile {circuit.name}",
        )
        info = {"circuit": circuit.name, "constraints": r1cs_constraints(work / "main.r1cs")}
        shutil.rmtree(work / "lib")
        atomic_write(work / "info.json", json.dumps(info).encode())
        try:
            work.rename(target)
        except OSError:  # another process finished the same build first
            if not (target / "info.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Compiled(circuit, target)


def r1cs_constraints(path: Path) -> int:
    """Number of constraints in an ``.r1cs`` file (header section). Raises ZkToolError on a malformed file."""
    data = path.read_bytes()
    if data[:4] != b"r1cs":
        raise ZkToolError("not an r1cs file", file=str(path))
    offset, sections = 12, int.from_bytes(data[8:12], "little")
    for _ in range(sections):
        kind = int.from_bytes(data[offset : offset + 4], "little")
        size = int.from_bytes(data[offset + 4 : offset + 12], "little")
        if kind == 1:
            n8 = int.from_bytes(data[offset + 12 : offset + 16], "little")
            start = offset + 16 + n8 + 4 * 4 + 8
            return int.from_bytes(data[start : start + 4], "little")
        offset += 12 + size
    raise ZkToolError("r1cs file has no header section", file=str(path))


def calculate_witness(compiled: Compiled, inputs: dict[str, Any], wtns: Path) -> None:
    """Run the circuit's witness generator; a violated constraint raises ZkToolError (``Assert Failed``)."""
    with tempfile.TemporaryDirectory() as tmp:
        input_path = Path(tmp) / "input.json"
        input_path.write_text(json.dumps(inputs))
        snarkjs("wtns", "calculate", str(compiled.wasm), str(input_path), str(wtns), what="witness")


def check_witness(compiled: Compiled, wtns: Path) -> None:
    """Check a witness against every R1CS constraint. Raises ZkToolError when one fails."""
    out = snarkjs("wtns", "check", str(compiled.r1cs), str(wtns), what="witness check")
    if "WITNESS IS CORRECT" not in out:
        raise ZkToolError("witness does not satisfy the circuit", step="witness check")


def prove(zkey: Path, wtns: Path, *, seed: bytes | None = None) -> tuple[dict[str, Any], list[str]]:
    """Groth16-prove a witness; returns snarkjs' proof JSON and public signals.

    ``seed`` (tests and golden vectors only) makes the prover's blinding scalars deterministic: such a proof
    is still sound, but anyone holding the seed can strip its zero-knowledge blinding. Production never passes
    it.
    """
    script = ROOT / "scripts" / "zk" / "prove.cjs"
    args = [str(script), str(node_modules() / "snarkjs" / "build" / "main.cjs"), str(zkey), str(wtns)]
    if seed is not None:
        args.append(seed.hex())
    out = json.loads(run_node(args, what="groth16 prove"))
    return dict(out["proof"]), list(out["publicSignals"])
