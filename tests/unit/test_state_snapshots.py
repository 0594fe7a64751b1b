"""Signed snapshots of the keyring, key metadata and lists (``state.sqlite``, replicated by Litestream).

Written once per change, never with private key material (PEM, the key directory's own keys in raw, hex
or base64); read back trusting nothing: signature, allowlisted paths and blob digests each refuse a
tampered snapshot (one named case each).
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from core import service
from core.backup.manifest import parse_keyring
from core.backup.pitr import unpack_state
from core.backup.restore import RestoreContext
from core.backup.state_snapshots import (
    check_snapshot_signature,
    newest_snapshot,
    signing_bytes,
    state_db,
    take_snapshot,
    unpack_snapshot,
)
from core.canonical import canonical_bytes
from core.errors import IntegrityError, InvalidInputError, VerificationError
from core.rotation import make_request
from core.settings import Settings

NOW = datetime(2026, 12, 5, 10, 42, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path / "var", subject="LEI-TEST-0001")
    settings.layout.root.mkdir()
    service.keygen(settings, now=NOW, owner="Test GmbH")
    lists = settings.layout.lists_dir
    lists.mkdir()
    (lists / "lists.json").write_text('{"sanctions": ["Kestrel Maritime Services"]}\n')
    return settings


def _keys(settings):
    return parse_keyring(settings.layout.keyring.read_bytes()).keys


def _seed(settings) -> bytes:
    pem = next(settings.layout.keys_dir.glob("*.pem")).read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _foreign_pem() -> str:
    """A private key that is not in the key directory: only the PEM scan can find it."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _rows(settings) -> int:
    conn = sqlite3.connect(state_db(settings.layout))
    try:
        return conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    finally:
        conn.close()


def test_one_snapshot_per_change_signed_and_unpacked_byte_for_byte(settings, tmp_path):
    signer = service.default_signer(settings)
    assert take_snapshot(settings.layout, signer, NOW) == 1
    assert take_snapshot(settings.layout, signer, NOW) is None  # nothing changed: no new row
    (settings.layout.lists_dir / "lists.json").write_text('{"sanctions": []}\n')
    assert take_snapshot(settings.layout, signer, NOW) == 2

    snap = newest_snapshot(state_db(settings.layout))
    assert snap is not None and snap.seq == 2 and snap.kid == signer.kid
    assert snap.manifest.keyring_version == parse_keyring(settings.layout.keyring.read_bytes()).version
    assert not any(p.endswith(".pem") for p in snap.manifest.files)
    assert check_snapshot_signature(snap, _keys(settings)) is None
    out = tmp_path / "out"
    written = unpack_snapshot(state_db(settings.layout), snap, out)
    assert "keyring.json" in written and "lists/lists.json" in written
    for rel in written:
        assert (out / rel).read_bytes() == (settings.layout.root / rel).read_bytes(), rel


@pytest.mark.parametrize(
    ("where", "encode"),
    [
        pytest.param("lists/extra.txt", lambda s, pem: _foreign_pem(), id="other_pem_in_lists"),
        pytest.param("keys/extra.json", lambda s, pem: f'{{"seed": "{s.hex()}"}}', id="hex_in_key_metadata"),
        pytest.param(
            "lists/notes.json",
            lambda s, pem: f'{{"blob": "{base64.b64encode(b"xy" + s).decode()}"}}',
            id="base64_in_lists",
        ),
    ],
)
def test_private_key_material_is_never_snapshotted(settings, where, encode):
    signer = service.default_signer(settings)
    take_snapshot(settings.layout, signer, NOW)
    pem = next(settings.layout.keys_dir.glob("*.pem")).read_bytes()
    (settings.layout.root / where).write_text(encode(_seed(settings), pem))
    with pytest.raises(InvalidInputError) as caught:
        take_snapshot(settings.layout, signer, NOW)
    assert caught.value.code == "state_private_key_material" and caught.value.details["file"] == where
    assert _rows(settings) == 1


def _tamper(settings, sql: str, *args) -> None:
    conn = sqlite3.connect(state_db(settings.layout))
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def _resign(settings, files: dict[str, str]) -> None:
    """A manifest naming ``files``, validly signed: only the allowlist can refuse it."""
    body = canonical_bytes(
        {"schema": "cap-state-snapshot.v1", "taken_at": "2026-12-05T10:42:00Z", "files": files}
    )
    sig = base64.b64encode(service.default_signer(settings).sign(signing_bytes(body))).decode()
    _tamper(settings, "UPDATE snapshots SET manifest = ?, sig = ?", body, sig)


