"""Restore as a saga of eight steps over a :class:`RestoreContext`, with a journal and an atomic swap.

Steps: 1 fetch + manifest signature, 2 verify integrity (archive digest over the stored bytes first,
then decrypt, bounded decompress, safe extract, every file digest), 3 prepare staging beside the live
dir, 4 registry, 5 policy store, 6 key metadata (no keyring rollback), 7 completeness + atomic swap,
8 smoke checks with swap-back on failure. Each step is a separate function with a compensation, so a
flow can run each as a task; :class:`RestoreSaga` orders them, records timings and compensates in
reverse, for :func:`run_restore` and the Prefect flow alike. The journalled swap and crash recovery
live in :mod:`core.backup.swap`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from core.attestation import SignedAttestation, attestation_problem
from core.backup.archive import READ_CHUNK, extract_archive, iter_gunzip, read_stream, tar_size_bound
from core.backup.crypto import KeyWrapper, decrypt_stream, load_master_key
from core.backup.manifest import (
    ArchiveInfo,
    BackupManifest,
    Encryption,
    FileType,
    ManifestSignature,
    TrustedKey,
    parse_keyring,
    parse_manifest,
    require_engine,
    verify_manifest_signature,
)
from core.backup.scan import scan_file
from core.backup.storage import BackupStore
from core.backup.swap import (  # MANAGED, journal_path: re-exported for callers of this module
    MANAGED,  # noqa: F401
    Hook,
    Recovery,
    carry_over,
    commit_swap,
    free_old_dir,
    journal_path,  # noqa: F401
    recover,
    restore_lock,
    rmtree,
    swap_back_dir,
    swap_dirs,
)
from core.canonical import canonical_bytes
from core.documents import parse_model
from core.errors import (
    CapError,
    ConfigError,
    IntegrityError,
    InvalidInputError,
    VerificationError,
)
from core.fsio import fsync_dir
from core.generation import next_generation, replacing_state, write_generation
from core.keyring import FLOOR_FILE, read_floor, write_floor
from core.keyring import parse_keyring as parse_full_keyring
from core.keyring_chain import CHAIN_FILE, read_chain, require_chain
from core.keys import parse_timestamp
from core.registry import carry_high_water
from core.signing import Signer, derive_kid
from core.store.url import Engine

RECEIPT_VERSION: Final = "restore.receipt.v1"


class StepName(StrEnum):
    FETCH = "fetch"
    VERIFY = "verify_integrity"
    STAGING = "prepare_staging"
    REGISTRY = "check_registry"
    POLICY = "check_policy_store"
    KEYS = "check_key_metadata"
    SWAP = "swap"
    SMOKE = "smoke"


class KeyringChoice(StrEnum):
    """What a restore does with a backup keyring older than the live one (``--keyring``)."""

    REFUSE = "refuse"
    MERGE = "merge"


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


class ReplicaDbPoint(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    txid: str  # Litestream transaction id reached, 16 hex digits
    replicated_at: str | None = None


class ReplicaPoint(BaseModel):
    """What a point-in-time restore asked for and reached (``cap restore --from-replica``)."""

    model_config = ConfigDict(frozen=True)
    url: str
    requested: str | None = None  # ``--at``; absent: the latest point
    reached: str | None = None  # the newest replicated transaction restored, over every database
    databases: tuple[ReplicaDbPoint, ...] = ()


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
    keyring_merge: bool = False
    started_at: datetime | None = None
    operator_keys: tuple[str, ...] = ()
    live_keyring_version: int | None = None
    old_dir: Path | None = None
    replica: ReplicaPoint | None = None
    staged_files: tuple[str, ...] = ()
    engine: Engine = Engine.SQLITE  # the live state's engine: a backup of the other one is refused at step 1
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


@dataclass
class RestoreOptions:
    """Everything optional about a restore. ``compensate=False`` simulates a crash (tests, drills)."""

    verify_only: bool = False
    allow_key_rollback: bool = False
    keyring_merge: bool = False
    operator_keys: tuple[str, ...] = ()
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
    require_engine(manifest, ctx.engine)
    result = verify_manifest_signature(manifest, _live_keyring(ctx, trusted_keys))
    ctx.manifest, ctx.manifest_sha3 = manifest, "0x" + hashlib.sha3_256(data).hexdigest()
    ctx.check("manifest_signature", f"{result.message} (kid {result.kid})")
    ctx.work_dir.mkdir(exist_ok=True)
    ctx.archive_path, ctx.archive_is_copy = store.fetch_archive(manifest.archive.name, ctx.work_dir)
    ctx.check("archive_fetched", manifest.archive.name)


def discard_fetch(ctx: RestoreContext) -> None:
    """Compensation of step 1."""
    rmtree(ctx.work_dir)


# -- step 2 ------------------------------------------------------------------------------------------
def check_archive_digest(path: Path, archive: ArchiveInfo) -> None:
    """Hash the stored archive's raw bytes and compare size and SHA3-256 with the signed manifest.

    Runs before anything is decrypted or decompressed, reading in ``READ_CHUNK`` pieces and stopping as
    soon as the file grows past the declared size.
    Raises :class:`IntegrityError` (``backup_digest_mismatch``).
    """
    digest, size = hashlib.sha3_256(), 0
    with open(path, "rb") as fh:
        while size <= archive.size_bytes and (data := fh.read(READ_CHUNK)):
            digest.update(data)
            size += len(data)
    found = "0x" + digest.hexdigest()
    if size != archive.size_bytes or not hmac.compare_digest(found, archive.sha3_256):
        raise IntegrityError(
            "archive digest or size differs from the signed manifest; nothing was decrypted or decompressed",
            code="backup_digest_mismatch",
            file=archive.name,
        )


def _archive_pieces(path: Path, manifest: BackupManifest, wrapper: KeyWrapper | None) -> Iterator[bytes]:
    bound = tar_size_bound(manifest.files)
    with open(path, "rb") as fh:
        if wrapper is not None:
            yield from iter_gunzip(decrypt_stream(fh.read, wrapper, manifest.backup_id), max_total=bound)
        else:
            yield from iter_gunzip(iter(lambda: fh.read(READ_CHUNK), b""), max_total=bound)
        if fh.read(1):
            raise IntegrityError("trailing data after archive", code="backup_corrupt")


def verify_integrity(ctx: RestoreContext, key_wrapper: KeyWrapper | None = None) -> None:
    """Step 2: check the stored archive's digest, then decrypt, decompress (no further than the manifest
    declares) and safely extract into the work dir, checking every file.

    Raises :class:`IntegrityError` (any mismatch, extra or missing file, unsafe member, too large) or
    :class:`ConfigError` (no or wrong decryption key).
    """
    manifest, path = ctx.need_manifest(), ctx.archive_path
    if path is None:
        raise ConfigError("restore step run before fetch", field="archive_path")
    check_archive_digest(path, manifest.archive)
    wrapper = None
    if manifest.encryption is Encryption.AES_256_GCM:
        wrapper = key_wrapper or load_master_key()
    rmtree(ctx.extract_dir)
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
    rmtree(ctx.extract_dir)


# -- step 3 ------------------------------------------------------------------------------------------
def prepare_staging(ctx: RestoreContext) -> None:
    """Step 3: an empty staging dir beside the live dir, filled by renaming the verified files in."""
    staging = ctx.staging_dir
    rmtree(staging)
    staging.mkdir(mode=0o750)
    if ctx.live_dir.is_dir():
        os.chmod(staging, ctx.live_dir.stat().st_mode & 0o7777)
    for entry in sorted(ctx.extract_dir.iterdir()):
        os.rename(entry, staging / entry.name)
    fsync_dir(staging)
    ctx.check("staging", str(staging))


def discard_staging(ctx: RestoreContext) -> None:
    """Compensation of step 3."""
    rmtree(ctx.staging_dir)


# -- steps 4 and 5 -----------------------------------------------------------------------------------
def check_sqlite_file(
    ctx: RestoreContext,
    path: Path,
    rel: str,
    want: set[str],
    quick: bool,
    user_version: int | None = None,
) -> None:
    """``PRAGMA integrity_check`` (or ``quick_check``), the tables in ``want`` and, when given, the schema
    version of one staged database. Raises :class:`IntegrityError` naming ``rel``."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        verdict = conn.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        raise IntegrityError(f"restored database unreadable: {exc}", file=rel) from exc
    finally:
        conn.close()
    if verdict != [("ok",)]:
        raise IntegrityError("PRAGMA integrity_check failed", file=rel, found=str(verdict[:3]))
    if want - tables:
        raise IntegrityError("restored database lacks tables", file=rel, expected=sorted(want - tables))
    if user_version is not None and user_version != version:
        raise IntegrityError("schema version differs from manifest", file=rel)
    ctx.check(f"sqlite:{rel}", f"integrity ok, {len(tables)} tables, schema v{version}")


