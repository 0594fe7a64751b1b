"""Where state lives under the data directory (default ``./var``).

One place names every file, so stores, backup, restore and the CLI agree. Private key files live in
``keys_dir`` only; nothing else under the data directory may hold private key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DataLayout:
    root: Path

    @property
    def registry_db(self) -> Path:
        return self.root / "registry.sqlite"

    @property
    def policy_db(self) -> Path:
        return self.root / "policies.sqlite"

    @property
    def status_db(self) -> Path:
        """The operations status book (:mod:`core.status`): not backed up, carried over by a restore."""
        return self.root / "status.sqlite"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def keyring(self) -> Path:
        return self.root / "keyring.json"

    @property
    def keyring_floor(self) -> Path:
        """The highest keyring version seen (``cap-keyring-floor.v1``), kept outside the keyring."""
        return self.root / "keyring.floor.json"

    @property
    def keyring_chain(self) -> Path:
        """One signed link per keyring version (``cap-keyring-chain.v1``)."""
        return self.root / "keyring.chain.json"

    @property
    def generation_file(self) -> Path:
        """The data directory's generation (``cap-generation.v1``), raised by restores and key changes."""
        return self.root / "generation.json"

    @property
    def keys_dir(self) -> Path:
        """Key metadata ``<kid>.json`` (public) and private ``<kid>.pem`` (mode 0600)."""
        return self.root / "keys"

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def lists_dir(self) -> Path:
        return self.root / "lists"

    @property
    def zk_pins_dir(self) -> Path:
        """Pinned v3 verifying keys (``cap-zk-pin.v1``, one file per vk), like the installed lists."""
        return self.root / "zk" / "vks"

    @property
    def backups_dir(self) -> Path:
        return self.root / "backups"

    @property
    def dev_issuer_dir(self) -> Path:
        return self.root / "dev-issuer"

    def private_key_path(self, kid: str) -> Path:
        return self.keys_dir / f"{kid}.pem"

    def key_metadata_path(self, kid: str) -> Path:
        return self.keys_dir / f"{kid}.json"
