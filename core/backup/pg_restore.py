"""Restore of the PostgreSQL state through the same eight steps, saga and receipt as the data dir (ADR 0015).

1 fetch + manifest signature (against the database's keyring) and the engine check, 2 integrity (archive
digest, every file digest: :func:`core.backup.restore.verify_integrity` unchanged), 3 staging = the tables
loaded into a fresh schema on the same database (:mod:`core.store.postgres.snapshot`), 4 registry entries
and the audit chain verified there, 5 stored policies and installed lists, 6 key metadata and the keyring
(its chain, and the rollback rule of a file restore), 7 the atomic switch in one transaction, 8 smoke checks
through fresh stores with a switch back on failure. A failure before step 7 leaves the live tables as they
were and drops the staging schema; the switch is one transaction, so the live state is never half-restored.
Node-local files in the archive (key metadata, config) are verified, not written: they belong to each node.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.audit import GENESIS, check_line
from core.backup import restore as steps
from core.backup.manifest import FileType, TrustedKey, parse_keyring
from core.backup.restore import (
    PlannedStep,
    RestoreContext,
    RestoreOptions,
    RestoreReceipt,
    StepName,
    build_receipt,
    discard_extract,
    discard_fetch,
    discard_staging,
    run_saga,
    sign_receipt,
)
from core.backup.storage import BackupStore
from core.backup.swap import Recovery
from core.digest import sha3_prefixed
from core.documents import parse_model
from core.errors import CapError, ConfigError, IntegrityError, NotFoundError, VerificationError
from core.keyring import parse_keyring as parse_full_keyring
from core.keyring_chain import ChainLink, KeyringChain, require_chain
from core.policy_store import StoredPolicy, verify_stored
from core.registry import RegistryEntry, check_entry
from core.screening import parse_lists_bytes
from core.signing import Signer
from core.store.url import DatabaseUrl, Engine

if TYPE_CHECKING:
    from core.settings import Settings

REGISTRY_VERSION = "1.0"
PROBLEMS_SHOWN = 5


def _schemas(ctx: RestoreContext) -> tuple[str, str]:
    from core.store.postgres import snapshot

    stamp = ctx.started_at.isoformat() if ctx.started_at else ""
    return snapshot.schema_names(ctx.backup_id, stamp)


def _rows(url: DatabaseUrl, ctx: RestoreContext, query: str) -> Iterator[tuple[Any, ...]]:
    from core.store.postgres import snapshot

    return snapshot.staged_rows(url, _schemas(ctx)[0], query)


def live_trusted_keys(url: DatabaseUrl) -> tuple[tuple[TrustedKey, ...], int] | None:
    """The database keyring's keys and head version (what checks the backup's signature); None without one."""
    from core.store.postgres.keyring import PgKeyringStore

    try:
        data, _ = PgKeyringStore(url).read()
    except NotFoundError:
        return None
    view = parse_keyring(data, source=f"{url.redacted} (keyring_versions)")
    return view.keys, view.version


# -- step 1 ------------------------------------------------------------------------------------------
def fetch(
    ctx: RestoreContext, url: DatabaseUrl, store: BackupStore, fallback: tuple[TrustedKey, ...] | None
) -> None:
    """Step 1: manifest, engine and signature (the database's keyring; ``fallback`` when it has none, e.g.
    a fresh database), then the archive. Raises ConfigError/VerificationError/IntegrityError."""
    live = live_trusted_keys(url)
    if live is None and fallback is None:
        raise ConfigError(
            "no keyring in the database (and none configured on this node) to check the backup signature",
            code="restore_no_trusted_keys",
            database=url.redacted,
        )
    steps.fetch_backup(ctx, store, live[0] if live else fallback)
    ctx.live_keyring_version = live[1] if live else None


# -- step 3 ------------------------------------------------------------------------------------------
def prepare_staging(ctx: RestoreContext, url: DatabaseUrl) -> None:
    """Step 3: the verified files beside the work dir, the tables loaded into a fresh staging schema."""
    from core.store.postgres import snapshot

    steps.prepare_staging(ctx)
    schema = _schemas(ctx)[0]
    counts = snapshot.load_staging(url, schema, ctx.staging_dir)
    ctx.check("staging_schema", f"{schema}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))


def discard_staging_schema(ctx: RestoreContext, url: DatabaseUrl) -> None:
    """Compensation of step 3 (and cleanup): the staging schema and files go."""
    from core.store.postgres import snapshot

    snapshot.drop_schema(url, _schemas(ctx)[0])
    discard_staging(ctx)


# -- step 4 ------------------------------------------------------------------------------------------
def _refuse(problems: list[str], what: str, table: str) -> None:
    if problems:
        raise IntegrityError(
            f"{what}: {len(problems)} problems, first: {problems[0]}",
            code="restore_check_failed",
            file=f"postgresql/{table}.csv",
            problems=problems[:PROBLEMS_SHOWN],
        )


def _schema_versions(ctx: RestoreContext) -> None:
    from core.store.postgres import snapshot

    info = ctx.need_manifest().postgresql
    known = {c: len(m) for c, m in snapshot.migrations().items()}
    if info is None or info.schema_versions != known:
        raise IntegrityError(
            "backup schema versions differ from this code's",
            code="restore_schema_mismatch",
            found=info.schema_versions if info else None,
            expected=known,
        )
    ctx.check("schema_versions", ", ".join(f"{c} v{v}" for c, v in sorted(known.items())))


def check_registry(ctx: RestoreContext, url: DatabaseUrl) -> None:
    """Step 4: schema versions known, every registry entry verifies (signature, kid, proof hash), no id above
    the backup's sequence, and the audit chain verifies from genesis. Raises :class:`IntegrityError`."""
    _schema_versions(ctx)
    meta = dict(_rows(url, ctx, "SELECT key, value FROM registry_meta"))
    if meta.get("registry_version") != REGISTRY_VERSION:
        raise IntegrityError(
            "staged registry_meta lacks registry_version 1.0", file="postgresql/registry_meta.csv"
        )
    columns = tuple(RegistryEntry.model_fields)
    problems, count, top = [], 0, 0
    for row in _rows(url, ctx, f"SELECT {', '.join(columns)} FROM registry_entries"):  # noqa: S608
        entry = RegistryEntry(**dict(zip(columns, row, strict=True)))
        problems += [f"{entry.id}: {p}" for p in check_entry(entry)]
        count, top = count + 1, max(top, int(entry.id.removeprefix("proof_")))
    _refuse(problems, "registry entries do not verify", "registry_entries")
    info = ctx.need_manifest().postgresql
    issued = info.sequences.get("registry_entry_seq", 0) if info else 0
    if top > issued:
        raise IntegrityError(
            f"registry entry proof_{top:03d} is above the backup's sequence ({issued})",
            code="restore_check_failed",
            file="postgresql/registry_entries.csv",
        )
    ctx.check("registry_entries", f"{count} entries verify, ids up to proof_{top:03d}")
    prev, events = GENESIS, 0
    try:
        for index, (line,) in enumerate(_rows(url, ctx, "SELECT line FROM audit_events ORDER BY seq")):
            prev, events = check_line(index, bytes(line), prev).digest, index + 1
    except IntegrityError as exc:
        raise IntegrityError(
            f"audit chain: {exc.message}", code="restore_check_failed", file="postgresql/audit_events.csv"
        ) from exc
    ctx.check("audit_chain", f"{events} events, chain verifies from genesis")


