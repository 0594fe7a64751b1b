"""The shared enums for enforcement modes and check outcomes.

Every module that judges something (key acceptance, policy enforcement, verification reports) imports these
two enums from here; nobody retypes ``"strict"`` or ``"warn"`` as a string literal.
"""

from __future__ import annotations

from enum import Enum


class EnforcementMode(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, comparisons)
    """How violations count (SPEC §3): strict fails all, relaxed warns on minor ones, audit records."""

    STRICT = "strict"
    RELAXED = "relaxed"
    AUDIT = "audit"


class CheckStatus(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, comparisons)
    """The outcome of one check; a report's overall result is the worst of its checks."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        """0 for ok, 1 for warn, 2 for fail: compare with this to find the worst status."""
        return _SEVERITY[self]


_SEVERITY = {CheckStatus.OK: 0, CheckStatus.WARN: 1, CheckStatus.FAIL: 2}
