"""The data directory's generation: one number that says "the state changed under you".

Owns ``generation.json`` (``cap-generation.v1``) in the data directory and the state lock beside it.
A restore writes generation + 1 into the staged directory before the swap, so the number travels with
the data it describes; a key rotation, revocation or revert bumps it in place. Long-running readers
(API workers, served flow runners) compare the number they loaded with the file and reload keyring,
registry and lists when it moved; ``/readyz`` reports the generation it serves.

The state lock (``.<data dir>.state.lock`` beside the data directory, so it survives the swap) keeps
registry writes and a restore apart: writers hold it shared, a real restore holds it exclusive from its
first step to its commit. A writer that cannot get it in time fails with the retryable
``StorageError`` ``state_restoring`` — its write never lands in a directory that is being replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.canonical import pretty_bytes
from core.documents import parse_model
from core.errors import ConflictError, StorageError
from core.fsio import atomic_write
from core.keys import Timestamp, format_timestamp

GENERATION_SCHEMA: Final = "cap-generation.v1"
GENERATION_FILE: Final = "generation.json"
WRITE_WAIT_SECONDS: Final = 10.0
_POLL_S: Final = 0.05


class Generation(BaseModel):
    """``cap-generation.v1``: the number, what raised it last, and when."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: Literal["cap-generation.v1"] = Field(default=GENERATION_SCHEMA, alias="schema")
    generation: int = Field(ge=0)
    reason: str
    at: Timestamp


def generation_path(root: Path) -> Path:
    return Path(root) / GENERATION_FILE


def read_generation(root: Path) -> Generation | None:
    """The recorded generation of data dir ``root``, or None when none was ever recorded.

    Raises :class:`InvalidInputError` naming the file when it is malformed.
    """
    path = generation_path(root)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return parse_model(Generation, data, source=str(path), what="generation", expected=GENERATION_SCHEMA)


def generation_number(root: Path) -> int:
    """The generation number of ``root`` (0 before the first restore or rotation)."""
    found = read_generation(root)
    return 0 if found is None else found.generation


def next_generation(root: Path, reason: str, now: datetime) -> Generation:
    """The record one above ``root``'s current generation (not written)."""
    return Generation(generation=generation_number(root) + 1, reason=reason, at=format_timestamp(now))


def write_generation(root: Path, record: Generation) -> Path:
    return atomic_write(generation_path(root), pretty_bytes(record) + b"\n")


def bump_generation(root: Path, reason: str, now: datetime) -> Generation:
    """Raise ``root``'s generation by one (under the state lock's bump file). Returns the new record."""
    with _flocked(_lock_file(Path(root), "generation"), fcntl.LOCK_EX, None):
        record = next_generation(root, reason, now)
        write_generation(root, record)
    return record


# --- the state lock ---------------------------------------------------------------------------------------


def _lock_file(root: Path, kind: str) -> Path:
    root = Path(root).absolute()
    return root.parent / f".{root.name}.{kind}.lock"


@contextlib.contextmanager
def _flocked(
    path: Path, mode: int, wait: float | None, clock: Callable[[], float] = time.monotonic
) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = None if wait is None else clock() + wait
        while True:
            try:
                fcntl.flock(fd, mode | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if deadline is not None and clock() >= deadline:
                    raise
                time.sleep(_POLL_S)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def writing_state(root: Path, wait: float = WRITE_WAIT_SECONDS) -> Iterator[None]:
    """Hold the state lock shared while writing into ``root``.

    Raises the retryable :class:`StorageError` ``state_restoring`` when a restore holds it longer
    than ``wait`` seconds.
    """
    try:
        with _flocked(_lock_file(root, "state"), fcntl.LOCK_SH, wait):
            yield
    except BlockingIOError as exc:
        raise StorageError(
            "a restore is replacing the data directory; retry when it has finished",
            code="state_restoring",
            transient=True,
            file=str(root),
        ) from exc


@contextlib.contextmanager
def replacing_state(root: Path, wait: float = WRITE_WAIT_SECONDS) -> Iterator[None]:
    """Hold the state lock exclusive while a restore replaces ``root`` (writers wait, then fail clearly).

    Raises :class:`ConflictError` ``state_busy`` when writers keep it for longer than ``wait`` seconds.
    """
    try:
        with _flocked(_lock_file(root, "state"), fcntl.LOCK_EX, wait):
            yield
    except BlockingIOError as exc:
        raise ConflictError(
            "registry writes are still running; retry the restore", code="state_busy", file=str(root)
        ) from exc
