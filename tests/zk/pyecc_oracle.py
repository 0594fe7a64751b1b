"""An independent, slow Groth16 verifier on py_ecc (pure Python, ~0.7 s per proof): a test oracle only."""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc.optimized_bn128 import (
    FQ,
    FQ2,
    FQ12,
    add,
    b2,
    curve_order,
    final_exponentiate,
    is_on_curve,
    multiply,
    neg,
)
from py_ecc.optimized_bn128 import pairing as _pairing

from core.zk.groth16 import Proof, VerifyingKey


def g1(xy):
    return (FQ(int(xy[0])), FQ(int(xy[1])), FQ(1))


def g2(xy):
    (x0, x1), (y0, y1) = xy
    return (FQ2([int(x0), int(x1)]), FQ2([int(y0), int(y1)]), FQ2.one())


def verify(vk: VerifyingKey, proof: Proof, public: Sequence[int]) -> bool:
    if len(public) != vk.n_public or any(not 0 <= v < curve_order for v in public):
        return False
    vk_x = g1(vk.ic[0])
    for value, point in zip(public, vk.ic[1:], strict=True):
        vk_x = add(vk_x, multiply(g1(point), value))
    a, b, c = g1(proof.a), g2(proof.b), g1(proof.c)
    if not (is_on_curve(a, FQ(3)) and is_on_curve(c, FQ(3)) and is_on_curve(b, b2)):
        return False
    product = FQ12.one()
    for q, p in ((b, neg(a)), (g2(vk.beta_2), g1(vk.alpha_1)), (g2(vk.gamma_2), vk_x), (g2(vk.delta_2), c)):
        product = product * _pairing(q, p, final_exponentiate=False)
    return final_exponentiate(product) == FQ12.one()


def fq2_sqrt(a: FQ2) -> FQ2 | None:
    """A square root in Fp2 for p = 3 mod 4 (Adj & Rodríguez-Henríquez, algorithm 9), or None."""
    p = FQ.field_modulus
    a1 = a ** ((p - 3) // 4)
    alpha = a1 * a1 * a
    x0 = a1 * a
    minus_one = alpha == FQ2([p - 1, 0])
    root = FQ2([0, 1]) * x0 if minus_one else (FQ2.one() + alpha) ** ((p - 1) // 2) * x0
    return root if root * root == a else None


def g2_point_outside_subgroup() -> tuple[tuple[str, str], tuple[str, str]]:
    """A point on the G2 twist curve that is not in the prime-order subgroup (cofactor is huge on BN254)."""
    for i in range(1, 200):
        x = FQ2([i, 1])
        y = fq2_sqrt(x**3 + b2)
        if y is None:
            continue
        point = (x, y, FQ2.one())
        if multiply(point, curve_order)[2] != FQ2.zero():
            return ((str(x.coeffs[0]), str(x.coeffs[1])), (str(y.coeffs[0]), str(y.coeffs[1])))
    raise AssertionError("no point found")