# -- step 5 ------------------------------------------------------------------------------------------
def check_policy_store(ctx: RestoreContext, url: DatabaseUrl) -> None:
    """Step 5: every stored policy's and IR's hash recomputed; every installed lists document matches its
    digest and the newest one parses. Raises :class:`IntegrityError`."""
    columns = tuple(StoredPolicy.model_fields)
    problems, count = [], 0
    for row in _rows(url, ctx, f"SELECT {', '.join(columns)} FROM policies"):  # noqa: S608
        problems += verify_stored(StoredPolicy(**dict(zip(columns, row, strict=True))))
        count += 1
    _refuse(problems, "stored policies do not verify", "policies")
    ctx.check("policy_hashes", f"{count} policies recomputed")
    newest: bytes | None = None
    for number, digest, document in _rows(
        url, ctx, "SELECT number, sha3_256, document FROM installed_lists ORDER BY number"
    ):
        newest = bytes(document)
        if not hmac.compare_digest(sha3_prefixed(newest), str(digest)):
            _refuse(
                [f"lists row {number} does not hash to its sha3_256"], "installed lists", "installed_lists"
            )
    if newest is not None:
        parse_lists_bytes(newest, "postgresql/installed_lists.csv")
    ctx.check(
        "lists",
        "newest installed lists parse" if newest else "no lists installed",
        "ok" if newest else "warn",
    )


