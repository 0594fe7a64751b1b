"""Where the keyring lives, on either engine: its exact bytes, versions, signature chain and rollback floor.

:class:`FileKeyringStore` is today's layout (``keyring.json``, ``keyring.chain.json``, ``keyring.floor.json``
under the data dir); :class:`core.store.postgres.keyring.PgKeyringStore` keeps the same bytes, every version
and every link in tables. Both write with a compare-and-set on the version: a writer that planned against an
older keyring gets :class:`ConflictError` ``keyring_changed``, and a version never goes back or is reused.
Signing keys are never here: they stay files (``keys/``) in both modes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from core.errors import ConflictError, NotFoundError
from core.keyring import (
    FileKeyringSource,
    Keyring,
    KeyringSource,
    parse_keyring,
    read_keyring_bytes,
    save_keyring,
    validate_keyring,
)
from core.keyring_chain import (
    ChainLink,
    KeyringChain,
    OperatorKeys,
    chain_guard_from,
    read_chain,
    require_chain,
    write_link,
)


class KeyringStore(KeyringSource, Protocol):
    """The keyring on either engine (a :class:`KeyringSource` for the watcher, plus history and writes)."""

    def exists(self) -> bool: ...
    def chain(self) -> KeyringChain | None: ...
    def write(self, keyring: Keyring, link: ChainLink | None, *, expected: int | None = None) -> None: ...


def stale(found: int | None, expected: int, source: str) -> ConflictError:
    """The one error of a stale keyring writer (the file and the database raise the same)."""
    return ConflictError(
        "the keyring changed while the rotation was planned",
        code="keyring_changed",
        file=source,
        found=found,
        expected=expected,
    )


class FileKeyringStore(FileKeyringSource):
    """The data dir's keyring files. The version check and the write are two steps (one writer per data dir,
    under the state lock); the database store does both in one transaction."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)

    def exists(self) -> bool:
        return self.path.exists()

    def chain(self) -> KeyringChain | None:
        return read_chain(self.path.with_name("keyring.chain.json"))

    def write(self, keyring: Keyring, link: ChainLink | None, *, expected: int | None = None) -> None:
        """Validate, compare the stored version with ``expected`` (when given), then the link before the
        keyring (a reader never sees a keyring without its link) and the raised floor. Raises
        :class:`ConflictError` ``keyring_changed`` for a stale writer, else as :func:`save_keyring`."""
        validate_keyring(keyring, source=self.name)
        if expected is not None:
            found = parse_keyring(read_keyring_bytes(self.path), source=self.name).version
            if found != expected:
                raise stale(found, expected, self.name)
        if link is not None:
            write_link(self.path, link)
        save_keyring(self.path, keyring)


def load_trusted(store: KeyringStore, operator_keys: OperatorKeys = ()) -> Keyring:
    """The stored keyring, refusing a version below the floor (``keyring_rollback``) and one the chain does
    not vouch for (``keyring_signature_invalid``, ``keyring_unsigned``). Raises NotFoundError
    ``keyring_not_found`` when there is none."""
    data, _ = store.read()
    keyring = parse_keyring(data, source=store.name, min_version=store.floor())
    require_chain(keyring, data, store.chain(), operator_keys, source=store.name)
    return keyring


def load_stored(store: KeyringStore, *, min_version: int | None = None) -> Keyring:
    """The stored keyring, checked but not against the chain. Raises NotFoundError ``keyring_not_found``."""
    data, _ = store.read()
    return parse_keyring(data, source=store.name, min_version=min_version)


def guard_for(store: KeyringStore, operator_keys: OperatorKeys = ()) -> Callable[[bytes, Keyring], None]:
    """The watcher's chain check against ``store``'s chain."""
    return chain_guard_from(store.chain, store.name, operator_keys)


def require_keyring(store: KeyringStore) -> None:
    """Raise NotFoundError ``keyring_not_found`` (hint: ``cap keys keygen``) when none is stored."""
    if not store.exists():
        raise NotFoundError(
            "no keyring: run `cap keys keygen` first", code="keyring_not_found", file=store.name
        )
