"""Restore as a saga of eight steps over a :class:`RestoreContext`, with a journal and an atomic swap.

Steps: 1 fetch + manifest signature, 2 verify integrity (decrypt, decompress, safe extract, every
digest), 3 prepare staging beside the live dir, 4 registry, 5 policy store, 6 key metadata (no
keyring rollback), 7 completeness + atomic swap, 8 smoke checks with swap-back on failure. Each step
is a separate function with a compensation, so a flow can run each as a task. The swap exchanges the
staging and live directories with ``renameat2(RENAME_EXCHANGE)`` (two renames where unsupported),
after writing a journal that names both directories' inodes; :func:`recover` reads it after a crash
and puts back the old state unless the new one had been committed. Restore never deletes private
keys: the live key directory's non-metadata files and everything a backup does not manage are
hard-linked into the new live directory.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.backup.archive import READ_CHUNK, extract_archive, iter_gunzip, read_stream
from core.backup.crypto import KeyWrapper, decrypt_stream, load_master_key
from core.backup.manifest import (
    BackupManifest,
    Encryption,
    FileType,
    ManifestSignature,
    TrustedKey,
    parse_keyring,
    parse_manifest,
    verify_manifest_signature,
)
from core.backup.scan import scan_file
from core.backup.storage import BackupStore
from core.canonical import canonical_bytes
from core.errors import (
    CapError,
    ConfigError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    VerificationError,
)
from core.fsio import atomic_write, fsync_dir
from core.signing import Signer, derive_kid

RECEIPT_VERSION = "restore.receipt.v1"
MANAGED = frozenset(
    {"registry.sqlite", "policies.sqlite", "config.yaml", "keyring.json", "audit.jsonl", "lists"}
)
_SQLITE_SIDE = ("-wal", "-shm", "-journal")


class StepName(StrEnum):
    FETCH = "fetch"
    VERIFY = "verify_integrity"
    STAGING = "prepare_staging"
    REGISTRY = "check_registry"
    POLICY = "check_policy_store"
    KEYS = "check_key_metadata"
    SWAP = "swap"
    SMOKE = "smoke"


class Recovery(StrEnum):
    NOTHING = "nothing"
    ROLLED_BACK = "rolled_back"
    COMPLETED = "completed"


class CheckRecord(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    status: Literal["ok", "warn", "fail"]
    message: str


class StepRecord(BaseModel):
    model_config = ConfigDict(frozen=True)
    number: int
    name: StepName
    status: Literal["ok", "skipped", "failed"]
    duration_ms: int
    checks: tuple[CheckRecord, ...] = ()


class RestoreContext(BaseModel):
    """Mutable state handed from step to step (paths derive from the live dir and backup id)."""

    backup_id: str
    live_dir: Path
    verify_only: bool = False
    allow_key_rollback: bool = False
    manifest: BackupManifest | None = None
    manifest_sha3: str | None = None
    archive_path: Path | None = None
    archive_is_copy: bool = False
    live_keyring_version: int | None = None
    old_dir: Path | None = None
    checks: list[CheckRecord] = []

    def sibling(self, name: str) -> Path:
        return self.live_dir.parent / name

    @property
    def work_dir(self) -> Path:
        return self.sibling(f".{self.live_dir.name}.restore-{self.backup_id}")

    @property
    def extract_dir(self) -> Path:
        return self.work_dir / "extract"

    @property
    def staging_dir(self) -> Path:
        return self.sibling(f"{self.live_dir.name}.staging-{self.backup_id}")

    def check(self, cid: str, message: str, status: Literal["ok", "warn", "fail"] = "ok") -> None:
        self.checks.append(CheckRecord(id=cid, status=status, message=message))

    def need_manifest(self) -> BackupManifest:
        if self.manifest is None:
            raise ConfigError("restore step run before fetch", field="manifest")
        return self.manifest


Hook = Callable[[str], None]


@dataclass
class RestoreOptions:
    """Everything optional about a restore. ``compensate=False`` simulates a crash (tests, drills)."""

    verify_only: bool = False
    allow_key_rollback: bool = False
    trusted_keys: tuple[TrustedKey, ...] | None = None
    key_wrapper: KeyWrapper | None = None
    expected_registry_tables: tuple[str, ...] = ()
    expected_policy_tables: tuple[str, ...] = ()
    policy_rehash: Callable[[Path], Sequence[str]] | None = None
    smoke: Callable[[Path], None] | None = None
    hook: Hook | None = None
    quick_check: bool = False
    keep_old: bool = True
    compensate: bool = True
    clock: Callable[[], float] = time.perf_counter


def _rmtree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# -- step 1 ------------------------------------------------------------------------------------------
def _live_keyring(ctx: RestoreContext, trusted: tuple[TrustedKey, ...] | None) -> tuple[TrustedKey, ...]:
    path = ctx.live_dir / "keyring.json"
    try:
        view = parse_keyring(path.read_bytes(), source=str(path))
    except (OSError, InvalidInputError, IntegrityError) as exc:
        if trusted is None:
            raise ConfigError(
                "no readable live keyring to check the backup signature; pass trusted_keys", file=str(path)
            ) from exc
        ctx.check("live_keyring", "live keyring unreadable; rollback check uses trusted keys only", "warn")
        return trusted
    ctx.live_keyring_version = view.version
    return trusted if trusted is not None else view.keys


def fetch_backup(
    ctx: RestoreContext, store: BackupStore, trusted_keys: tuple[TrustedKey, ...] | None = None
) -> None:
    """Step 1: fetch manifest and archive; check the signature. Raises VerificationError/IntegrityError."""
    data = store.get_manifest(ctx.backup_id)
    manifest = parse_manifest(data, source=f"{ctx.backup_id}.manifest.json")
    if manifest.backup_id != ctx.backup_id:
        raise IntegrityError("manifest is for another backup id", field="backup_id", expected=ctx.backup_id)
    result = verify_manifest_signature(manifest, _live_keyring(ctx, trusted_keys))
    ctx.manifest, ctx.manifest_sha3 = manifest, "0x" + hashlib.sha3_256(data).hexdigest()
    ctx.check("manifest_signature", f"{result.message} (kid {result.kid})")
    ctx.work_dir.mkdir(exist_ok=True)
    ctx.archive_path, ctx.archive_is_copy = store.fetch_archive(manifest.archive.name, ctx.work_dir)
    ctx.check("archive_fetched", manifest.archive.name)


def discard_fetch(ctx: RestoreContext) -> None:
    """Compensation of step 1."""
    _rmtree(ctx.work_dir)


# -- step 2 ------------------------------------------------------------------------------------------
def _archive_pieces(path: Path, manifest: BackupManifest, wrapper: KeyWrapper | None) -> Iterator[bytes]:
    digest, size = hashlib.sha3_256(), 0
    with open(path, "rb") as fh:

        def read(n: int) -> bytes:
            nonlocal size
            data = fh.read(n)
            digest.update(data)
            size += len(data)
            return data

        if wrapper is not None:
            yield from iter_gunzip(decrypt_stream(read, wrapper, manifest.backup_id))
        else:
            yield from iter_gunzip(iter(lambda: read(READ_CHUNK), b""))
        if fh.read(1):
            raise IntegrityError("trailing data after archive", code="backup_corrupt")
    if size != manifest.archive.size_bytes or "0x" + digest.hexdigest() != manifest.archive.sha3_256:
        raise IntegrityError("archive digest or size differs from manifest", code="backup_digest_mismatch")


def verify_integrity(ctx: RestoreContext, key_wrapper: KeyWrapper | None = None) -> None:
    """Step 2: decrypt, decompress and safely extract into the work dir, checking every file.

    Raises :class:`IntegrityError` (any mismatch, extra or missing file, unsafe member) or
    :class:`ConfigError` (no or wrong decryption key).
    """
    manifest, path = ctx.need_manifest(), ctx.archive_path
    if path is None:
        raise ConfigError("restore step run before fetch", field="archive_path")
    wrapper = None
    if manifest.encryption is Encryption.AES_256_GCM:
        wrapper = key_wrapper or load_master_key()
    _rmtree(ctx.extract_dir)
    ctx.extract_dir.mkdir(parents=True)
    reader = read_stream(lambda: _archive_pieces(path, manifest, wrapper))
    try:
        extract_archive(reader, ctx.extract_dir, manifest.files)
        reader.drain()
    finally:
        reader.close()
    ctx.check("integrity", f"{manifest.total_files} files, {manifest.total_size_bytes} bytes verified")


def discard_extract(ctx: RestoreContext) -> None:
    """Compensation of step 2."""
    _rmtree(ctx.extract_dir)


# -- step 3 ------------------------------------------------------------------------------------------
def prepare_staging(ctx: RestoreContext) -> None:
    """Step 3: an empty staging dir beside the live dir, filled by renaming the verified files in."""
    staging = ctx.staging_dir
    _rmtree(staging)
    staging.mkdir(mode=0o750)
    if ctx.live_dir.is_dir():
        os.chmod(staging, ctx.live_dir.stat().st_mode & 0o7777)
    for entry in sorted(ctx.extract_dir.iterdir()):
        os.rename(entry, staging / entry.name)
    fsync_dir(staging)
    ctx.check("staging", str(staging))


def discard_staging(ctx: RestoreContext) -> None:
    """Compensation of step 3."""
    _rmtree(ctx.staging_dir)


# -- steps 4 and 5 -----------------------------------------------------------------------------------
def _check_sqlite(ctx: RestoreContext, kind: FileType, expected: Sequence[str], quick: bool) -> list[Path]:
    paths = []
    for entry in (f for f in ctx.need_manifest().files if f.type is kind):
        path = ctx.staging_dir / entry.path
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise IntegrityError(f"restored database unreadable: {exc}", file=entry.path) from exc
        finally:
            conn.close()
        if verdict != [("ok",)]:
            raise IntegrityError("PRAGMA integrity_check failed", file=entry.path, found=str(verdict[:3]))
        want = set(expected) | set(entry.sqlite.tables if entry.sqlite else ())
        if want - tables:
            raise IntegrityError(
                "restored database lacks tables", file=entry.path, expected=sorted(want - tables)
            )
        if entry.sqlite and entry.sqlite.user_version != version:
            raise IntegrityError("schema version differs from manifest", file=entry.path)
        ctx.check(f"sqlite:{entry.path}", f"integrity ok, {len(tables)} tables, schema v{version}")
        paths.append(path)
    if not paths:
        ctx.check(f"sqlite:{kind.value}", "not in this backup", "warn")
    return paths


def check_registry(ctx: RestoreContext, expected_tables: Sequence[str] = (), quick: bool = False) -> None:
    """Step 4: registry database integrity and schema. Raises :class:`IntegrityError`."""
    _check_sqlite(ctx, FileType.DATABASE, expected_tables, quick)


def check_policy_store(
    ctx: RestoreContext,
    rehash: Callable[[Path], Sequence[str]] | None = None,
    expected_tables: Sequence[str] = (),
    quick: bool = False,
) -> None:
    """Step 5: policy store integrity; ``rehash(db)`` returns problems found recomputing hashes."""
    for path in _check_sqlite(ctx, FileType.POLICY_STORE, expected_tables, quick):
        problems = list(rehash(path)) if rehash else []
        if problems:
            raise IntegrityError("policy or IR hash mismatch", file=path.name, problems=problems[:20])
        ctx.check(
            "policy_hashes",
            "recomputed" if rehash else "no rehash function given",
            "ok" if rehash else "warn",
        )


# -- step 6 ------------------------------------------------------------------------------------------
def _check_key_file(ctx: RestoreContext, rel: str) -> None:
    path = ctx.staging_dir / rel
    if scan_file(rel, path, FileType.KEY_METADATA):
        raise IntegrityError("restored key metadata holds sensitive material", file=rel)
    try:
        meta = json.loads(path.read_bytes())
        kid, public = meta["kid"], meta["public_key"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError("key metadata unreadable", file=rel) from exc
    if derive_kid(public) != kid or Path(rel).stem != kid:
        raise IntegrityError("key metadata kid does not match its public key", file=rel)


def check_key_metadata(ctx: RestoreContext) -> None:
    """Step 6: kids derive from public keys; the keyring is not older than the live one.

    Raises :class:`IntegrityError` or :class:`VerificationError` (``keyring_rollback``).
    """
    manifest = ctx.need_manifest()
    for entry in (f for f in manifest.files if f.type is FileType.KEY_METADATA):
        _check_key_file(ctx, entry.path)
    ring = ctx.staging_dir / "keyring.json"
    if not ring.exists():
        ctx.check("keyring", "not in this backup", "warn")
        return
    view = parse_keyring(ring.read_bytes(), source="keyring.json")
    if view.version != manifest.keyring_version:
        raise IntegrityError("keyring version differs from manifest", file="keyring.json")
    live = ctx.live_keyring_version
    if live is not None and view.version < live and not ctx.allow_key_rollback:
        raise VerificationError(
            f"restored keyring version {view.version} is older than live version {live}",
            code="keyring_rollback",
            expected=f">= {live}",
        )
    ctx.check(
        "keyring", f"version {view.version} (live {live})", "warn" if live and view.version < live else "ok"
    )


# -- step 7 ------------------------------------------------------------------------------------------
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


def journal_path(live_dir: Path) -> Path:
    return live_dir.parent / f".{live_dir.name}.restore-journal.json"


def _write_journal(j: Journal) -> None:
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


def _carry_over(live: Path, staging: Path) -> list[str]:
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


def _completeness(ctx: RestoreContext) -> None:
    found = {p.relative_to(ctx.staging_dir).as_posix() for p in ctx.staging_dir.rglob("*") if not p.is_dir()}
    listed = {f.path for f in ctx.need_manifest().files}
    if found != listed:
        raise IntegrityError(
            "staging does not match the manifest",
            missing=sorted(listed - found)[:10],
            extra=sorted(found - listed)[:10],
        )


def _free_old_dir(ctx: RestoreContext) -> Path:
    base = ctx.sibling(f"{ctx.live_dir.name}.old-{ctx.backup_id}")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def swap_in(ctx: RestoreContext, hook: Hook | None = None) -> None:
    """Step 7: completeness check, carry-over, journal, atomic swap. Live is old or new, never mixed."""
    hook = hook or (lambda _: None)
    _completeness(ctx)
    live, staging = ctx.live_dir, ctx.staging_dir
    carried = _carry_over(live, staging) if live.exists() else []
    ctx.check("carried_over", ", ".join(carried) or "nothing")
    ctx.old_dir = _free_old_dir(ctx)
    old_ino = live.stat().st_ino if live.exists() else None
    j = Journal(
        backup_id=ctx.backup_id,
        state=JournalState.SWAPPING,
        live=live,
        staging=staging,
        old=ctx.old_dir,
        old_ino=old_ino,
        new_ino=staging.stat().st_ino,
    )
    _write_journal(j)
    hook("swap:journaled")
    if old_ino is None:
        os.rename(staging, live)
    elif _exchange(live, staging):
        hook("swap:exchanged")
        os.rename(staging, ctx.old_dir)
    else:
        os.rename(live, ctx.old_dir)
        hook("swap:live_moved")
        os.rename(staging, live)
    fsync_dir(live.parent)
    ctx.check("swap", f"live replaced; previous state kept at {ctx.old_dir.name}")


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
        _rmtree(new_at)
    fsync_dir(j.live.parent)
    journal_path(j.live).unlink(missing_ok=True)


def swap_back(ctx: RestoreContext) -> None:
    """Compensation of step 7 (and of a failed step 8). A committed restore is finished, never undone."""
    path = journal_path(ctx.live_dir)
    if path.exists():
        j = Journal.model_validate_json(path.read_bytes())
        if j.state is JournalState.COMMITTED:
            _finish(j, keep_old=True)
        else:
            _undo(j)


# -- step 8 ------------------------------------------------------------------------------------------
def default_smoke(live_dir: Path) -> None:
    """Open the registry and load the keyring. Raises :class:`IntegrityError`."""
    registry = live_dir / "registry.sqlite"
    if registry.exists():
        conn = sqlite3.connect(f"file:{registry}?mode=ro", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise IntegrityError(f"registry does not open: {exc}", file="registry.sqlite") from exc
        finally:
            conn.close()
    ring = live_dir / "keyring.json"
    if ring.exists():
        parse_keyring(ring.read_bytes())


def smoke_check(
    ctx: RestoreContext,
    smoke: Callable[[Path], None] | None = None,
    hook: Hook | None = None,
    keep_old: bool = True,
) -> None:
    """Step 8: smoke checks on the new live state; swaps back and raises if they fail, else commits."""
    try:
        (smoke or default_smoke)(ctx.live_dir)
    except (CapError, sqlite3.Error, OSError) as exc:
        swap_back(ctx)
        raise VerificationError(
            f"smoke check failed, previous state restored: {exc}", code="restore_smoke_failed"
        ) from exc
    path = journal_path(ctx.live_dir)
    j = Journal.model_validate_json(path.read_bytes())
    _write_journal(j.model_copy(update={"state": JournalState.COMMITTED}))
    (hook or (lambda _: None))("smoke:committed")
    _finish(j, keep_old)
    ctx.check("smoke", "registry opens, keyring loads" if smoke is None else "custom smoke checks passed")


def _finish(j: Journal, keep_old: bool) -> None:
    if not keep_old:
        _rmtree(j.old)
    journal_path(j.live).unlink(missing_ok=True)
    fsync_dir(j.live.parent)


# -- recovery and the saga ---------------------------------------------------------------------------
def recover(live_dir: Path) -> Recovery:
    """Finish or undo an interrupted restore of ``live_dir`` and sweep its leftovers. Idempotent."""
    live_dir = Path(live_dir)
    path, outcome = journal_path(live_dir), Recovery.NOTHING
    if path.exists():
        j = Journal.model_validate_json(path.read_bytes())
        if j.state is JournalState.COMMITTED:
            _finish(j, keep_old=True)
            outcome = Recovery.COMPLETED
        else:
            _undo(j)
            outcome = Recovery.ROLLED_BACK
    for pattern in (f".{live_dir.name}.restore-*", f"{live_dir.name}.staging-*"):
        for leftover in live_dir.parent.glob(pattern):
            if leftover != path:
                _rmtree(leftover)
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


class RestoreReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: Literal["restore.receipt.v1"] = RECEIPT_VERSION
    backup_id: str
    manifest_sha3_256: str
    live_dir: str
    restored_at: str
    verify_only: bool
    recovered_first: Recovery
    result: Literal["ok"] = "ok"
    steps: tuple[StepRecord, ...]
    signature: ManifestSignature | None = None


def receipt_signing_bytes(receipt: RestoreReceipt) -> bytes:
    return RECEIPT_VERSION.encode() + b"\n" + canonical_bytes(receipt.model_copy(update={"signature": None}))


def _plan(
    store: BackupStore, opts: RestoreOptions
) -> list[tuple[StepName, Callable[[RestoreContext], None], Callable[[RestoreContext], None] | None]]:
    return [
        (StepName.FETCH, lambda c: fetch_backup(c, store, opts.trusted_keys), discard_fetch),
        (StepName.VERIFY, lambda c: verify_integrity(c, opts.key_wrapper), discard_extract),
        (StepName.STAGING, prepare_staging, discard_staging),
        (
            StepName.REGISTRY,
            lambda c: check_registry(c, opts.expected_registry_tables, opts.quick_check),
            None,
        ),
        (
            StepName.POLICY,
            lambda c: check_policy_store(
                c, opts.policy_rehash, opts.expected_policy_tables, opts.quick_check
            ),
            None,
        ),
        (StepName.KEYS, check_key_metadata, None),
        (StepName.SWAP, lambda c: swap_in(c, opts.hook), swap_back),
        (StepName.SMOKE, lambda c: smoke_check(c, opts.smoke, opts.hook, opts.keep_old), None),
    ]


def _run_steps(ctx: RestoreContext, store: BackupStore, opts: RestoreOptions) -> list[StepRecord]:
    hook, records = opts.hook or (lambda _: None), []
    undo: list[Callable[[RestoreContext], None]] = []
    finished = False
    try:
        for number, (name, step, compensation) in enumerate(_plan(store, opts), start=1):
            if ctx.verify_only and number >= 7:
                records.append(StepRecord(number=number, name=name, status="skipped", duration_ms=0))
                continue
            hook(f"before:{name.value}")
            if compensation is not None:
                undo.append(compensation)
            start, mark = opts.clock(), len(ctx.checks)
            step(ctx)
            records.append(
                StepRecord(
                    number=number,
                    name=name,
                    status="ok",
                    checks=tuple(ctx.checks[mark:]),
                    duration_ms=int((opts.clock() - start) * 1000),
                )
            )
            hook(f"after:{name.value}")
        finished = True
    finally:
        if opts.compensate:
            cleanups = reversed(undo) if not finished else [discard_staging, discard_fetch]
            for compensation in cleanups:
                compensation(ctx)
    return records


def run_restore(
    store: BackupStore,
    backup_id: str,
    live_dir: Path,
    signer: Signer,
    *,
    now: datetime,
    options: RestoreOptions | None = None,
) -> RestoreReceipt:
    """Restore ``backup_id`` into ``live_dir`` (or only verify it) and return a signed receipt.

    Calls :func:`recover` first. On failure the completed steps are compensated in reverse and the
    error (``CapError``) is re-raised with ``details['restore_checks']``; live is untouched or swapped back.
    """
    opts = options or RestoreOptions()
    live_dir = Path(live_dir).absolute()
    with restore_lock(live_dir):
        recovered = recover(live_dir)
        ctx = RestoreContext(
            backup_id=backup_id,
            live_dir=live_dir,
            verify_only=opts.verify_only,
            allow_key_rollback=opts.allow_key_rollback,
        )
        try:
            records = _run_steps(ctx, store, opts)
        except CapError as exc:
            exc.details["restore_checks"] = [c.model_dump(mode="json") for c in ctx.checks]
            raise
    receipt = RestoreReceipt(
        backup_id=backup_id,
        manifest_sha3_256=ctx.manifest_sha3 or "",
        live_dir=str(live_dir),
        restored_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        verify_only=opts.verify_only,
        recovered_first=recovered,
        steps=tuple(records),
    )
    sig = signer.sign(receipt_signing_bytes(receipt))
    return receipt.model_copy(
        update={"signature": ManifestSignature(kid=signer.kid, sig=base64.b64encode(sig).decode())}
    )