# -- step 6 ------------------------------------------------------------------------------------------
def check_keyring(ctx: RestoreContext, url: DatabaseUrl) -> None:
    """Step 6: key metadata files check out; the staged keyring parses, is the manifest's version, its chain
    vouches for it; older than the live one: refused unless merge / allow-key-rollback (a warning)."""
    manifest = ctx.need_manifest()
    for entry in (f for f in manifest.files if f.type is FileType.KEY_METADATA):
        steps._check_key_file(ctx, entry.path)
    versions = list(
        _rows(url, ctx, "SELECT version, document FROM keyring_versions ORDER BY version DESC LIMIT 1")
    )
    if not versions:
        ctx.check("keyring", "not in this backup", "warn")
        return
    source = "postgresql/keyring_versions.csv"
    version, data = int(str(versions[0][0])), bytes(versions[0][1])
    keyring = parse_full_keyring(data, source=source)
    if keyring.version != version or version != manifest.keyring_version:
        raise IntegrityError("keyring version differs from its row or the manifest", file=source)
    links = tuple(
        parse_model(ChainLink, bytes(r[0]), source=source, what="keyring link", expected="a chain link")
        for r in _rows(url, ctx, "SELECT link FROM keyring_links ORDER BY version")
    )
    if links or ctx.operator_keys:
        require_chain(
            keyring, data, KeyringChain(links=links) if links else None, ctx.operator_keys, source=source
        )
        ctx.check("keyring_signature", f"keyring v{version} signed, chain verified")
    else:
        ctx.check("keyring_signature", "backup keyring is unsigned (no keyring_links)", "warn")
    live = ctx.live_keyring_version
    if live is not None and version < live:
        steps._keyring_decision(ctx, version, live)
    ctx.check("keyring", f"version {version} (live {live})", "warn" if live and version < live else "ok")


# -- steps 7 and 8 -----------------------------------------------------------------------------------
def switch_in(ctx: RestoreContext, url: DatabaseUrl) -> None:
    """Step 7: the atomic switch (:func:`core.store.postgres.snapshot.switch`)."""
    from core.store.postgres import snapshot

    staging, before = _schemas(ctx)
    info = ctx.need_manifest().postgresql
    done = snapshot.switch(
        url,
        staging,
        before,
        keep_keyring=ctx.keyring_merge,
        rollback=ctx.allow_key_rollback,
        backup_sequences=info.sequences if info else {},
    )
    if ctx.keyring_merge:
        ctx.check("keyring_kept", "live keyring_versions, keyring_links, keyring_floor")
    if done.keyring_floor is not None:
        ctx.check("keyring_floor", f"rollback floor v{done.keyring_floor}")
    ctx.check("registry_high_water", f"entry ids continue after proof_{done.registry_high_water:03d}")
    ctx.check("swap", f"live tables replaced in one transaction; previous state kept in schema {before}")


