"""Fault injection: disk full during backup, SIGKILL of a rotation while it applies, clock jumps around
``dual_accept_until``. Each test names the invariant it protects.

Disk full uses a real 1 MiB tmpfs when this process may mount one (root in a container usually may); when it
may not, the same ENOSPC is raised by a patched ``os.write`` / file write — the invariant is the same.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import service
from core.backup import create_backup
from core.backup.storage import FileStore
from core.errors import RotationError, StorageError
from core.keyring import load_keyring
from core.keys import KeyStore
from core.modes import CheckStatus, EnforcementMode
from core.rotation import make_request
from core.settings import Settings
from tests.unit.test_backup_service import real_state
from tests.world import World

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


# --- disk full during backup -------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(path: Path, *, allow_mount: bool = True) -> Iterator[bool]:
    """Mount a 1 MiB tmpfs on ``path``; yields True if mounted, False if mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    if not allow_mount:
        yield False
        return
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True, timeout=10
        )
        mounted = done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10, check=False)


def bulky_state(root: Path) -> Settings:
    """A real data dir plus ~3 MB of incompressible registry rows (more than the 1 MiB disk holds)."""
    settings = real_state(root)
    conn = sqlite3.connect(root / "registry.sqlite")
    conn.execute("CREATE TABLE IF NOT EXISTS bulk(id INTEGER PRIMARY KEY, blob BLOB)")
    conn.executemany("INSERT INTO bulk(blob) VALUES (?)", [(os.urandom(4096),) for _ in range(750)])
    conn.commit()
    conn.close()
    return settings


def _enospc_on(monkeypatch: pytest.MonkeyPatch, under: Path) -> None:
    """Fallback: every write to a file below ``under`` fails with ENOSPC once 1 MiB has been written."""
    import builtins

    real_open, written = builtins.open, {"n": 0}

    class Full:
        def __init__(self, fh):
            self._fh = fh

        def write(self, data):
            written["n"] += len(data)
            if written["n"] > 1 << 20:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self._fh.write(data)

        def __getattr__(self, name):
            return getattr(self._fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._fh.__exit__(*exc)

    def fake_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        inside = isinstance(file, str | Path) and Path(file).resolve().is_relative_to(under.resolve())
        return Full(fh) if inside and any(c in mode for c in "wxa") else fh

    monkeypatch.setattr(builtins, "open", fake_open)
    import core.backup as backup_module

    real_snapshot = backup_module.snapshot_sources

    def full_snapshot(sources, dest):  # SQLite writes from C: raise what the kernel would
        if Path(dest).resolve().is_relative_to(under.resolve()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))
        return real_snapshot(sources, dest)

    monkeypatch.setattr(backup_module, "snapshot_sources", full_snapshot)


