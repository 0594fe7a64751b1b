"""A restore that dies anywhere leaves live entirely old or entirely new; recover() then tidies up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.backup.restore import (
    MANAGED,
    Recovery,
    RestoreOptions,
    StepName,
    journal_path,
    recover,
    run_restore,
)
from core.errors import ConflictError, IntegrityError
from tests.unit.test_backup_helpers import NOW, SIGNER, backup, make_state, tree_digest

ROOT = Path(__file__).resolve().parents[2]
BOUNDARIES = [f"{p}:{s.value}" for s in StepName for p in ("before", "after")] + [
    "swap:journaled",
    "swap:exchanged",
    "smoke:committed",
]


class Crash(BaseException):
    """Stands in for the process dying (no compensation runs)."""


def _setup(tmp_path):
    live = make_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    (live / "config.yaml").write_text("subject: changed-after-backup\n")
    (live / "keys" / "late.pem").write_bytes(b"private key created after the backup")
    old = tree_digest(live)
    new = {
        k: v
        for k, v in old.items()
        if k.split("/")[0] not in MANAGED
        and not (k.startswith("keys/") and k.endswith(".json"))
        and not k.endswith(("-wal", "-shm"))
    }
    new |= {f.path: f.sha3_256.removeprefix("0x") for f in result.manifest.files}
    assert old != new
    return live, store, result.manifest.backup_id, old, new


def _crash_at(boundary):
    def hook(name):
        if name == boundary:
            raise Crash(name)

    return hook


def _assert_clean(tmp_path, live):
    assert not journal_path(live).exists()
    assert not list(tmp_path.glob("var.staging-*")) and not list(tmp_path.glob(".var.restore-*"))


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_crash_at_every_boundary_then_recover(tmp_path, boundary):
    live, store, bid, old, new = _setup(tmp_path)
    opts = RestoreOptions(hook=_crash_at(boundary), compensate=False)
    with pytest.raises(Crash):
        run_restore(store, bid, live, SIGNER, now=NOW, options=opts)
    assert tree_digest(live) in (old, new)
    outcome = recover(live)
    state = tree_digest(live)
    assert state in (old, new)
    if boundary in ("smoke:committed", "after:smoke"):
        assert state == new
    else:
        assert state == old or outcome is Recovery.NOTHING
    _assert_clean(tmp_path, live)
    run_restore(store, bid, live, SIGNER, now=NOW)
    assert tree_digest(live) == new
    assert (live / "keys" / "late.pem").read_bytes() == b"private key created after the backup"


AFTER_COMMIT = ("after:smoke", "smoke:committed")


def _failing_at(boundary):
    def hook(name):
        if name == boundary:
            raise IntegrityError(f"injected at {name}")

    return hook


@pytest.mark.parametrize("boundary", [b for b in BOUNDARIES if b not in AFTER_COMMIT])
def test_failure_before_commit_is_compensated_to_old(tmp_path, boundary):
    live, store, bid, old, _ = _setup(tmp_path)
    with pytest.raises(IntegrityError):
        run_restore(store, bid, live, SIGNER, now=NOW, options=RestoreOptions(hook=_failing_at(boundary)))
    assert tree_digest(live) == old
    _assert_clean(tmp_path, live)


@pytest.mark.parametrize("boundary", AFTER_COMMIT)
def test_failure_after_commit_is_reported_and_live_stays_new(tmp_path, boundary):
    live, store, bid, _, new = _setup(tmp_path)
    with pytest.raises(IntegrityError):
        run_restore(store, bid, live, SIGNER, now=NOW, options=RestoreOptions(hook=_failing_at(boundary)))
    assert tree_digest(live) == new
    _assert_clean(tmp_path, live)


def test_recover_without_journal_sweeps_leftovers(tmp_path):
    live, store, bid, old, _ = _setup(tmp_path)
    with pytest.raises(Crash):
        run_restore(
            store,
            bid,
            live,
            SIGNER,
            now=NOW,
            options=RestoreOptions(hook=_crash_at("after:prepare_staging"), compensate=False),
        )
    assert list(tmp_path.glob("var.staging-*"))
    assert recover(live) is Recovery.NOTHING
    _assert_clean(tmp_path, live)
    assert tree_digest(live) == old


def test_second_concurrent_restore_is_refused(tmp_path):
    live, store, bid, _, _ = _setup(tmp_path)

    def hook(name):
        if name == "before:swap":
            with pytest.raises(ConflictError):
                run_restore(store, bid, live, SIGNER, now=NOW)

    run_restore(store, bid, live, SIGNER, now=NOW, options=RestoreOptions(hook=hook))


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from core.backup.restore import RestoreOptions, run_restore
    from core.backup.storage import FileStore
    from tests.unit.test_backup_helpers import NOW, SIGNER

    def hook(name):
        if name == {boundary!r}:
            os.kill(os.getpid(), signal.SIGKILL)

    run_restore(FileStore(Path({store!r})), {bid!r}, Path({live!r}), SIGNER, now=NOW,
                options=RestoreOptions(hook=hook))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("boundary", ["swap:journaled", "swap:exchanged", "after:swap", "smoke:committed"])
def test_sigkill_at_swap_boundary_leaves_old_or_new(tmp_path, boundary):
    live, store, bid, old, new = _setup(tmp_path)
    code = CHILD.format(
        root=str(ROOT), boundary=boundary, store=str(tmp_path / "store"), bid=bid, live=str(live)
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert tree_digest(live) in (old, new)
    assert journal_path(live).exists()
    recover(live)
    assert tree_digest(live) == (new if boundary == "smoke:committed" else old)
    _assert_clean(tmp_path, live)
    run_restore(store, bid, live, SIGNER, now=NOW)
    assert tree_digest(live) == new
    assert os.stat(live / "keys" / f"{SIGNER.kid}.pem").st_mode & 0o777 == 0o600