def switch_back(ctx: RestoreContext, url: DatabaseUrl) -> None:
    """Compensation of step 7 (and of a failed step 8)."""
    from core.store.postgres import snapshot

    snapshot.switch_back(url, *_schemas(ctx))


def default_smoke(settings: Settings) -> None:
    """Step 8's checks through fresh stores: the registry reads, the audit log's tail parses, the keyring
    loads with its chain and floor, and this node's default signer can sign with it."""
    from core.service import default_signer
    from core.store import audit_log, keyring_store, open_registry
    from core.store.keyring import load_trusted

    open_registry(settings).entries(limit=1)
    audit_log(settings).tail()
    load_trusted(keyring_store(settings), settings.operator_public_keys)
    default_signer(settings).sign(b"restore smoke")


def smoke(ctx: RestoreContext, settings: Settings, keep_old: bool) -> None:
    """Step 8: :func:`default_smoke` on the switched state; switch back and raise if it fails."""
    from core.store.postgres import snapshot

    try:
        default_smoke(settings)
    except CapError as exc:
        switch_back(ctx, settings.database)
        raise VerificationError(
            f"smoke check failed, previous state restored: {exc}", code="restore_smoke_failed"
        ) from exc
    before = _schemas(ctx)[1]
    if not keep_old:
        snapshot.drop_schema(settings.database, before)
    ctx.check("smoke", "registry, audit log and keyring read through fresh stores; signer signs")


def pg_plan(settings: Settings, store: BackupStore, opts: RestoreOptions) -> list[PlannedStep]:
    url = settings.database
    return [
        (StepName.FETCH, lambda c: fetch(c, url, store, opts.trusted_keys), discard_fetch),
        (StepName.VERIFY, lambda c: steps.verify_integrity(c, opts.key_wrapper), discard_extract),
        (StepName.STAGING, lambda c: prepare_staging(c, url), lambda c: discard_staging_schema(c, url)),
        (StepName.REGISTRY, lambda c: check_registry(c, url), None),
        (StepName.POLICY, lambda c: check_policy_store(c, url), None),
        (StepName.KEYS, lambda c: check_keyring(c, url), None),
        (StepName.SWAP, lambda c: switch_in(c, url), lambda c: switch_back(c, url)),
        (StepName.SMOKE, lambda c: smoke(c, settings, opts.keep_old), None),
    ]


def run_pg_restore(
    settings: Settings,
    store: BackupStore,
    backup_id: str,
    signer: Signer,
    *,
    now: datetime,
    options: RestoreOptions,
) -> RestoreReceipt:
    """Restore ``backup_id`` into the PostgreSQL database of ``settings`` (or only verify it); returns the
    signed receipt (its ``live_dir`` names the database, redacted). One restore per database at a time
    (``restore_in_progress``); staging schemas of interrupted restores are dropped first. On failure the
    completed steps are compensated in reverse and the ``CapError`` re-raised with
    ``details['restore_checks']``."""
    from core.store.postgres import snapshot

    url, opts = settings.database, options
    work = (settings.data_dir / "run" / "pg-restore").absolute()
    with contextlib.suppress(FileExistsError):
        work.parent.mkdir(parents=True)
    ctx = RestoreContext(
        backup_id=backup_id,
        live_dir=work,
        verify_only=opts.verify_only,
        allow_key_rollback=opts.allow_key_rollback,
        keyring_merge=opts.keyring_merge,
        operator_keys=opts.operator_keys,
        started_at=now,
        engine=Engine.POSTGRESQL,
    )
    cleanup = (lambda c: discard_staging_schema(c, url), discard_fetch)
    with snapshot.restore_lock(url):
        recovered = Recovery.ROLLED_BACK if snapshot.drop_staging_leftovers(url) else Recovery.NOTHING
        saga = run_saga(ctx, pg_plan(settings, store, opts), opts, cleanup)
    receipt = build_receipt(saga.ctx, saga.records, recovered, now).model_copy(
        update={"live_dir": url.redacted}
    )
    return sign_receipt(receipt, signer)
