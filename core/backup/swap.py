"""The journalled atomic swap of a live directory with its staging directory, and crash recovery.

Before the swap a journal (``.<live>.restore-journal.json``, written atomically) names the three paths
and the inodes of the live and staging directories. The swap exchanges both directories with
``renameat2(RENAME_EXCHANGE)`` (two renames where unsupported). :func:`recover` reads the journal after
a crash: a committed swap is finished, anything else is undone by locating the previous state by
inode. So the live path always holds the old or the new state, never a mix. No private key is ever
deleted: :func:`carry_over` hard-links the live key files and every unmanaged entry into staging.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.errors import ConflictError, IntegrityError
from core.fsio import atomic_write, fsync_dir

MANAGED = frozenset(
    {
        "registry.sqlite",
        "policies.sqlite",
        "config.yaml",
        "keyring.json",
        "audit.jsonl",
        "lists",
        "generation.json",
        "keyring.floor.json",
        "keyring.chain.json",
        "state.sqlite",  # signed snapshots of the keyring and lists (core.backup.state_snapshots)
    }
)
_SQLITE_SIDE = ("-wal", "-shm", "-journal")

Hook = Callable[[str], None]


class Recovery(StrEnum):
    NOTHING = "nothing"
    ROLLED_BACK = "rolled_back"
    COMPLETED = "completed"


class JournalState(StrEnum):
    SWAPPING = "swapping"
    COMMITTED = "committed"


class Journal(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: Literal["restore.journal.v1"] = "restore.journal.v1"
    backup_id: str
    state: JournalState
    live: Path
    staging: Path
    old: Path
    old_ino: int | None
    new_ino: int


def rmtree(path: Path) -> None:
    """Remove a directory tree, a file or a symlink (never following it); missing is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def journal_path(live_dir: Path) -> Path:
    return live_dir.parent / f".{live_dir.name}.restore-journal.json"


def read_journal(live_dir: Path) -> Journal | None:
    path = journal_path(live_dir)
    return Journal.model_validate_json(path.read_bytes()) if path.exists() else None


def write_journal(j: Journal) -> None:
    atomic_write(journal_path(j.live), json.dumps(j.model_dump(mode="json")).encode())


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2``); False where unsupported."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    if fn(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link ``src`` into ``dst`` (copy where linking is impossible); symlinks stay symlinks."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir(exist_ok=True)
        for child in src.iterdir():
            _link_tree(child, dst / child.name)
    else:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def carry_over(live: Path, staging: Path) -> list[str]:
    """Bring private keys and unmanaged state from live into staging; returns what was carried."""
    carried = []
    for entry in sorted(live.iterdir()):
        if entry.name == "keys" and entry.is_dir() and not entry.is_symlink():
            (staging / "keys").mkdir(exist_ok=True)
            for key in sorted(entry.iterdir()):
                if key.suffix != ".json" and not (staging / "keys" / key.name).exists():
                    _link_tree(key, staging / "keys" / key.name)
                    carried.append(f"keys/{key.name}")
        elif entry.name not in MANAGED and not entry.name.endswith(_SQLITE_SIDE):
            _link_tree(entry, staging / entry.name)
            carried.append(entry.name)
    return carried


def free_old_dir(live: Path, backup_id: str) -> Path:
    """A free ``<live>.old-<id>[-n]`` path beside ``live`` for the previous state."""
    base = live.parent / f"{live.name}.old-{backup_id}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def swap_dirs(live: Path, staging: Path, old: Path, backup_id: str, hook: Hook | None = None) -> None:
    """Journal, then put ``staging`` at ``live`` and the previous live state at ``old``."""
    hook = hook or (lambda _: None)
    old_ino = live.stat().st_ino if live.exists() else None
    j = Journal(
        backup_id=backup_id,
        state=JournalState.SWAPPING,
        live=live,
        staging=staging,
        old=old,
        old_ino=old_ino,
        new_ino=staging.stat().st_ino,
    )
    write_journal(j)
    hook("swap:journaled")
    if old_ino is None:
        os.rename(staging, live)
    elif _exchange(live, staging):
        hook("swap:exchanged")
        os.rename(staging, old)
    else:
        os.rename(live, old)
        hook("swap:live_moved")
        os.rename(staging, live)
    fsync_dir(live.parent)


def _find(ino: int | None, paths: Sequence[Path]) -> Path | None:
    return next((p for p in paths if ino is not None and p.exists() and p.stat().st_ino == ino), None)


def _undo(j: Journal) -> None:
    """Put the pre-swap state back at ``j.live`` and remove the new one."""
    paths = (j.live, j.staging, j.old)
    old_at = _find(j.old_ino, paths)
    if j.old_ino is not None and old_at is None:
        raise IntegrityError("cannot recover: previous live state not found", file=str(j.old))
    if old_at is not None and old_at != j.live:
        if not (j.live.exists() and _exchange(j.live, old_at)):
            if j.live.exists():
                os.rename(
                    j.live, j.staging if not j.staging.exists() else j.old.with_name(j.old.name + ".new")
                )
            os.rename(old_at, j.live)
    elif old_at is None and j.live.exists() and j.live.stat().st_ino == j.new_ino:
        os.rename(j.live, j.staging)
    new_at = _find(j.new_ino, (*paths, j.old.with_name(j.old.name + ".new")))
    if new_at is not None and new_at != j.live:
        rmtree(new_at)
    fsync_dir(j.live.parent)
    journal_path(j.live).unlink(missing_ok=True)


def _finish(j: Journal, keep_old: bool) -> None:
    if not keep_old:
        rmtree(j.old)
    journal_path(j.live).unlink(missing_ok=True)
    fsync_dir(j.live.parent)


def swap_back_dir(live_dir: Path) -> None:
    """Undo an uncommitted swap of ``live_dir``. A committed swap is finished, never undone."""
    j = read_journal(live_dir)
    if j is None:
        return
    if j.state is JournalState.COMMITTED:
        _finish(j, keep_old=True)
    else:
        _undo(j)


def commit_swap(live_dir: Path, hook: Hook | None = None, keep_old: bool = True) -> None:
    """Mark the swap of ``live_dir`` committed, then finish it (drop the journal, maybe the old dir)."""
    j = read_journal(live_dir)
    if j is None:
        raise IntegrityError("no restore journal to commit", file=str(journal_path(live_dir)))
    write_journal(j.model_copy(update={"state": JournalState.COMMITTED}))
    (hook or (lambda _: None))("smoke:committed")
    _finish(j, keep_old)


def recover(live_dir: Path) -> Recovery:
    """Finish or undo an interrupted restore of ``live_dir`` and sweep its leftovers. Idempotent."""
    live_dir = Path(live_dir)
    path, outcome = journal_path(live_dir), Recovery.NOTHING
    j = read_journal(live_dir)
    if j is not None and j.state is JournalState.COMMITTED:
        _finish(j, keep_old=True)
        outcome = Recovery.COMPLETED
    elif j is not None:
        _undo(j)
        outcome = Recovery.ROLLED_BACK
    for pattern in (f".{live_dir.name}.restore-*", f"{live_dir.name}.staging-*"):
        for leftover in live_dir.parent.glob(pattern):
            if leftover != path:
                rmtree(leftover)
    return outcome


@contextlib.contextmanager
def restore_lock(live_dir: Path) -> Iterator[None]:
    """One restore per live dir at a time. Raises :class:`ConflictError` if another holds it."""
    live_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(live_dir.parent / f".{live_dir.name}.restore.lock", "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConflictError("another restore of this directory is running", file=str(live_dir)) from exc
        yield