def test_signature_refuses_an_edited_manifest_a_wrong_signature_and_an_unknown_kid(settings):
    take_snapshot(settings.layout, service.default_signer(settings), NOW)
    path = state_db(settings.layout)
    good = newest_snapshot(path)
    edited = good.manifest_bytes.replace(b'"keyring_version":1', b'"keyring_version":9')
    assert edited != good.manifest_bytes
    _tamper(settings, "UPDATE snapshots SET manifest = ?", edited)
    assert check_snapshot_signature(newest_snapshot(path), _keys(settings)) == "signature does not verify"
    _tamper(
        settings, "UPDATE snapshots SET manifest = ?, sig = ?", good.manifest_bytes, "AAAA" + good.sig[4:]
    )
    assert check_snapshot_signature(newest_snapshot(path), _keys(settings)) == "signature does not verify"
    _tamper(settings, "UPDATE snapshots SET sig = ?, kid = ?", good.sig, "ed25519-unknown")
    assert "unknown kid" in check_snapshot_signature(newest_snapshot(path), _keys(settings))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("keys/abc.pem", id="private_key_file"),
        pytest.param("lists/../keys/abc.pem", id="dot_dot_escape"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("registry.sqlite", id="a_database"),
    ],
)
def test_paths_outside_the_allowlist_are_refused_even_when_signed(settings, name):
    take_snapshot(settings.layout, service.default_signer(settings), NOW)
    _resign(settings, {name: "0x" + "00" * 32})
    with pytest.raises(IntegrityError, match="allowlist"):
        newest_snapshot(state_db(settings.layout))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("CAST(data || x'20' AS BLOB)", id="byte_appended"),
        pytest.param("CAST(data AS TEXT)", id="stored_as_text"),
    ],
)
def test_a_blob_differing_from_its_digest_is_refused_on_unpack(settings, tmp_path, change):
    take_snapshot(settings.layout, service.default_signer(settings), NOW)
    path = state_db(settings.layout)
    _tamper(settings, f"UPDATE blobs SET data = {change}")
    snap = newest_snapshot(path)
    assert check_snapshot_signature(snap, _keys(settings)) is None  # the manifest itself is intact
    with pytest.raises(IntegrityError, match="digest"):
        unpack_snapshot(path, snap, tmp_path / "out")


def _restore_ctx(live: Path, state: Path) -> RestoreContext:
    ctx = RestoreContext(backup_id="pitr-test", live_dir=live)
    ctx.extract_dir.mkdir(parents=True)
    shutil.copy2(state, ctx.extract_dir / "state.sqlite")
    return ctx


def test_rolling_forward_past_a_rotation_the_live_keyring_lacks(settings, tmp_path):
    """Live holds keyring v1 (e.g. restored to a point before a rotation); the newest snapshot is signed by
    the key rotated in since: checked against its own keyring, with a warning, and unpacked."""
    live = tmp_path / "live"
    shutil.copytree(settings.layout.root, live)
    for phase in (0, 1, 2):
        request = make_request(phase, force=True, actor="test")
        service.rotate_signing_key(settings, request, NOW + timedelta(minutes=phase), confirm=lambda _: True)
    signer = service.default_signer(settings)
    assert signer.kid not in {k.kid for k in parse_keyring((live / "keyring.json").read_bytes()).keys}
    take_snapshot(settings.layout, signer, NOW + timedelta(minutes=5))
    ctx = _restore_ctx(live, state_db(settings.layout))
    unpack_state(ctx)
    checks = {c.id: c for c in ctx.checks}
    assert (
        checks["state_signature_trust"].status == "warn"
        and signer.kid in checks["state_signature_trust"].message
    )
    assert checks["state_snapshot"].status == "ok"
    assert (ctx.extract_dir / "keyring.json").read_bytes() == settings.layout.keyring.read_bytes()

    shutil.rmtree(ctx.work_dir)
    _tamper(settings, "UPDATE snapshots SET kid = ?", "0" * 32)  # a kid in neither keyring
    with pytest.raises(VerificationError) as caught:
        unpack_state(_restore_ctx(live, state_db(settings.layout)))
    assert caught.value.code == "state_signature_invalid"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not_json"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested_past_the_bound"),
        pytest.param(b'{"files": 3}', id="wrong_shape"),
    ],
)
def test_an_unreadable_snapshot_manifest_is_an_integrity_error_not_a_crash(settings, body):
    """state.sqlite comes back from an untrusted replica: its manifest is parsed by the shared bounded
    reader before anything trusts it."""
    take_snapshot(settings.layout, service.default_signer(settings), NOW)
    _tamper(settings, "UPDATE snapshots SET manifest = ?", body)
    with pytest.raises(IntegrityError) as exc:
        newest_snapshot(state_db(settings.layout))
    assert exc.value.message == "state snapshot manifest unreadable"
    assert exc.value.details["file"] == "state.sqlite"
