"""Groth16 over BN254 (snarkjs ``bn128``): the verifying key, the proof, single and batch verification.

Verification runs on mcl through the ``mclbn256`` wheel's shared library, wrapped here in the one place that
knows its quirks (see :mod:`core.zk.mcl`). Every acceptance rule lives here without I/O: a proof is accepted
only if its points decode onto the right curve and subgroup, every public signal is a canonical scalar (< r),
and the pairing equation holds. :func:`batch_verify` checks many proofs under one key with a random linear
combination (n + 3 Miller loops, one final exponentiation); a ``False`` says *some* proof failed, not which.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.canonical import canonical_bytes
from core.digest import sha3_prefixed
from core.errors import InvalidInputError
from core.zk.poseidon import P as R

G1Text = tuple[str, str]
G2Text = tuple[tuple[str, str], tuple[str, str]]


class VerifyingKey(BaseModel):
    """A snarkjs Groth16 verifying key in affine coordinates (decimal strings)."""

    model_config = ConfigDict(frozen=True)

    n_public: int
    alpha_1: G1Text
    beta_2: G2Text
    gamma_2: G2Text
    delta_2: G2Text
    ic: tuple[G1Text, ...]

    @property
    def vk_hash(self) -> str:
        """``sha3-256:`` over the canonical JSON of this key: what trust configs pin and proofs name."""
        return sha3_prefixed(canonical_bytes(self))

    @property
    def degenerate(self) -> bool:
        """Some public input's IC point is the point at infinity, so that input is not bound by the proof.

        A real ceremony never gives one; a phase 1 with tau = 1 (``make bench-zk-full``'s timing-only
        file) always does. Such a key counts only where development keys do."""
        return _INFINITY in self.ic


class Proof(BaseModel):
    """One Groth16 proof (``pi_a``, ``pi_b``, ``pi_c``) in affine coordinates."""

    model_config = ConfigDict(frozen=True)

    a: G1Text
    b: G2Text
    c: G1Text


def _number(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 80:
        raise InvalidInputError("not a decimal coordinate", field=field, expected="decimal string")
    return str(int(value))


_INFINITY = ("0", "0")
"""A verifying key's point at infinity (snarkjs: ``["0", "1", "0"]``); affine (0, 0) is off the curve."""


def _g1(value: Any, field: str, *, infinity: bool = False) -> G1Text:
    if infinity and value == ["0", "1", "0"]:
        return _INFINITY
    if not isinstance(value, list) or len(value) != 3 or value[2] != "1":
        raise InvalidInputError("not an affine G1 point", field=field, expected='["x", "y", "1"]')
    return (_number(value[0], field), _number(value[1], field))


def _g2(value: Any, field: str) -> G2Text:
    if not isinstance(value, list) or len(value) != 3 or value[2] != ["1", "0"]:
        raise InvalidInputError(
            "not an affine G2 point", field=field, expected='[[x0, x1], [y0, y1], ["1", "0"]]'
        )
    pair = []
    for i in (0, 1):
        if not isinstance(value[i], list) or len(value[i]) != 2:
            raise InvalidInputError("not an Fp2 element", field=field, expected="[c0, c1]")
        pair.append((_number(value[i][0], field), _number(value[i][1], field)))
    return (pair[0], pair[1])


def vk_from_snarkjs(doc: Mapping[str, Any], source: str = "<vk>") -> VerifyingKey:
    """Read snarkjs' ``verification_key.json``. Raises InvalidInputError naming the field."""
    if doc.get("protocol") != "groth16" or doc.get("curve") != "bn128":
        raise InvalidInputError("not a Groth16 bn128 verifying key", file=source, field="protocol")
    n_public = doc.get("nPublic")
    ic = doc.get("IC")
    if not isinstance(n_public, int) or not isinstance(ic, list) or len(ic) != n_public + 1:
        raise InvalidInputError("IC must have nPublic + 1 points", file=source, field="IC")
    return VerifyingKey(
        n_public=n_public,
        alpha_1=_g1(doc.get("vk_alpha_1"), "vk_alpha_1"),
        beta_2=_g2(doc.get("vk_beta_2"), "vk_beta_2"),
        gamma_2=_g2(doc.get("vk_gamma_2"), "vk_gamma_2"),
        delta_2=_g2(doc.get("vk_delta_2"), "vk_delta_2"),
        ic=tuple(_g1(p, f"IC[{i}]", infinity=True) for i, p in enumerate(ic)),
    )


