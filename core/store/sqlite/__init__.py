"""The SQLite engine (the default): where its stores live, so the tree shows both engines side by side.

The implementations stay at their original paths, which the rest of the code and the backup format use:
:mod:`core.db` (connections, migrations, error mapping), :mod:`core.registry`, :mod:`core.policy_store` and
:mod:`core.audit` (a JSONL file, not SQLite, but the same engine: files under the data dir).
"""

from core.audit import AuditLog
from core.db import SqliteStore
from core.policy_store import PolicyStore
from core.registry import Registry, RegistryHandle

__all__ = ["AuditLog", "PolicyStore", "Registry", "RegistryHandle", "SqliteStore"]
