"""The mcl pairing library (BN254 / alt_bn128) through the ``mclbn256`` wheel, with its quirks guarded.

Quirks, each handled here and nowhere else:

* the wheel ships the shared object hex-encoded inside ``mclbn256/mclbn256.py`` and loads it from a temporary
  directory at import. We pin that file by SHA-256 (:data:`PINNED_SHA256`) and refuse to load anything else;
* it initialises mcl to ``CurveFp254BNb``, a *different* BN254 curve from the one circom/snarkjs use. We
  re-initialise to ``MCL_BN_SNARK1`` (alt_bn128, curve id 4); tests/zk/test_groth16.py checks a snarkjs proof
  verifies here and under py_ecc;
* it leaves subgroup checks off. We turn on ``mclBn_verifyOrderG2`` so every decoded G2 point is in the
  prime-order subgroup (G2 has a large cofactor on BN254); G1 has cofactor 1, so mcl's on-curve check on every
  decoded G1 point already places it in the subgroup.

Only affine decimal coordinates enter (``setStr`` in io mode 10); scalars are reduced by the caller.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import ConfigError

PINNED_SHA256 = "59bf7a2781c5a737d91a3511e92e5342fc1f41d1edb483b1a695177f841ed1bc"
"""SHA-256 of ``mclbn256/mclbn256.py`` in mclbn256 1.3.5 (wheel sha256 ac84fa8f…bc37), which embeds the
.so."""

_CURVE_SNARK1 = 4
_COMPILED_TIME_VAR = 44  # MCLBN_FP_UNIT_SIZE * 10 + MCLBN_FR_UNIT_SIZE, both 4
_IO_DEC = 10
_lock = threading.Lock()


class PointError(ValueError):
    """A coordinate string does not decode to a point of the right subgroup."""


class G1(ctypes.Structure):
    _fields_ = [("d", ctypes.c_uint64 * 12)]


class G2(ctypes.Structure):
    _fields_ = [("d", ctypes.c_uint64 * 24)]


class GT(ctypes.Structure):
    _fields_ = [("d", ctypes.c_uint64 * 48)]


class Fr(ctypes.Structure):
    _fields_ = [("d", ctypes.c_uint64 * 4)]


@cache
def library() -> Any:
    """The initialised mcl library. Raises ConfigError when the wheel is missing, altered or will not
    initialise."""
    with _lock:
        spec = importlib.util.find_spec("mclbn256.mclbn256")
        if spec is None or spec.origin is None:
            raise ConfigError(
                "mclbn256 is not installed", expected="pip install mclbn256==1.3.5 (make install)"
            )
        digest = hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()
        if digest != PINNED_SHA256:
            raise ConfigError(
                "mclbn256 does not match the pinned build; refusing to load its native code",
                file=spec.origin,
                expected=f"sha256 {PINNED_SHA256}",
            )
        from mclbn256 import mclbn256 as wheel  # only after the pin check (no stubs: see pyproject mypy)

        lib = wheel.load_library("libmclbn256")
        if lib.mclBn_init(_CURVE_SNARK1, _COMPILED_TIME_VAR) != 0:
            raise ConfigError("mcl refused to initialise the alt_bn128 curve")
        # G1 of BN254 has cofactor 1: on the curve (always checked by setStr) means in the subgroup, so the
        # order check would only cost a scalar multiplication per point. G2's cofactor is huge: check it.
        lib.mclBn_verifyOrderG1(0)
        lib.mclBn_verifyOrderG2(1)
        lib.mclBnGT_isOne.restype = ctypes.c_int
        return lib


def _set(setter: Any, point: Any, text: str) -> None:
    raw = text.encode()
    if setter(ctypes.byref(point), raw, len(raw), _IO_DEC) != 0:
        raise PointError("not a point of the prime-order subgroup")


INFINITY: tuple[str, str] = ("0", "0")
"""How a verifying key writes the G1 point at infinity (affine (0, 0) is not on the curve y^2 = x^3 + 3)."""


def g1(xy: tuple[str, str]) -> G1:
    """An affine G1 point; :data:`INFINITY` is the neutral element (only a verifying key's IC uses it)."""
    point = G1()
    _set(library().mclBnG1_setStr, point, "0" if xy == INFINITY else f"1 {xy[0]} {xy[1]}")
    return point


def g2(xy: tuple[tuple[str, str], tuple[str, str]]) -> G2:
    (x0, x1), (y0, y1) = xy
    point = G2()
    _set(library().mclBnG2_setStr, point, f"1 {x0} {x1} {y0} {y1}")
    return point


def _fr(value: int) -> Fr:
    out = Fr()
    raw = str(value).encode()
    if library().mclBnFr_setStr(ctypes.byref(out), raw, len(raw), _IO_DEC) != 0:
        raise PointError("scalar out of range")
    return out


def neg(point: G1) -> G1:
    out = G1()
    library().mclBnG1_neg(ctypes.byref(out), ctypes.byref(point))
    return out


def mul(point: G1, scalar: int) -> G1:
    out = G1()
    fr = _fr(scalar)
    library().mclBnG1_mul(ctypes.byref(out), ctypes.byref(point), ctypes.byref(fr))
    return out


def mul_vec(points: Sequence[G1], scalars: Sequence[int]) -> G1:
    """Σ scalars[i]·points[i] (one multi-scalar multiplication)."""
    n = len(points)
    xs = (G1 * n)(*points)
    ys = (Fr * n)(*[_fr(s) for s in scalars])
    out = G1()
    library().mclBnG1_mulVec(ctypes.byref(out), xs, ys, n)
    return out


def pairing_product_is_one(g1s: Sequence[G1], g2s: Sequence[G2]) -> bool:
    """Whether Π e(g1s[i], g2s[i]) = 1 in GT (one Miller loop vector, one final exponentiation)."""
    n = len(g1s)
    lib = library()
    xs = (G1 * n)(*g1s)
    ys = (G2 * n)(*g2s)
    loop, result = GT(), GT()
    lib.mclBn_millerLoopVec(ctypes.byref(loop), xs, ys, n)
    lib.mclBn_finalExp(ctypes.byref(result), ctypes.byref(loop))
    return bool(lib.mclBnGT_isOne(ctypes.byref(result)))
