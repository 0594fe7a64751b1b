"""Shared builders for the backup tests: a small live data directory, a signer, tree digests."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from core.backup import create_backup
from core.backup.crypto import MasterKeyWrapper
from core.backup.storage import FileStore
from core.layout import DataLayout
from core.signing import Ed25519Signer

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
SIGNER = Ed25519Signer.from_seed(bytes(range(32)))
MASTER = MasterKeyWrapper(b"\x42" * 32)


def make_state(
    root: Path, *, rows: int = 50, keyring_version: int = 3, signer: Ed25519Signer = SIGNER
) -> Path:
    """A live data directory with every kind of backed-up file, plus a private key and a backups dir."""
    root.mkdir(parents=True, exist_ok=True)
    keys = root / "keys"
    keys.mkdir(exist_ok=True)
    reg = sqlite3.connect(root / "registry.sqlite")
    reg.execute("PRAGMA journal_mode=WAL")
    reg.execute("CREATE TABLE IF NOT EXISTS registry_entries(id INTEGER PRIMARY KEY, digest TEXT, kid TEXT)")
    reg.executemany(
        "INSERT INTO registry_entries(digest, kid) VALUES (?, ?)",
        [(f"0x{i:064x}", signer.kid) for i in range(rows)],
    )
    reg.execute("PRAGMA user_version=2")
    reg.commit()
    reg.close()
    pol = sqlite3.connect(root / "policies.sqlite")
    pol.execute("CREATE TABLE IF NOT EXISTS policies(hash TEXT PRIMARY KEY, body TEXT, status TEXT)")
    pol.execute("INSERT OR REPLACE INTO policies VALUES ('sha3-256:ab', '{\"id\":\"lksg\"}', 'active')")
    pol.commit()
    pol.close()
    write_keyring(root, keyring_version, signer)
    meta = {"schema": "cap-key.v1", "kid": signer.kid, "owner": "ACME", "public_key": signer.public_key_b64}
    (keys / f"{signer.kid}.json").write_text(json.dumps(meta))
    (keys / f"{signer.kid}.pem").write_bytes(signer.to_pem())
    (keys / f"{signer.kid}.pem").chmod(0o600)
    (root / "config.yaml").write_text("subject: 5299000J2N45DDNE4Y28\napi:\n  port: 8080\n")
    (root / "audit.jsonl").write_text('{"seq":1,"event":"policy_compiled","digest":"0x00"}\n')
    (root / "lists").mkdir(exist_ok=True)
    (root / "lists" / "high_risk.csv").write_text("iso_code,risk_level\nIR,HIGH\n")
    (root / "backups").mkdir(exist_ok=True)
    (root / "backups" / "older.bin").write_bytes(b"not managed by backups")
    return root


def write_keyring(root: Path, version: int, signer: Ed25519Signer = SIGNER) -> None:
    ring = {
        "schema": "cap-keyring.v1",
        "version": version,
        "mode": "single-key",
        "default_signing_kid": signer.kid,
        "keys": [{"kid": signer.kid, "public_key": signer.public_key_b64, "status": "active"}],
    }
    (root / "keyring.json").write_text(json.dumps(ring))


STATE_FILES = frozenset({"generation.json", "keyring.floor.json"})
"""Written by every restore and key change on purpose (tests/unit/test_restore_state.py checks them)."""


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha3 of every file (and the target of every symlink) under ``root``, except the
    generation and rollback-floor records."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in STATE_FILES:
            continue
        if path.is_symlink():
            out[rel] = "link:" + str(path.readlink())
        elif path.is_file():
            out[rel] = hashlib.sha3_256(path.read_bytes()).hexdigest()
    return out


def sqlite_dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def backup(live: Path, store_dir: Path, **kwargs):
    """Back up ``live`` into a file store; returns (store, result)."""
    store = FileStore(store_dir)
    kwargs.setdefault("created_by", "test@host")
    return store, create_backup(DataLayout(live), store, SIGNER, now=NOW, **kwargs)