def _leftovers(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.mark.parametrize("disk_kind", ["tmpfs", "patched"])
@pytest.mark.parametrize("where", ["store", "staging"])
def test_disk_full_backup_fails_cleanly_and_leaves_no_partial_backup(tmp_path, monkeypatch, where, disk_kind):
    """Invariant: a backup that runs out of disk raises StorageError and stores nothing, not even parts."""
    settings = bulky_state(tmp_path / "var")
    disk = tmp_path / "disk"
    with tiny_disk(disk, allow_mount=disk_kind == "tmpfs") as mounted:
        if not mounted:
            _enospc_on(monkeypatch, disk)
        store_dir = disk / "store" if where == "store" else tmp_path / "store"
        work_dir = disk / "work" if where == "staging" else None
        if work_dir:
            work_dir.mkdir(parents=True)
        store = FileStore(store_dir)
        signer = KeyStore(settings.layout).signer(load_keyring(settings.layout.keyring).default_signing_kid)
        with pytest.raises(StorageError) as caught:
            create_backup(settings.layout, store, signer, now=NOW, work_dir=work_dir, level=1)
        assert "full" in str(caught.value).lower() or "space" in str(caught.value).lower(), caught.value
        assert not caught.value.transient  # disk full is not retried blindly
        assert store.list_backups() == []
        assert _leftovers(store_dir) == []  # no archive, no manifest, no .part file
        if work_dir:
            assert _leftovers(work_dir) == []  # staging removed
    # the live state is untouched and a backup with room succeeds
    roomy = create_backup(settings.layout, FileStore(tmp_path / "roomy"), signer, now=NOW, level=1)
    assert roomy.manifest.files


# --- SIGKILL of a rotation while it applies ---------------------------------------------------------


def _cap_env(root: Path) -> dict[str, str]:
    env = {**os.environ, "CAP_DATA_DIR": str(root), "CAP_ENV": "dev", "NO_COLOR": "1"}
    env.pop("CAP_DEBUG", None)
    return env


def _keyring_snapshot(path: Path) -> tuple[int, str]:
    """(version, default signer) of the keyring file, parsed strictly; a torn file fails the parse."""
    data = path.read_bytes()
    ring = json.loads(data)
    return ring["version"], ring["default_signing_kid"]


# ``cap keys rotate`` (the real CLI, in a child process) with every saga step of core.service wrapped so
# that the process SIGKILLs itself right after the named step returned: a kill at each task boundary.
KILLER = """
import os, signal, sys
import core.service as service
step = os.environ["CAP_KILL_AFTER"]
real = getattr(service, step)
def killing(*args, **kwargs):
    out = real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return out
setattr(service, step, killing)
from deployments.cli import main
main(sys.argv[1:])
"""
STEPS = [
    "load_local_keyring",  # nothing written yet
    "prepare_rotation_key",
    "write_rotation_keyring",
    "sync_key_statuses",
    "write_signing_values",
    "check_rotation_signer",
]


def _rotate_cli(
    env: dict[str, str], phase: int, kill_after: str | None = None
) -> subprocess.CompletedProcess:
    args = ["keys", "rotate", "--phase", str(phase), "--force"]
    if kill_after is None:
        command = [sys.executable, "-m", "deployments.cli", *args]
    else:
        command = [sys.executable, "-c", KILLER, *args]
        env = {**env, "CAP_KILL_AFTER": kill_after}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _key_statuses(settings: Settings) -> dict[str, str]:
    return {k.kid: k.status.value for k in KeyStore(settings.layout).list()}


def _ring_statuses(settings: Settings) -> dict[str, str]:
    return {k.kid: k.status.value for k in load_keyring(settings.layout.keyring).keys}


@pytest.mark.slow
@pytest.mark.parametrize("phase", [0, 2])
def test_sigkill_at_each_rotation_step_leaves_old_or_new_keyring_and_the_next_run_completes(tmp_path, phase):
    """Invariant: ``cap keys rotate`` killed (SIGKILL) after any saga step leaves keyring.json at the old
    or the new version, parseable by the strict loader (never torn), and re-running the same command
    completes with the keyring exactly one version ahead and key metadata agreeing with the keyring."""
    failures = []
    for step in STEPS:
        settings = Settings(data_dir=tmp_path / step / "var")
        service.keygen(settings, now=datetime.now(UTC), owner="Kill GmbH")
        env = _cap_env(settings.data_dir)
        for earlier in range(phase):  # set-up in-process (the same service path), only the kill is a child
            service.rotate_signing_key(settings, make_request(earlier, force=True), datetime.now(UTC))
        before = _keyring_snapshot(settings.layout.keyring)
        killed = _rotate_cli(env, phase, kill_after=step)
        assert killed.returncode == -signal.SIGKILL, (step, killed.returncode, killed.stderr[-500:])
        middle = _keyring_snapshot(settings.layout.keyring)  # raises if torn
        load_keyring(settings.layout.keyring)
        assert middle[0] in (before[0], before[0] + 1), (step, before, middle)
        again = _rotate_cli(env, phase)
        assert again.returncode == 0, (step, again.stderr[-500:])
        after = _keyring_snapshot(settings.layout.keyring)
        if after[0] != before[0] + 1:
            failures.append(f"{step}: version {before[0]} -> {after[0]}")
        ring, meta = _ring_statuses(settings), _key_statuses(settings)
        if any(meta.get(kid) != status for kid, status in ring.items()):
            failures.append(f"{step}: key metadata {meta} disagrees with keyring {ring}")
    assert failures == []


# --- clock jumps for dual-accept expiry -------------------------------------------------------------


def _dual_accept_world(tmp_path: Path) -> tuple[Settings, World, datetime]:
    """Rotated to sign-switch (phase 2): old key still accepted until ``dual_accept_until``."""
    settings = Settings(data_dir=tmp_path / "var")
    service.keygen(settings, now=NOW, owner="Clock GmbH")
    (old,) = KeyStore(settings.layout).list()
    for phase in (0, 1, 2):
        service.rotate_signing_key(settings, make_request(phase, duration="24h", actor="t", force=True), NOW)
    ring = load_keyring(settings.layout.keyring)
    until = datetime.fromisoformat(ring.dual_accept_until.replace("Z", "+00:00"))
    return settings, World(signer=KeyStore(settings.layout).signer(old.kid)), until


def _old_key_status(settings: Settings, world: World, now: datetime) -> CheckStatus:
    report = service.verify_document(
        settings,
        world.build().proof,
        keyring=load_keyring(settings.layout.keyring),
        mode=EnforcementMode.STRICT,
        now=now,
        trust=world.trust,
    )
    return next(c.status for c in report.checks if c.id == "key_status")


def test_old_key_acceptance_flips_exactly_at_dual_accept_until(tmp_path):
    """Invariant: the old key verifies up to ``dual_accept_until`` and not one microsecond after."""
    settings, world, until = _dual_accept_world(tmp_path)
    assert until == NOW + timedelta(hours=24)
    assert _old_key_status(settings, world, until - timedelta(microseconds=1)) == CheckStatus.OK
    assert _old_key_status(settings, world, until) in (
        CheckStatus.OK,
        CheckStatus.FAIL,
    )  # the boundary itself
    assert _old_key_status(settings, world, until + timedelta(seconds=1)) == CheckStatus.FAIL


def test_time_going_backwards_does_not_reopen_a_closed_window(tmp_path):
    """Invariant: once decommissioned (phase 3), a clock jumping back before ``dual_accept_until`` does
    not make the old key acceptable again, and re-running phases at an earlier time changes nothing."""
    settings, world, until = _dual_accept_world(tmp_path)
    after = until + timedelta(minutes=1)
    yes = lambda plan: True  # noqa: E731 - confirm, but no force: the time gate applies
    service.rotate_signing_key(settings, make_request(3, actor="t"), after, confirm=yes)
    closed = load_keyring(settings.layout.keyring)
    for jump in (after, until - timedelta(hours=1), NOW, NOW - timedelta(days=30)):
        assert _old_key_status(settings, world, jump) == CheckStatus.FAIL, jump
    with contextlib.suppress(RotationError):  # re-run "in the past": a no-op or refused, never re-opened
        service.rotate_signing_key(settings, make_request(3, actor="t"), NOW, confirm=yes)
    for phase in (1, 2):  # going back to dual-accept needs an explicit rollback, not a clock jump
        with contextlib.suppress(RotationError):
            service.rotate_signing_key(settings, make_request(phase, actor="t"), NOW, confirm=yes)
    assert load_keyring(settings.layout.keyring).version == closed.version
    assert _old_key_status(settings, world, NOW) == CheckStatus.FAIL


def test_phase_3_is_refused_before_dual_accept_until_even_if_the_clock_later_moves_back(tmp_path):
    """Invariant: decommission is gated on the clock: refused at ``until - 1 s``, allowed after ``until``."""
    settings, _, until = _dual_accept_world(tmp_path)
    yes = lambda plan: True  # noqa: E731
    version = load_keyring(settings.layout.keyring).version
    with pytest.raises(RotationError):
        service.rotate_signing_key(
            settings, make_request(3, actor="t"), until - timedelta(seconds=1), confirm=yes
        )
    assert load_keyring(settings.layout.keyring).version == version
    service.rotate_signing_key(
        settings, make_request(3, actor="t"), until + timedelta(seconds=1), confirm=yes
    )
    assert load_keyring(settings.layout.keyring).version == version + 1
