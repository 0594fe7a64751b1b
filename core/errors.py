"""The one error root of CAP Verifier and its families.

Every error carries a stable snake_case ``code``, a human message and structured ``details``
(file, line, field, expected ...). Boundaries (CLI, API, Prefect tasks) map these once:
the CLI to exit codes, the API to HTTP statuses, Prefect retries only errors marked ``transient``.
"""

from __future__ import annotations

from typing import Any


class CapError(Exception):
    """Root of all CAP errors. Subclasses set ``code``; instances can explain themselves.

    ``transient=True`` marks a failure worth retrying (network, throttling, a busy lock): the one flag every
    retry loop and Prefect's retry condition (``tasks/retry.py``) read.
    """

    code: str = "cap_error"

    def __init__(
        self, message: str, *, code: str | None = None, transient: bool = False, **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.transient = transient
        self.details: dict[str, Any] = {k: v for k, v in details.items() if v is not None}

    def diagnostics(self) -> str:
        """A one-paragraph explanation for a person: what, where, and what was expected."""
        where = []
        for key in ("file", "line", "column", "field"):
            if key in self.details:
                where.append(f"{key} {self.details[key]}")
        text = self.message
        if where:
            text = f"{text} ({', '.join(where)})"
        if "expected" in self.details:
            text = f"{text}; expected {self.details['expected']}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class InvalidInputError(CapError):
    """Input that does not have the expected shape (CSV, YAML, JSON, arguments)."""

    code = "invalid_input"


class NotFoundError(CapError):
    """A named thing (policy, key, backup, proof) does not exist."""

    code = "not_found"


class ConflictError(CapError):
    """A write would replace something different under the same identity."""

    code = "conflict"


class ConfigError(CapError):
    """The service or a command is misconfigured."""

    code = "config_error"


class VerificationError(CapError):
    """A proof, signature or document failed verification (used by ``verify_*`` raisers)."""

    code = "verification_failed"


class IntegrityError(VerificationError):
    """Bytes do not match the digest, size or structure they were committed to."""

    code = "integrity_mismatch"


class KeyError_(CapError):
    """A key is unknown, revoked, not acceptable or unusable."""

    code = "key_error"


class RotationError(CapError):
    """An illegal key-rotation step."""

    code = "rotation_error"


class StorageError(CapError):
    """Storage failed (``transient=True`` when retrying may help)."""

    code = "storage_error"
