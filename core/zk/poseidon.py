"""circomlib-compatible Poseidon over the BN254 scalar field (arity 1..4).

The constants are circomlibjs@0.1.7's optimised tables (``poseidon_constants.json``, copied verbatim; the
sparse- matrix form of the partial rounds), so ``poseidon([a, b])`` equals circomlib's ``Poseidon(2)`` in a
circuit and ``circomlibjs.buildPoseidon()`` in node. tests/unit/test_zk_poseidon.py checks both against node.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from core.errors import InvalidInputError

P = 21888242871839275222246405745257275088548364400416034343698204186575808495617
"""The BN254 (alt_bn128) scalar field order: circom's default prime."""

_CONSTANTS = Path(__file__).with_name("poseidon_constants.json")
_ROUNDS_F = 8


@dataclass(frozen=True)
class _Tables:
    t: int
    rounds_p: int
    c: tuple[int, ...]
    s: tuple[int, ...]
    m: tuple[tuple[int, ...], ...]
    p: tuple[tuple[int, ...], ...]


def _columns(matrix: Sequence[Sequence[str]]) -> tuple[tuple[int, ...], ...]:
    size = len(matrix)
    return tuple(tuple(int(matrix[j][i], 16) for j in range(size)) for i in range(size))


@cache
def _tables(arity: int) -> _Tables:
    raw = json.loads(_CONSTANTS.read_text(encoding="utf-8"))["arity"][str(arity)]

    def ints(values: Sequence[str]) -> tuple[int, ...]:
        return tuple(int(v, 16) for v in values)

    return _Tables(
        t=arity + 1,
        rounds_p=int(raw["rounds_p"]),
        c=ints(raw["C"]),
        s=ints(raw["S"]),
        m=_columns(raw["M"]),
        p=_columns(raw["P"]),
    )


def _mix(state: list[int], columns: tuple[tuple[int, ...], ...]) -> list[int]:
    """``state × M`` with ``columns[i]`` the i-th column of M (sum first, one reduction per output)."""
    return [sum(m * s for m, s in zip(column, state, strict=True)) % P for column in columns]


def _sbox(x: int) -> int:
    x2 = x * x % P
    return x2 * x2 % P * x % P


def _full_round(
    state: list[int], c: tuple[int, ...], offset: int | None, columns: tuple[tuple[int, ...], ...]
) -> list[int]:
    state = [_sbox(a) for a in state]
    if offset is not None:
        state = [a + c[offset + i] for i, a in enumerate(state)]  # reduced by the mix
    return _mix(state, columns)


def poseidon(inputs: Sequence[int]) -> int:
    """Poseidon hash of 1..4 field elements, exactly as circomlib's ``Poseidon(n)``.

    Raises InvalidInputError for an unsupported arity or an input outside ``[0, P)``.
    """
    arity = len(inputs)
    if not 1 <= arity <= 4:
        raise InvalidInputError(
            "Poseidon takes 1 to 4 inputs", field="inputs", expected="1..4 field elements"
        )
    for value in inputs:
        if not 0 <= value < P:
            raise InvalidInputError("Poseidon input is not a BN254 field element", expected="0 <= x < p")
    tb = _tables(arity)
    t, c, s, half = tb.t, tb.c, tb.s, _ROUNDS_F // 2
    state = [(a + c[i]) % P for i, a in enumerate([0, *inputs])]
    for r in range(half - 1):
        state = _full_round(state, c, (r + 1) * t, tb.m)
    state = _full_round(state, c, half * t, tb.p)
    base = (half + 1) * t
    width = 2 * t - 1
    for r in range(tb.rounds_p):
        x = state[0]
        x2 = x * x % P
        head = (x2 * x2 % P * x + c[base + r]) % P
        row = width * r
        s0 = head * s[row]
        for j in range(1, t):
            s0 += s[row + j] * state[j]
        for k in range(1, t):
            state[k] = (state[k] + head * s[row + t + k - 1]) % P
        state[0] = s0 % P
    tail = base + tb.rounds_p
    for r in range(half - 1):
        state = _full_round(state, c, tail + r * t, tb.m)
    state = _full_round(state, c, None, tb.m)
    return state[0]


def hash2(left: int, right: int) -> int:
    """``Poseidon(2)``: the node hash of every Poseidon tree in v3."""
    return poseidon((left, right))
