"""Read circom's .r1cs/.sym and snarkjs' .wtns, patch witnesses, and find which constraints a witness breaks.

An independent R1CS evaluator for the malicious-witness tests: it tells *which* constraint rejects a forged
witness, where ``snarkjs wtns check`` only says that one does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from core.zk.poseidon import P

LinearCombination = dict[int, int]


@dataclass(frozen=True)
class Constraint:
    a: LinearCombination
    b: LinearCombination
    c: LinearCombination

    def holds(self, w: list[int]) -> bool:
        def ev(lc: LinearCombination) -> int:
            return sum(coef * w[wire] for wire, coef in lc.items()) % P

        return ev(self.a) * ev(self.b) % P == ev(self.c)

    @property
    def wires(self) -> set[int]:
        return set(self.a) | set(self.b) | set(self.c)


def _sections(data: bytes, magic: bytes) -> dict[int, bytes]:
    assert data[:4] == magic, magic
    count = struct.unpack_from("<I", data, 8)[0]
    offset, out = 12, {}
    for _ in range(count):
        kind, size = struct.unpack_from("<IQ", data, offset)
        out[kind] = data[offset + 12 : offset + 12 + size]
        offset += 12 + size
    return out


def read_constraints(path: Path) -> list[Constraint]:
    sections = _sections(path.read_bytes(), b"r1cs")
    header = sections[1]
    n8 = struct.unpack_from("<I", header, 0)[0]
    n_constraints = struct.unpack_from("<I", header, 4 + n8 + 16 + 8)[0]
    body, offset, out = sections[2], 0, []
    for _ in range(n_constraints):
        lcs = []
        for _ in range(3):
            (terms,) = struct.unpack_from("<I", body, offset)
            offset += 4
            lc = {}
            for _ in range(terms):
                (wire,) = struct.unpack_from("<I", body, offset)
                lc[wire] = int.from_bytes(body[offset + 4 : offset + 4 + n8], "little")
                offset += 4 + n8
            lcs.append(lc)
        out.append(Constraint(*lcs))
    return out


def read_witness(path: Path) -> list[int]:
    sections = _sections(path.read_bytes(), b"wtns")
    n8 = struct.unpack_from("<I", sections[1], 0)[0]
    values = sections[2]
    return [int.from_bytes(values[i : i + n8], "little") for i in range(0, len(values), n8)]


def write_witness(template: Path, values: list[int], out: Path) -> None:
    """``template``'s bytes with the values section replaced (same header, same sizes)."""
    data = bytearray(template.read_bytes())
    n8 = struct.unpack_from("<I", _sections(bytes(data), b"wtns")[1], 0)[0]
    offset = 12
    while True:
        kind, size = struct.unpack_from("<IQ", data, offset)
        if kind == 2:
            break
        offset += 12 + size
    start = offset + 12
    for i, value in enumerate(values):
        data[start + i * n8 : start + (i + 1) * n8] = value.to_bytes(n8, "little")
    out.write_bytes(bytes(data))


def wires_by_name(sym: Path) -> dict[str, int]:
    """Signal name → witness index, for signals the optimiser kept."""
    out = {}
    for line in sym.read_text().splitlines():
        _label, wire, _component, name = line.split(",", 3)
        if int(wire) >= 0:
            out[name] = int(wire)
    return out


def broken(constraints: list[Constraint], witness: list[int]) -> list[int]:
    return [i for i, c in enumerate(constraints) if not c.holds(witness)]
