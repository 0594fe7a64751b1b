"""The fixed v3 scenario shared by the zk tests and the golden-vector generator.

Development circuit: batches of 2, gap tree of depth 3 (up to 7 listed keys). Five committed suppliers give
three batches (2, 2, 1), so omitted, duplicated and partial batches can all be exercised. The setup is the
cached, deterministic development setup (NOT FOR PRODUCTION); proofs use seeded blinding so they regenerate
byte-identically.
"""

from __future__ import annotations

from functools import cache

from core.commitments import Supplier
from core.screening import screening_key
from core.zk import prover
from core.zk.ceremony import Setup, dev_setup
from core.zk.evidence import ScreeningCommitment, ScreeningEvidence, TrustedVk
from core.zk.gaptree import GapTree, key248
from core.zk.witness import Circuit, ScreenedLeaf, risk_words

CIRCUIT = Circuit(batch_size=2, depth=3)
LISTED = [
    "LOGAN MOREY, Elvis Angus",
    "HESA TRADE CENTER",
    "KHOROSHEV, Dmitry Yuryevich",
    "RAHAT LTD.",
    "KOREA RYONBONG GENERAL CORPORATION",
]
SUPPLIERS = [
    Supplier("Acme Trading GmbH", "DE", 1),
    Supplier("Nordlicht Logistik AG", "DE", 2),
    Supplier("Tessuti Bianchi S.p.A.", "IT", 1),
    Supplier("Ørsted Components A/S", "DK", 3),
    Supplier("Shenzhen Bright Metals Co., Ltd.", "CN", 2),
]
HIGH_RISK = ("CN", "RU")
"""The high-risk jurisdictions of the scenario: one supplier (Shenzhen, CN) is in one."""
SALT_SEED = bytes(range(100, 132))
PROOF_SEED = b"cap-verifier zk golden vector v1"


def listed_keys() -> list[int]:
    return [key248(screening_key(n)) for n in LISTED]


@cache
def gaps() -> GapTree:
    return GapTree(listed_keys(), CIRCUIT.depth)


def risk() -> tuple[int, ...]:
    return risk_words(HIGH_RISK, CIRCUIT)


@cache
def setup() -> Setup:
    return dev_setup(CIRCUIT)


@cache
def leaves() -> tuple[ScreenedLeaf, ...]:
    return tuple(prover.screened_leaves(SUPPLIERS, SALT_SEED))


@cache
def commitment() -> ScreeningCommitment:
    return prover.commit(leaves(), CIRCUIT)


@cache
def evidence() -> ScreeningEvidence:
    """The golden evidence, proved with seeded blinding (deterministic)."""
    return prover.prove_all(setup(), gaps(), risk(), leaves(), seed=PROOF_SEED)


def trusted() -> dict[str, TrustedVk]:
    vk = setup().vk
    return {vk.vk_hash: TrustedVk(vk, CIRCUIT.name, CIRCUIT.batch_size, CIRCUIT.depth, production=False)}
