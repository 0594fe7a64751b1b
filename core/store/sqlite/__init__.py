"""The file engine (the default): where its stores live, so the tree shows both engines side by side.

The implementations stay at their original paths, which the rest of the code and the backup format use:
:mod:`core.db` (SQLite connections, migrations, error mapping), :mod:`core.registry`,
:mod:`core.policy_store`,
:mod:`core.audit` (a JSONL file), and the keyring and lists files (:mod:`core.store.keyring`,
:mod:`core.store.lists`).
"""

from core.audit import AuditLog
from core.db import SqliteStore
from core.policy_store import PolicyStore
from core.registry import Registry, RegistryHandle
from core.store.keyring import FileKeyringStore
from core.store.lists import FileListsStore

__all__ = [
    "AuditLog",
    "FileKeyringStore",
    "FileListsStore",
    "PolicyStore",
    "Registry",
    "RegistryHandle",
    "SqliteStore",
]
