"""One check of a verification report: id, kind, status, message (SPEC §2.6).

Kept apart from :mod:`core.verify` so the modules that contribute checks (trust anchors, disclosure
bindings) and the verifier share one type without importing each other.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from core.modes import CheckStatus


class CheckKind(StrEnum):
    INTEGRITY = "integrity"
    SIGNATURE = "signature"
    KEY = "key"
    POLICY = "policy"
    RULE = "rule"
    EVIDENCE = "evidence"
    REGISTRY = "registry"
    DRIFT = "drift"
    ATTESTED = "attested"


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    kind: CheckKind
    status: CheckStatus
    message: str