def proof_from_snarkjs(doc: Mapping[str, Any]) -> Proof:
    """Read snarkjs' ``proof.json``. Raises InvalidInputError naming the field."""
    if doc.get("protocol", "groth16") != "groth16":
        raise InvalidInputError("not a Groth16 proof", field="protocol")
    return Proof(
        a=_g1(doc.get("pi_a"), "pi_a"), b=_g2(doc.get("pi_b"), "pi_b"), c=_g1(doc.get("pi_c"), "pi_c")
    )


def public_from_snarkjs(values: Sequence[Any]) -> tuple[int, ...]:
    """Read snarkjs' ``public.json`` (decimal strings)."""
    return tuple(int(_number(v, f"public[{i}]")) for i, v in enumerate(values))


class _PreparedKey:
    def __init__(self, vk: VerifyingKey) -> None:
        from core.zk import mcl  # the curve library loads on the first verification, not on import

        self.alpha = mcl.g1(vk.alpha_1)
        self.beta = mcl.g2(vk.beta_2)
        self.gamma = mcl.g2(vk.gamma_2)
        self.delta = mcl.g2(vk.delta_2)
        self.ic = [mcl.g1(p) for p in vk.ic]
        self.n_public = vk.n_public


_prepared: dict[str, _PreparedKey] = {}


def _prepare(vk: VerifyingKey) -> _PreparedKey:
    key = vk.vk_hash
    if key not in _prepared:
        _prepared[key] = _PreparedKey(vk)
    return _prepared[key]


def _publics_ok(pk: _PreparedKey, public: Sequence[int]) -> bool:
    return len(public) == pk.n_public and all(0 <= v < R for v in public)


def verify(vk: VerifyingKey, proof: Proof, public: Sequence[int]) -> bool:
    """Whether ``proof`` proves ``public`` under ``vk``. Malformed points or scalars are ``False``, never
    raised."""
    return batch_verify(vk, [(proof, public)], rng=lambda: 1)


def batch_verify(
    vk: VerifyingKey,
    items: Sequence[tuple[Proof, Sequence[int]]],
    rng: Any = None,
) -> bool:
    """All proofs verify, checked at once: Π e(ρ_k·A_k, B_k) = e(Σρ·α, β)·e(Σρ_k·x_k, γ)·e(Σρ_k·C_k, δ).

    ``ρ_k`` are fresh 128-bit random scalars (``rng`` only for tests), so a forger cannot make invalid proofs
    cancel. ``False`` when any proof is invalid or malformed, or when ``items`` is empty.
    """
    if not items:
        return False
    from core.zk import mcl  # loaded on first use: a v2 verification never needs it

    draw = rng or (lambda: secrets.randbits(128) | 1)
    pk = _prepare(vk)
    weights = [draw() % R for _ in items]
    if not all(_publics_ok(pk, public) for _, public in items):
        return False
    try:
        g1s: list[mcl.G1] = []
        g2s = mcl.g2_many([proof.b for proof, _ in items])
        ic_scalars = [0] * len(pk.ic)
        c_points: list[mcl.G1] = []
        for (proof, public), rho in zip(items, weights, strict=True):
            g1s.append(mcl.neg(mcl.mul(mcl.g1(proof.a), rho)))
            c_points.append(mcl.g1(proof.c))
            ic_scalars[0] = (ic_scalars[0] + rho) % R
            for i, value in enumerate(public, start=1):
                ic_scalars[i] = (ic_scalars[i] + rho * value) % R
        g1s.append(mcl.mul(pk.alpha, sum(weights) % R))
        g2s.append(pk.beta)
        g1s.append(mcl.mul_vec(pk.ic, ic_scalars))
        g2s.append(pk.gamma)
        g1s.append(mcl.mul_vec(c_points, weights))
        g2s.append(pk.delta)
    except mcl.PointError:
        return False
    return mcl.pairing_product_is_one(g1s, g2s)
