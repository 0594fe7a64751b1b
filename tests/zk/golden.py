"""The committed golden vector, loaded without node or proving (tests/vectors/zk/screen_b2_d3.json)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from core.zk.evidence import ScreeningCommitment, ScreeningEvidence, TrustedVk
from core.zk.groth16 import VerifyingKey
from tests.vectorgen import VECTORS_DIR
from tests.zk.world import CIRCUIT


@cache
def doc() -> dict[str, Any]:
    return dict(json.loads((VECTORS_DIR / "zk" / "screen_b2_d3.json").read_text()))


def vk() -> VerifyingKey:
    return VerifyingKey.model_validate(doc()["vk"])


def evidence() -> ScreeningEvidence:
    return ScreeningEvidence.model_validate(doc()["evidence"])


def commitment() -> ScreeningCommitment:
    return ScreeningCommitment.model_validate(doc()["commitment"])


def trusted(key: VerifyingKey | None = None) -> dict[str, TrustedVk]:
    key = key or vk()
    return {key.vk_hash: TrustedVk(key, CIRCUIT.name, CIRCUIT.batch_size, CIRCUIT.depth, production=False)}
