"""Benchmark backup and restore of registry-like state against the shell baseline. Prints figures only.

    .venv/bin/python bench/bench_backup.py --size-mb 1024 [--s3] [--encrypt]

Builds ~SIZE MB of SQLite registry rows (hex digests, base64 signatures, JSON cores) plus a policy
store, keyring and key metadata; times ``create_backup`` and ``run_restore`` to ``file://``; runs the
original's approach in the same run (``openssl dgst -sha3-256`` per file + ``tar czf`` for backup,
``tar xzf`` + ``openssl dgst -sha3-256`` for restore) and prints the ratios and peak RSS. ``run(...)``
returns the figures for ``python -m bench`` (SPEC §7: backup ≥ 2× faster than the original's backup.sh,
19.3 s here; restore ≤ 2× the shell ``tar xzf`` + SHA3 pass, 7.9 s here — both also as same-run ratios).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import Figure, at_least, at_most, info
from core.backup import create_backup
from core.backup.crypto import MasterKeyWrapper
from core.backup.restore import RestoreOptions, run_restore
from core.backup.storage import FileStore
from core.layout import DataLayout
from core.signing import Ed25519Signer

SIGNER = Ed25519Signer.from_seed(b"\x07" * 32)
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def build_state(root: Path, size_mb: int) -> None:
    """Registry-like SQLite state of about ``size_mb`` MB."""
    root.mkdir(parents=True)
    (root / "keys").mkdir()
    conn = sqlite3.connect(root / "registry.sqlite")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE registry_entries(id INTEGER PRIMARY KEY, subject TEXT, manifest_hash TEXT, "
        "proof_hash TEXT, core TEXT, signature TEXT, kid TEXT, created_at TEXT)"
    )
    target, batch, i = size_mb << 20, [], 0
    seed = os.urandom(32)
    while (root / "registry.sqlite").stat().st_size + (root / "registry.sqlite-wal").stat().st_size < target:
        for _ in range(20000):
            h = hashlib.blake2b(seed + i.to_bytes(8, "big"), digest_size=64).digest()
            core = json.dumps(
                {
                    "policy_hash": "0x" + h[:32].hex(),
                    "ir_hash": "sha3-256:" + h[32:].hex(),
                    "result": "OK",
                    "rules": i % 17,
                }
            )
            batch.append(
                (
                    f"LEI{i % 5000:016d}",
                    "0x" + h[:32].hex(),
                    "0x" + h[32:].hex(),
                    core,
                    base64.b64encode(h).decode(),
                    SIGNER.kid,
                    f"2026-04-{1 + i % 28:02d}T12:00:00Z",
                )
            )
            i += 1
        conn.executemany("INSERT INTO registry_entries VALUES (NULL,?,?,?,?,?,?,?)", batch)
        conn.commit()
        batch.clear()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    pol = sqlite3.connect(root / "policies.sqlite")
    pol.execute("CREATE TABLE policies(hash TEXT PRIMARY KEY, body TEXT)")
    pol.executemany(
        "INSERT INTO policies VALUES (?,?)", [(f"sha3-256:{n:064x}", "{}" * 200) for n in range(500)]
    )
    pol.commit()
    pol.close()
    ring = {
        "version": 1,
        "keys": [{"kid": SIGNER.kid, "public_key": SIGNER.public_key_b64, "status": "active"}],
    }
    (root / "keyring.json").write_text(json.dumps(ring))
    (root / "keys" / f"{SIGNER.kid}.json").write_text(
        json.dumps({"kid": SIGNER.kid, "public_key": SIGNER.public_key_b64})
    )
    (root / "keys" / f"{SIGNER.kid}.pem").write_bytes(SIGNER.to_pem())
    (root / "config.yaml").write_text("subject: LEI\n")
    (root / "audit.jsonl").write_text(
        "".join(json.dumps({"seq": n, "event": "proof_built"}) + "\n" for n in range(10000))
    )


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _sh(cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, shell=True, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def _drop_wal(root: Path) -> None:
    for p in root.glob("*-wal"):
        p.unlink()
    for p in root.glob("*-shm"):
        p.unlink()


def shell_backup(live: Path, out: Path) -> float:
    files = " ".join(sorted(str(p.relative_to(live)) for p in live.rglob("*") if p.is_file()))
    t, _ = _timed(lambda: (_sh(f"openssl dgst -sha3-256 {files}", live), _sh(f"tar czf {out} .", live)))
    return t


def shell_restore(archive: Path, dest: Path) -> float:
    dest.mkdir()

    def run():
        _sh(f"tar xzf {archive}", dest)
        _sh("find . -type f -print0 | xargs -0 openssl dgst -sha3-256", dest)

    t, _ = _timed(run)
    return t


def _back_up(live: Path, store, wrapper: MasterKeyWrapper, encrypt: bool, work_dir: Path | None = None):
    return create_backup(
        DataLayout(live),
        store,
        SIGNER,
        now=NOW,
        encrypt=encrypt,
        key_wrapper=wrapper,
        created_by="bench@host",
        work_dir=work_dir,
    )


def measure(size_mb: int, *, encrypt: bool = False, s3: bool = False, base: Path | None = None) -> dict:
    """Build ~``size_mb`` MB of state, time backup, restore (full and quick check) and the shell baseline."""
    work = Path(tempfile.mkdtemp(prefix="cap-bench-", dir=base))
    out: dict = {"encrypt": encrypt}
    try:
        live = work / "var"
        out["build_s"], _ = _timed(
            lambda: subprocess.run(
                [sys.executable, __file__, "--build-only", str(live), str(size_mb)], check=True
            )
        )
        _drop_wal(live)
        out["mb"] = sum(p.stat().st_size for p in live.rglob("*") if p.is_file()) / 1e6
        store = FileStore(work / "store")
        wrapper = MasterKeyWrapper(b"\x11" * 32)
        out["backup_s"], res = _timed(lambda: _back_up(live, store, wrapper, encrypt, work))
        out["backup_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["archive_mb"] = res.manifest.archive.size_bytes / 1e6
        target = work / "restored"
        for quick in (False, True):
            shutil.rmtree(target, ignore_errors=True)
            opts = RestoreOptions(trusted_keys=None, key_wrapper=wrapper, quick_check=quick)
            shutil.copytree(live, target, symlinks=True)
            t_r, rec = _timed(
                lambda o=opts: run_restore(store, res.manifest.backup_id, target, SIGNER, now=NOW, options=o)
            )
            label = "restore_quick" if quick else "restore"
            out[f"{label}_s"] = t_r
            out[f"{label}_steps"] = " ".join(f"{s.name.value}={s.duration_ms}ms" for s in rec.steps)
            out[f"{label}_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for old in work.glob("restored.old-*"):
            shutil.rmtree(old)
        out["shell_backup_s"] = shell_backup(live, work / "shell.tar.gz")
        out["shell_restore_s"] = shell_restore(work / "shell.tar.gz", work / "shell-restore")
        if s3:
            out.update(bench_s3(live, work, wrapper, encrypt))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def run(size_mb: int = 1024, *, s3: bool = False, encrypt: bool = False) -> list[Figure]:
    """``backup_1gb_s`` / ``restore_1gb_s`` against the seed's shell figures and the same-run shell ratio."""
    m = measure(size_mb, encrypt=encrypt, s3=s3)
    note = (
        f"{m['mb']:.0f} MB of state"
        + ("" if size_mb == 1024 else " (not 1 GB)")
        + (", encrypted" if encrypt else "")
    )
    figures = [
        at_most("backup_1gb_s", m["backup_s"], "s", 19.3 / 2, note + "; target = backup.sh 19.3 s / 2"),
        info("shell_backup_s", m["shell_backup_s"], "s", "openssl dgst -sha3-256 + tar czf, same run"),
        at_least(
            "backup_vs_shell_x", m["shell_backup_s"] / m["backup_s"], "x", 2, "shell time / ours, same run"
        ),
        at_most("restore_1gb_s", m["restore_s"], "s", 7.9 * 2, note + "; full integrity_check; 2 x 7.9 s"),
        info("restore_quick_1gb_s", m["restore_quick_s"], "s", "PRAGMA quick_check instead"),
        info("shell_restore_s", m["shell_restore_s"], "s", "tar xzf + openssl dgst -sha3-256, same run"),
        at_most(
            "restore_vs_shell_x", m["restore_s"] / m["shell_restore_s"], "x", 2, "ours / shell, same run"
        ),
        info("backup_peak_rss_mb", m["restore_rss_mb"], "MB", "max RSS of the bench process"),
    ]
    if s3:
        figures += [
            info("backup_s3_1gb_s", m["s3_backup_s"], "s", "moto HTTP server on loopback"),
            info("restore_s3_1gb_s", m["s3_restore_s"], "s", "download + all 8 steps, moto HTTP server"),
        ]
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--encrypt", action="store_true")
    ap.add_argument("--s3", action="store_true", help="also back up/restore through moto's HTTP server")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    m = measure(args.size_mb, encrypt=args.encrypt, s3=args.s3, base=args.dir)
    mb = m["mb"]
    print(f"state: {mb:.0f} MB built in {m['build_s']:.1f} s ({os.cpu_count()} CPUs)")
    t_b = m["backup_s"]
    print(
        f"backup : {t_b:6.2f} s  {mb / t_b:7.1f} MB/s  archive {m['archive_mb']:.0f} MB  "
        f"peak RSS {m['backup_rss_mb']:.0f} MB"
    )
    for label, name in (("restore", "integrity_check"), ("restore_quick", "quick_check")):
        t_r = m[f"{label}_s"]
        print(
            f"restore: {t_r:6.2f} s  {mb / t_r:7.1f} MB/s  ({name})  peak RSS {m[f'{label}_rss_mb']:.0f} MB"
        )
        print(f"         {m[f'{label}_steps']}")
    t_sb, t_sr = m["shell_backup_s"], m["shell_restore_s"]
    print(f"shell backup  (openssl sha3 + tar czf): {t_sb:6.2f} s -> ours is {t_sb / t_b:.2f}x faster")
    print(
        f"shell restore (tar xzf + openssl sha3): {t_sr:6.2f} s -> ours takes "
        f"{m['restore_quick_s'] / t_sr:.2f}x of it with quick_check, "
        f"{m['restore_s'] / t_sr:.2f}x with integrity_check (target <= 2x)"
    )
    if args.s3:
        print(f"s3 backup : {m['s3_backup_s']:6.2f} s  {mb / m['s3_backup_s']:7.1f} MB/s (moto HTTP server)")
        print(f"s3 restore: {m['s3_restore_s']:6.2f} s  {mb / m['s3_restore_s']:7.1f} MB/s (all 8 steps)")


def bench_s3(live: Path, work: Path, wrapper: MasterKeyWrapper, encrypt: bool) -> dict[str, float]:
    """Backup to and full restore (download + all 8 steps, into a copy of the state) from moto over HTTP."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from core.backup.storage import S3Store

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
        client.create_bucket(Bucket="bench")
        store = S3Store(client, "bench", "cap")
        t_b, res = _timed(lambda: _back_up(live, store, wrapper, encrypt))
        target = work / "restored-s3"
        shutil.copytree(live, target, symlinks=True)
        opts = RestoreOptions(trusted_keys=None, key_wrapper=wrapper)
        t_r, _ = _timed(
            lambda: run_restore(store, res.manifest.backup_id, target, SIGNER, now=NOW, options=opts)
        )
        return {"s3_backup_s": t_b, "s3_restore_s": t_r}
    finally:
        server.stop()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--build-only":
        build_state(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
