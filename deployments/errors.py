"""The CLI's one mapping from errors to exit codes (docs/cli.md documents the table)."""

from __future__ import annotations

from core.errors import (
    CapError,
    ConfigError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyError_,
    NotFoundError,
    RotationError,
    VerificationError,
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_FAIL = 3
EXIT_INTEGRITY = 4

_TABLE: tuple[tuple[type[CapError], int], ...] = (
    (IntegrityError, EXIT_INTEGRITY),
    (VerificationError, EXIT_FAIL),
    (InvalidInputError, EXIT_INPUT),
    (NotFoundError, EXIT_INPUT),
    (ConflictError, EXIT_INPUT),
    (ConfigError, EXIT_INPUT),
    (KeyError_, EXIT_INPUT),
    (RotationError, EXIT_INPUT),
)


def exit_code_for(exc: CapError) -> int:
    from core.prover import PolicyFailedError  # lazy: the prover is heavy, and raised only after it loaded

    if isinstance(exc, PolicyFailedError):
        return EXIT_FAIL
    for kind, code in _TABLE:
        if isinstance(exc, kind):
            return code
    return EXIT_INTERNAL


# What to do next, by error code: printed under the error (the message says what happened).
HINTS = {
    "census_not_empty": (
        "options: wait until those entries are older than --census-window and retry; re-issue them "
        "signed by the new key (the default signer since phase 2); roll the sign-switch back with "
        "cap keys rotate --phase 2 --rollback; or --force (proofs signed by the old key then fail)"
    ),
    "dual_accept_active": "wait until dual_accept_until (cap keys list shows it), or --force",
    "dual_accept_expired": "roll back with cap keys rotate --phase 2 --rollback, or --force",
    "backup_store_missing": "create the bucket, or point --to/--from (or CAP_BACKUP_URI) at the right store",
}