def _check_sqlite(ctx: RestoreContext, kind: FileType, expected: Sequence[str], quick: bool) -> list[Path]:
    paths = []
    for entry in (f for f in ctx.need_manifest().files if f.type is kind):
        path = ctx.staging_dir / entry.path
        want = set(expected) | set(entry.sqlite.tables if entry.sqlite else ())
        version = entry.sqlite.user_version if entry.sqlite else None
        check_sqlite_file(ctx, path, entry.path, want, quick, version)
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
ATTESTATION_SUFFIX: Final = ".attestation.json"
KEYRING_OPTIONS: Final = (
    "restore with --keyring merge to keep the live keyring (its retired and revoked keys stay so), "
    "or with --allow-key-rollback to take the backup's keyring as it was"
)


def _check_attestation_file(path: Path, rel: str) -> None:
    signed = parse_model(SignedAttestation, path.read_bytes(), source=rel, what="attestation")
    subject = signed.attestation.subject_kid
    if Path(rel).name != subject + ATTESTATION_SUFFIX:
        raise IntegrityError(
            "attestation file is not named after its subject key", file=rel, expected=subject
        )
    problem = attestation_problem(signed)
    if problem is not None:
        raise IntegrityError(f"restored attestation does not verify: {problem}", file=rel)


def _check_key_file(ctx: RestoreContext, rel: str) -> None:
    path = ctx.staging_dir / rel
    if scan_file(rel, path, FileType.KEY_METADATA):
        raise IntegrityError("restored key metadata holds sensitive material", file=rel)
    if rel.endswith(ATTESTATION_SUFFIX):
        _check_attestation_file(path, rel)
        return
    try:
        meta = json.loads(path.read_bytes())
        kid, public = meta["kid"], meta["public_key"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError("key metadata unreadable", file=rel) from exc
    if derive_kid(public) != kid or Path(rel).stem != kid:
        raise IntegrityError("key metadata kid does not match its public key", file=rel)


def _keyring_decision(ctx: RestoreContext, version: int, live: int) -> None:
    """A backup keyring older than the live one: refuse (naming the options), merge, or roll back."""
    why = f"backup keyring v{version} is older than live v{live}"
    if ctx.allow_key_rollback:
        ctx.check("keyring_decision", f"{why}: taking the backup's keyring (--allow-key-rollback)", "warn")
    elif ctx.keyring_merge:
        ctx.check("keyring_decision", f"{why}: keeping the live keyring v{live} (--keyring merge)", "warn")
    elif ctx.verify_only:
        ctx.check("keyring_decision", f"{why}; a real restore needs a choice: {KEYRING_OPTIONS}", "warn")
    else:
        raise VerificationError(f"{why}; {KEYRING_OPTIONS}", code="keyring_rollback", expected=f">= {live}")


def _check_keyring_chain(ctx: RestoreContext, ring: Path) -> None:
    """The restored keyring carries a valid signature chain (or, with no operator key pinned, none)."""
    chain = ring.with_name(CHAIN_FILE)
    if not chain.exists() and not ctx.operator_keys:
        ctx.check("keyring_signature", "backup keyring is unsigned (no keyring.chain.json)", "warn")
        return
    data = ring.read_bytes()
    keyring = parse_full_keyring(data, source="keyring.json")
    require_chain(
        keyring, data, read_chain(chain) if chain.exists() else None, ctx.operator_keys, source="keyring.json"
    )
    ctx.check("keyring_signature", f"keyring v{keyring.version} signed, chain verified")


def check_key_metadata(ctx: RestoreContext) -> None:
    """Step 6: key metadata and attestations check out; a keyring older than the live one gets a decision.

    Raises :class:`IntegrityError`, :class:`InvalidInputError` or :class:`VerificationError`
    (``keyring_rollback``, unless merging, rolling back explicitly, or only verifying).
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
    _check_keyring_chain(ctx, ring)
    live = ctx.live_keyring_version
    if live is not None and view.version < live:
        _keyring_decision(ctx, view.version, live)
    ctx.check(
        "keyring", f"version {view.version} (live {live})", "warn" if live and view.version < live else "ok"
    )


# -- step 7 ------------------------------------------------------------------------------------------
def _completeness(ctx: RestoreContext) -> None:
    """Staging holds exactly the manifest's files (a replica restore: exactly what step 3 staged)."""
    found = {p.relative_to(ctx.staging_dir).as_posix() for p in ctx.staging_dir.rglob("*") if not p.is_dir()}
    listed = {f.path for f in ctx.manifest.files} if ctx.manifest else set(ctx.staged_files)
    if found != listed:
        raise IntegrityError(
            "staging does not match the manifest",
            missing=sorted(listed - found)[:10],
            extra=sorted(found - listed)[:10],
        )


KEYRING_STATE: Final = ("keyring.json", "keyring.chain.json")


def keep_live_keyring(live: Path, staging: Path) -> list[str]:
    """``--keyring merge``: the staged keyring and key metadata become the live ones (the newer security
    state: a key retired or revoked since the backup stays so); returns what was kept."""
    kept = []
    for name in KEYRING_STATE:
        if (live / name).is_file():
            shutil.copy2(live / name, staging / name)
            kept.append(name)
    staged_keys = staging / "keys"
    for meta in sorted(staged_keys.glob("*.json")) if staged_keys.is_dir() else []:
        meta.unlink()
    for meta in sorted((live / "keys").glob("*.json")) if (live / "keys").is_dir() else []:
        staged_keys.mkdir(exist_ok=True)
        shutil.copy2(meta, staged_keys / meta.name)
        kept.append(f"keys/{meta.name}")
    return kept


def _set_floor(ctx: RestoreContext) -> None:
    """The restored rollback floor: the highest version either side has seen, unless the operator
    explicitly rolled the keyring back (then the restored keyring's version)."""
    staged = ctx.staging_dir / "keyring.json"
    if not staged.exists():
        return
    restored = parse_keyring(staged.read_bytes(), source="keyring.json").version
    if ctx.allow_key_rollback:
        floor = restored
    else:
        seen = (read_floor(ctx.live_dir / FLOOR_FILE), read_floor(ctx.staging_dir / FLOOR_FILE))
        floor = max(restored, ctx.live_keyring_version or 0, *(v or 0 for v in seen))
    write_floor(ctx.staging_dir / FLOOR_FILE, floor)
    ctx.check(
        "keyring_floor",
        f"rollback floor v{floor}",
        "warn" if floor < (ctx.live_keyring_version or 0) else "ok",
    )


def swap_in(ctx: RestoreContext, hook: Hook | None = None) -> None:
    """Step 7: completeness check, carry-over, journal, atomic swap. Live is old or new, never mixed."""
    _completeness(ctx)
    live, staging = ctx.live_dir, ctx.staging_dir
    if ctx.keyring_merge and live.exists():
        ctx.check("keyring_kept", ", ".join(keep_live_keyring(live, staging)) or "nothing")
    _set_floor(ctx)
    mark = carry_high_water(live / "registry.sqlite", staging / "registry.sqlite")
    ctx.check("registry_high_water", f"entry ids continue after proof_{mark:03d}")
    when = ctx.started_at or parse_timestamp(ctx.need_manifest().created_at, field="created_at")
    record = next_generation(live, f"restore {ctx.backup_id}", when)
    write_generation(staging, record)
    ctx.check("generation", f"generation {record.generation}")
    carried = carry_over(live, staging) if live.exists() else []
    ctx.check("carried_over", ", ".join(carried) or "nothing")
    ctx.old_dir = free_old_dir(live, ctx.backup_id)
    swap_dirs(live, staging, ctx.old_dir, ctx.backup_id, hook)
    ctx.check("swap", f"live replaced; previous state kept at {ctx.old_dir.name}")


def swap_back(ctx: RestoreContext) -> None:
    """Compensation of step 7 (and of a failed step 8). A committed restore is finished, never undone."""
    swap_back_dir(ctx.live_dir)


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
    commit_swap(ctx.live_dir, hook, keep_old)
    ctx.check("smoke", "registry opens, keyring loads" if smoke is None else "custom smoke checks passed")


# -- the saga and its receipt ------------------------------------------------------------------------
STEP_NUMBERS = {name: number for number, name in enumerate(StepName, start=1)}
MUTATING_STEPS = frozenset({StepName.SWAP, StepName.SMOKE})
Step = Callable[[RestoreContext], "RestoreContext | None"]
Compensation = Callable[[RestoreContext], object]


@dataclass
class RestoreSaga:
    """Runs the steps in order, recording each completion with its timing and checks.

    A step's compensation is registered before the step runs; :meth:`unwind` runs them in reverse
    after a failure, or only the ``cleanup`` functions after success. A step may return a new
    context (a Prefect task does); it then replaces the current one. ``verify_only`` skips steps 7-8.
    """

    ctx: RestoreContext
    hook: Hook | None = None
    clock: Callable[[], float] = time.perf_counter
    records: list[StepRecord] = field(default_factory=list)
    undo: list[Compensation] = field(default_factory=list)

    def _mark(self, event: str) -> None:
        if self.hook is not None:
            self.hook(event)

    def run(self, name: StepName, step: Step, compensation: Compensation | None = None) -> None:
        number = STEP_NUMBERS[name]
        if self.ctx.verify_only and name in MUTATING_STEPS:
            self.records.append(StepRecord(number=number, name=name, status="skipped", duration_ms=0))
            return
        self._mark(f"before:{name.value}")
        if compensation is not None:
            self.undo.append(compensation)
        start, mark = self.clock(), len(self.ctx.checks)
        out = step(self.ctx)
        if isinstance(out, RestoreContext):
            self.ctx = out
        elapsed = int((self.clock() - start) * 1000)
        checks = tuple(self.ctx.checks[mark:])
        self.records.append(
            StepRecord(number=number, name=name, status="ok", checks=checks, duration_ms=elapsed)
        )
        self._mark(f"after:{name.value}")

    def unwind(self, finished: bool, cleanup: Sequence[Compensation]) -> None:
        """Compensate in reverse after a failure; after success only run ``cleanup``."""
        for compensation in cleanup if finished else list(reversed(self.undo)):
            compensation(self.ctx)

    def annotate(self, exc: CapError) -> None:
        """Attach the checks done so far to a failure (``details['restore_checks']``)."""
        exc.details["restore_checks"] = [c.model_dump(mode="json") for c in self.ctx.checks]


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
    replica: ReplicaPoint | None = None  # point-in-time restores only; omitted otherwise
    signature: ManifestSignature | None = None


def receipt_signing_bytes(receipt: RestoreReceipt) -> bytes:
    return RECEIPT_VERSION.encode() + b"\n" + canonical_bytes(receipt.model_copy(update={"signature": None}))


def build_receipt(
    ctx: RestoreContext, records: Sequence[StepRecord], recovered: Recovery, now: datetime
) -> RestoreReceipt:
    """The unsigned receipt of a finished restore (or verification)."""
    return RestoreReceipt(
        backup_id=ctx.backup_id,
        manifest_sha3_256=ctx.manifest_sha3 or "",
        live_dir=str(ctx.live_dir),
        restored_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        verify_only=ctx.verify_only,
        recovered_first=recovered,
        steps=tuple(records),
        replica=ctx.replica,
    )


def sign_receipt(receipt: RestoreReceipt, signer: Signer) -> RestoreReceipt:
    """Ed25519 over ``"restore.receipt.v1\\n" + canonical JSON`` without the signature field."""
    sig = signer.sign(receipt_signing_bytes(receipt))
    return receipt.model_copy(
        update={"signature": ManifestSignature(kid=signer.kid, sig=base64.b64encode(sig).decode())}
    )


PlannedStep = tuple[StepName, Step, Compensation | None]
CLEANUP: tuple[Compensation, ...] = (discard_staging, discard_fetch)


def restore_plan(store: BackupStore, opts: RestoreOptions) -> list[PlannedStep]:
    """The eight steps with their compensations, bound to ``store`` and ``opts``."""
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
    ctx = RestoreContext(
        backup_id=backup_id,
        live_dir=Path(live_dir).absolute(),
        verify_only=opts.verify_only,
        allow_key_rollback=opts.allow_key_rollback,
        keyring_merge=opts.keyring_merge,
        operator_keys=opts.operator_keys,
        started_at=now,
    )
    return run_plan(ctx, restore_plan(store, opts), opts, signer, now)


def run_plan(
    ctx: RestoreContext, plan: list[PlannedStep], opts: RestoreOptions, signer: Signer, now: datetime
) -> RestoreReceipt:
    """The frame every restore runs in (from an archive or a replica): the restore lock, writers held off
    unless verify-only, :func:`recover` first, the steps as a saga compensated in reverse on failure (the
    ``CapError`` re-raised with ``details['restore_checks']``), then the signed receipt."""
    writers = contextlib.nullcontext() if opts.verify_only else replacing_state(ctx.live_dir)
    with restore_lock(ctx.live_dir), writers:
        recovered = recover(ctx.live_dir)
        saga = run_saga(ctx, plan, opts, CLEANUP)
    return sign_receipt(build_receipt(saga.ctx, saga.records, recovered, now), signer)


def run_saga(
    ctx: RestoreContext, plan: Sequence[PlannedStep], opts: RestoreOptions, cleanup: Sequence[Compensation]
) -> RestoreSaga:
    """Run ``plan`` as a saga: on a failure the ``CapError`` gets ``details['restore_checks']`` and, unless
    ``opts.compensate`` is off, the steps done are compensated in reverse, then ``cleanup``. Returns the saga
    (its context and step records make the receipt). Shared by the file and the PostgreSQL restore."""
    saga, finished = RestoreSaga(ctx, hook=opts.hook, clock=opts.clock), False
    try:
        for name, step, compensation in plan:
            saga.run(name, step, compensation)
        finished = True
    except CapError as exc:
        saga.annotate(exc)
        raise
    finally:
        if opts.compensate:
            saga.unwind(finished, cleanup)
    return saga
