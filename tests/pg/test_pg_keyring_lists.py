"""The keyring on either engine: the same bytes, chain and floor, a compare-and-set on the version (a stale
writer gets ``keyring_changed`` from the file and from the database alike), and on PostgreSQL every replica's
watcher follows a new version within its polling bound, with nothing read from or written to the data dir."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from core import service
from core.errors import ConflictError
from core.keyring import KeyringWatcher, keyring_file_bytes
from core.rotation import RotationPhase, RotationRequest
from core.settings import Settings
from core.store import audit_log, keyring_store
from core.store.keyring import load_trusted
from core.store.postgres.db import close_all
from core.store.postgres.keyring import PgKeyringStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _bumped(keyring, by=1):
    return keyring.model_copy(update={"version": keyring.version + by})


def test_a_stale_keyring_writer_is_refused_alike_on_both_engines(engine_settings):
    service.keygen(engine_settings, now=NOW)
    store = keyring_store(engine_settings)
    v1 = load_trusted(store)
    store.write(_bumped(v1), None, expected=1)  # the first writer planned against v1 and wins
    with pytest.raises(ConflictError) as info:
        store.write(_bumped(v1, 2), None, expected=1)  # the second planned against v1 too: stale
    assert (info.value.code, info.value.details["found"], info.value.details["expected"]) == (
        "keyring_changed",
        2,
        1,
    )
    data, _ = store.read()
    assert data == keyring_file_bytes(_bumped(v1))


def test_the_database_refuses_a_reused_or_lower_version_even_without_an_expectation(pg_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "node", database_url=pg_url)
    try:
        service.keygen(settings, now=NOW)
        store = keyring_store(settings)
        v1 = load_trusted(store)
        with pytest.raises(ConflictError):
            store.write(v1, None)
        assert store.history() == [1]
    finally:
        close_all()


def test_pg_mode_keeps_the_keyring_in_the_database_and_rotates_there(pg_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "node-a", database_url=pg_url)
    try:
        service.keygen(settings, now=NOW)
        request = RotationRequest(phase=RotationPhase.PREPARE, force=True)
        service.rotate_signing_key(settings, request, NOW + timedelta(minutes=1))
        store = keyring_store(settings)
        trusted = service.load_local_keyring(settings)  # floor and signature chain checked
        assert (trusted.version, store.history(), store.floor()) == (2, [1, 2], 2)
        assert [link.signer.value for link in store.chain().links] == ["bootstrap", "outgoing"]
        assert not settings.layout.keyring.exists() and not settings.layout.keyring_chain.exists()
        other = Settings(data_dir=tmp_path / "node-b", database_url=pg_url)  # another node, same database
        assert service.load_local_keyring(other) == trusted
    finally:
        close_all()


def test_every_replica_follows_a_new_version_within_the_polling_bound(pg_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "node-a", database_url=pg_url)
    try:
        service.keygen(settings, now=NOW)
        replica = PgKeyringStore(settings.database, poll_seconds=0.2)
        watcher = KeyringWatcher(tmp_path / "unused", source=replica)
        assert watcher.current(NOW).version == 1
        writer = keyring_store(settings)
        writer.write(_bumped(load_trusted(writer)), None, expected=1)  # another node rotates
        deadline = time.monotonic() + 5
        while watcher.current(NOW).version == 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert watcher.current(NOW).version == 2
        assert not (tmp_path / "unused").exists()
    finally:
        close_all()


def test_lists_installed_on_one_node_are_in_force_on_another_without_local_files(pg_url, tmp_path):
    from core.anchors import InstalledListsWatcher, installed_lists
    from core.store.lists import PgListsStore
    from tests.world import World

    node_a = Settings(data_dir=tmp_path / "node-a", database_url=pg_url)
    node_b = Settings(data_dir=tmp_path / "node-b", database_url=pg_url)
    try:
        watcher = InstalledListsWatcher(node_b)
        assert watcher.current() == () and installed_lists(node_b) == ()
        lists = World().lists_file
        where = service.install_lists(node_a, lists, NOW)
        assert "installed_lists" in where and "cap@" in where
        assert installed_lists(node_b)[0].lists == lists
        fast = PgListsStore(node_b.database, poll_seconds=0.0)  # the API's watcher polls at most every second
        assert fast.stamp() is not None and installed_lists(node_b)[0].origin.startswith(
            "installed postgresql://"
        )
        deadline = time.monotonic() + 5
        while not watcher.current() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.current()[0].lists == lists
        assert not (tmp_path / "node-a" / "lists").exists() and not (tmp_path / "node-b" / "lists").exists()
        assert [e.event for e in audit_log(node_a).events()] == ["lists_installed"]  # audited in the database
    finally:
        close_all()
