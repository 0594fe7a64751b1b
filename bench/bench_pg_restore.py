"""RTO of the PostgreSQL state (issue 19, ADR 0015): ``cap backup`` and the eight restore steps of ~1 GB.

    .venv/bin/python bench/bench_pg_restore.py [--size-mb 1024] [--no-fsync]

A throwaway cluster on a loopback port (``tests/pgserver.py``) with production durability (``fsync``,
``synchronous_commit`` and ``full_page_writes`` on, :func:`bench.bench_pg.durable`). The state is what a
busy registry holds: real signed registry entries with ~10 KB ``proof_json`` each (hex-heavy, like proofs),
loaded with ``COPY`` until the tables reach ``--size-mb``, plus a keyring, a policy and an audit chain made
by the service functions. Then, timed: :func:`core.backup.service.backup_now` to a ``file://`` store, and
:func:`core.backup.service.restore_now` of that backup into the same database after one more entry was
added (all 8 steps: fetch + signature, integrity, staging schema load, every entry verified, policies,
keyring chain, the one-transaction switch, smoke). Per-step times come from the signed receipt. The SQLite
figure (``restore_1gb_s``, docs/performance.md) is printed beside it for comparison, not re-measured.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import Figure, format_table, info  # noqa: E402
from core import service  # noqa: E402
from core.backup import service as backups  # noqa: E402
from core.registry import RegistryEntry, sign_entry, unsigned_entry  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.store import audit_log, open_registry  # noqa: E402
from core.store.postgres.db import close_all, database  # noqa: E402

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
PROOF_KB = 10
SQLITE_RESTORE_1GB_S = 9.4  # docs/performance.md, restore_1gb_s (2026-12-06)
POLICY = ROOT / "examples" / "policy.lksg.v1.yml"
COLUMNS = tuple(RegistryEntry.model_fields)


def _proof(n: int) -> bytes:
    blob = secrets.token_hex(PROOF_KB * 512)
    return json.dumps({"n": n, "scheme": "bench", "proof": blob}).encode()


def fill(settings: Settings, size_mb: int) -> int:
    """Signed entries until ``registry_entries`` is ``size_mb`` MB on disk; returns how many."""
    signer = service.default_signer(settings)
    db = database(settings.database)
    open_registry(settings)
    n, target = 0, size_mb << 20
    while True:
        with db.transaction() as conn:
            size = conn.execute("SELECT pg_total_relation_size('registry_entries')").fetchone()[0]
            if size >= target:
                conn.execute("SELECT setval('registry_entry_seq', %s)", (n,))
                return n
            with conn.cursor().copy(f"COPY registry_entries ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for _ in range(5000):
                    n += 1
                    unsigned = unsigned_entry(
                        _proof(n),
                        b"{}",
                        facts={"subject": f"LEI{n % 5000:016d}", "policy_hash": "p", "ir_hash": "i"},
                        roots={"company_root": "c", "supplier_root": "s", "ubo_root": "u"},
                        result="OK",
                        accepted=True,
                        now=NOW + timedelta(seconds=n),
                        timestamp_file=None,
                    )
                    entry = sign_entry(f"proof_{n:03d}", unsigned, signer)
                    copy.write_row([getattr(entry, c) for c in COLUMNS])


def _state_mb(settings: Settings) -> float:
    with database(settings.database).transaction() as conn:
        return float(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]) / 1e6


def measure(size_mb: int, *, fsync: bool = True) -> dict[str, object]:
    from bench.bench_pg import durable
    from tests.pgserver import postgres_server

    with postgres_server() as server, tempfile.TemporaryDirectory(prefix="cap-pg-rto-") as tmp:
        if fsync:
            durable(server)
        url = server.create_database("rto")
        settings = Settings(data_dir=Path(tmp) / "node", database_url=url)
        try:
            service.keygen(settings, now=NOW)
            service.store_policy(settings, service.load_policy(POLICY), NOW)
            log = audit_log(settings)
            for i in range(1000):
                log.append("bench", {"n": i}, NOW)
            start = time.perf_counter()
            entries = fill(settings, size_mb)
            out: dict[str, object] = {"fill_s": time.perf_counter() - start, "entries": entries}
            out["state_mb"] = _state_mb(settings)
            start = time.perf_counter()
            result = backups.backup_now(settings, now=NOW)
            out["backup_s"] = time.perf_counter() - start
            out["archive_mb"] = result.manifest.archive.size_bytes / 1e6
            open_registry(settings).register(
                b'{"after": 1}', b"{}", subject="LEI", policy_hash="p", ir_hash="i", company_root="c",
                supplier_root="s", ubo_root="u", result="OK", accepted=True,
                signer=service.default_signer(settings), now=NOW,
            )  # fmt: skip
            start = time.perf_counter()
            receipt = backups.restore_now(settings, result.manifest.backup_id, now=NOW, keyring_merge=False)
            out["restore_s"] = time.perf_counter() - start
            out["steps_ms"] = {s.name.value: s.duration_ms for s in receipt.steps}
            out["after_restore"] = len(open_registry(settings).entries(limit=None)) == entries
        finally:
            close_all()
            server.drop_database(url)
    return out


def run(size_mb: int = 1024, *, fsync: bool = True) -> list[Figure]:
    m = measure(size_mb, fsync=fsync)
    scale = "" if size_mb == 1024 else f" (measured at {size_mb} MB, not 1 GB)"
    state = (
        f"{m['state_mb']:.0f} MB database, {m['entries']} signed entries, archive {m['archive_mb']:.0f} MB"
    )
    steps = ", ".join(f"{k} {v / 1000:.1f} s" for k, v in m["steps_ms"].items())  # type: ignore[attr-defined]
    return [
        info("backup_pg_1gb_s", float(m["backup_s"]), "s", state + scale),  # type: ignore[arg-type]
        info("restore_pg_1gb_s", float(m["restore_s"]), "s", "all 8 steps: " + steps + scale),  # type: ignore[arg-type]
        info(
            "restore_1gb_s_sqlite", SQLITE_RESTORE_1GB_S, "s", "SQLite archive restore, docs/performance.md"
        ),
        info(
            "restore_pg_state_ok", 1.0 if m["after_restore"] else 0.0, "", "entry added after the backup gone"
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--no-fsync", action="store_true", help="keep the test cluster's fsync=off (diagnosis)")
    args = ap.parse_args()
    print(format_table(run(args.size_mb, fsync=not args.no_fsync)))
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
