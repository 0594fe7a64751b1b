"""Filler registry entries for replication and restore tests and benchmarks: one signed entry per call,
told apart by ``n``. What they hold does not matter, only that each is acknowledged and can be found."""

from __future__ import annotations

import json
from datetime import datetime

from core.registry import Registry
from core.service import default_signer
from core.settings import Settings
from core.signing import Signer


def register_filler(
    registry: Registry,
    settings: Settings,
    n: int,
    *,
    subject: str,
    now: datetime,
    signer: Signer | None = None,
) -> str:
    """Register entry ``{"n": n}`` under ``subject``, signed by ``signer`` (default: the data dir's default
    signer, loaded per call); its id."""
    return registry.register(
        json.dumps({"n": n}).encode(),
        b"{}",
        subject=subject,
        policy_hash="0x" + "ab" * 32,
        ir_hash="0x" + "cd" * 32,
        company_root="0x" + "01" * 32,
        supplier_root="0x" + "02" * 32,
        ubo_root="0x" + "03" * 32,
        result="OK",
        accepted=True,
        signer=signer or default_signer(settings),
        now=now,
    ).id
