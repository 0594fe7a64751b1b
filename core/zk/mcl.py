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

Only affine decimal coordinates enter; scalars are reduced by the caller. G2 points go through ``setStr`` (io
mode 10), which checks the curve and the subgroup. G1 points are assembled from their two coordinates
(``mclBnFp_setStr``, which refuses values >= p) after checking y^2 = x^3 + 3 ourselves: this wheel's
``mclBnG1_setStr`` spends about 100 us per point in ``isValid`` even with the order check off, 30 ms for the
316 G1 points of a 10,000-supplier proof; the direct path costs about 13 us.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ConfigError

PINNED_SHA256 = "59bf7a2781c5a737d91a3511e92e5342fc1f41d1edb483b1a695177f841ed1bc"
"""SHA-256 of ``mclbn256/mclbn256.py`` in mclbn256 1.3.5 (wheel sha256 ac84fa8f…bc37), which embeds the
.so."""

_CURVE_SNARK1 = 4
_COMPILED_TIME_VAR = 44  # MCLBN_FP_UNIT_SIZE * 10 + MCLBN_FR_UNIT_SIZE, both 4
_IO_DEC = 10
_lock = threading.Lock()
_T = TypeVar("_T")
_R = TypeVar("_R")


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


class Fp(ctypes.Structure):
    _fields_ = [("d", ctypes.c_uint64 * 4)]


_FP_BYTES = ctypes.sizeof(Fp)


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


def _fp(text: str) -> Fp:
    out = Fp()
    raw = text.encode()
    if library().mclBnFp_setStr(ctypes.byref(out), raw, len(raw), _IO_DEC) != 0:
        raise PointError("coordinate out of range")
    return out


@cache
def _fp_constants() -> tuple[Fp, Fp]:
    """(1, 3) in mcl's internal form: z of an affine point, b of y^2 = x^3 + b."""
    one, three = Fp(), Fp()
    library().mclBnFp_setInt32(ctypes.byref(one), 1)
    library().mclBnFp_setInt32(ctypes.byref(three), 3)
    return one, three


def g1(xy: tuple[str, str]) -> G1:
    """An affine G1 point, refused unless on the curve (G1's cofactor is 1: on the curve means in the
    subgroup); :data:`INFINITY` is the neutral element (only a verifying key's IC uses it)."""
    point = G1()
    if xy == INFINITY:
        _set(library().mclBnG1_setStr, point, "0")
        return point
    lib, (one, three) = library(), _fp_constants()
    x, y = _fp(xy[0]), _fp(xy[1])
    lhs, rhs = Fp(), Fp()
    lib.mclBnFp_sqr(ctypes.byref(lhs), ctypes.byref(y))
    lib.mclBnFp_sqr(ctypes.byref(rhs), ctypes.byref(x))
    lib.mclBnFp_mul(ctypes.byref(rhs), ctypes.byref(rhs), ctypes.byref(x))
    lib.mclBnFp_add(ctypes.byref(rhs), ctypes.byref(rhs), ctypes.byref(three))
    if not lib.mclBnFp_isEqual(ctypes.byref(lhs), ctypes.byref(rhs)):
        raise PointError("not a point of the curve")
    base = ctypes.addressof(point)  # mcl's G1 is (x, y, z) in Jacobian coordinates: z = 1 is affine
    for i, coordinate in enumerate((x, y, one)):
        ctypes.memmove(base + i * _FP_BYTES, ctypes.addressof(coordinate), _FP_BYTES)
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


PARALLEL_FROM = 32
"""From this many points on, decoding and Miller loops are split over :data:`THREADS` threads: mcl runs
without the GIL (ctypes releases it around every call), so one large verification uses both cores. Same CPU,
about half the latency; smaller inputs stay on the calling thread."""
THREADS = 2
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: a ``map`` on the inherited pool would wait
    forever. The child starts its own on first use."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _parts(items: Sequence[_T]) -> list[Sequence[_T]]:
    step = -(-len(items) // THREADS)
    return [items[i : i + step] for i in range(0, len(items), step)]


def _map(fn: Callable[[Sequence[_T]], _R], items: Sequence[_T]) -> list[_R]:
    """``fn`` over parts of ``items``: in the pool when there are many, else here. Re-raises."""
    global _pool
    if len(items) < PARALLEL_FROM:
        return [fn(items)]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="mcl")
        pool = _pool
    return list(pool.map(fn, _parts(items)))


def g2_many(points: Sequence[tuple[tuple[str, str], tuple[str, str]]]) -> list[G2]:
    """:func:`g2` of every point (curve and subgroup checked), in parallel when there are many."""
    return [p for part in _map(lambda chunk: [g2(xy) for xy in chunk], points) for p in part]


def _miller(pairs: Sequence[tuple[G1, G2]]) -> GT:
    n = len(pairs)
    xs = (G1 * n)(*[a for a, _ in pairs])
    ys = (G2 * n)(*[b for _, b in pairs])
    loop = GT()
    library().mclBn_millerLoopVec(ctypes.byref(loop), xs, ys, n)
    return loop


def pairing_product_is_one(g1s: Sequence[G1], g2s: Sequence[G2]) -> bool:
    """Whether Π e(g1s[i], g2s[i]) = 1 in GT (Miller loop vectors, one final exponentiation)."""
    lib = library()
    loops = _map(_miller, list(zip(g1s, g2s, strict=True)))
    loop, result = loops[0], GT()
    for other in loops[1:]:
        lib.mclBnGT_mul(ctypes.byref(loop), ctypes.byref(loop), ctypes.byref(other))
    lib.mclBn_finalExp(ctypes.byref(result), ctypes.byref(loop))
    return bool(lib.mclBnGT_isOne(ctypes.byref(result)))
