"""Golden vectors for cap-proof.v3 screening: the development circuit's vk, a commitment and its evidence.

Everything regenerates byte-identically: the development setup is deterministic (local phase 1 closed by a
public beacon, phase 2 closed by a public beacon) and the batch proofs use seeded blinding (PROOF_SEED). These
are test artefacts: a development vk must never be trusted in production.
"""

from __future__ import annotations

from typing import Any

from core.canonical import canonical_obj
from tests.zk import world


def vectors() -> dict[str, Any]:
    setup = world.setup()
    return {
        "zk/screen_b2_d3.json": {
            "about": "v3 screening golden vector (development setup, NOT FOR PRODUCTION)",
            "circuit": world.CIRCUIT.name,
            "constraints": setup.compiled.info["constraints"],
            "vk": canonical_obj(setup.vk),
            "vk_hash": setup.vk.vk_hash,
            "gap_root": canonical_obj(world.evidence().gap_root),
            "commitment": canonical_obj(world.commitment()),
            "evidence": canonical_obj(world.evidence()),
        }
    }
