"""Attack: hostile backups. The stored archive's digest (from the signed manifest) is checked over its raw
bytes before anything is decrypted or decompressed; decompression stops at the declared size plus a small
margin; manifests signed by a key that was not active when they were made are refused."""

from __future__ import annotations

import functools
import hashlib
import json
import tarfile
import tracemalloc
import zlib

import pytest

from core.backup.manifest import ArchiveInfo, manifest_bytes, sign_manifest
from core.backup.restore import RestoreOptions, run_restore
from core.backup.storage import MANIFEST_SUFFIX
from core.errors import CapError, IntegrityError, VerificationError
from tests.unit.test_backup_helpers import MASTER, NOW, SIGNER, backup, write_keyring

BOMB = 128 * 1024 * 1024
MEMORY_BOUND = 32 * 1024 * 1024


def _state(root):
    root.mkdir()
    write_keyring(root, 1)
    (root / "config.yaml").write_text("subject: X\n")
    return root


@functools.cache
def _bomb() -> bytes:
    """A gzip'd tar whose first member is a PAX header claiming 128 MiB of zeros (~130 KB stored):
    tarfile reads a PAX header whole, so decompressing it unbounded costs its full size in memory."""
    head = tarfile.TarInfo("././@PaxHeader")
    head.type, head.size = tarfile.XHDTYPE, BOMB
    comp, out = zlib.compressobj(6, wbits=31), [head.tobuf(tarfile.USTAR_FORMAT)]
    out = [comp.compress(out[0])]
    zeros = bytes(1024 * 1024)
    out += [comp.compress(zeros) for _ in range(BOMB // len(zeros))]
    return b"".join([*out, comp.flush()])


def _verify(store, bid, live, **opts):
    return run_restore(store, bid, live, SIGNER, now=NOW, options=RestoreOptions(verify_only=True, **opts))


def _peak(run) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        run()
    except CapError as exc:
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None, 0


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
def test_swapped_archive_under_an_untouched_manifest_is_refused_before_decompressing(tmp_path, encrypt):
    """Before: the digest was compared only after the whole stream was decompressed (4.4 GB, ~90 s)."""
    live = _state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store", encrypt=encrypt, key_wrapper=MASTER)
    (tmp_path / "store" / result.manifest.archive.name).write_bytes(_bomb())
    error, peak = _peak(lambda: _verify(store, result.manifest.backup_id, live, key_wrapper=MASTER))
    assert isinstance(error, IntegrityError)
    assert error.code == "backup_digest_mismatch"
    assert peak < MEMORY_BOUND, f"refusing the swapped archive allocated {peak} bytes"


def test_bomb_under_a_validly_signed_manifest_stops_at_the_declared_size(tmp_path):
    """Even a manifest signed over the bomb's digest (a compromised writer) cannot make restore inflate
    more than the files it declares plus tar framing and a small margin."""
    live = _state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    bomb = _bomb()
    (tmp_path / "store" / result.manifest.archive.name).write_bytes(bomb)
    archive = ArchiveInfo(
        name=result.manifest.archive.name,
        sha3_256="0x" + hashlib.sha3_256(bomb).hexdigest(),
        size_bytes=len(bomb),
    )
    manifest = sign_manifest(result.manifest.model_copy(update={"archive": archive}), SIGNER)
    (tmp_path / "store" / (manifest.backup_id + MANIFEST_SUFFIX)).write_bytes(manifest_bytes(manifest))
    error, peak = _peak(lambda: _verify(store, manifest.backup_id, live))
    assert isinstance(error, IntegrityError)
    assert error.code == "backup_too_large"
    assert error.details["limit"] < 2 * 1024 * 1024
    assert peak < MEMORY_BOUND, f"the bomb allocated {peak} bytes before it was stopped"


def _keyring(root, **entry):
    ring = {
        "schema": "cap-keyring.v1",
        "version": 1,
        "mode": "single-key",
        "default_signing_kid": SIGNER.kid,
        "keys": [{"kid": SIGNER.kid, "public_key": SIGNER.public_key_b64, **entry}],
    }
    (root / "keyring.json").write_text(json.dumps(ring))


@pytest.mark.parametrize(
    ("entry", "refused"),
    [
        pytest.param({"status": "pending"}, True, id="pending"),
        pytest.param({"status": "revoked"}, True, id="revoked"),
        pytest.param({"status": "retired"}, True, id="retired_no_date"),
        pytest.param({"status": "retired", "retired_at": "2026-04-01T00:00:00Z"}, True, id="retired_before"),
        pytest.param({"status": "retired", "retired_at": "2026-06-01T00:00:00Z"}, False, id="retired_after"),
        pytest.param({"status": "active", "valid_from": "2026-06-01T00:00:00Z"}, True, id="not_yet_valid"),
        pytest.param({"status": "active", "valid_to": "2026-04-01T00:00:00Z"}, True, id="expired"),
        pytest.param({"status": "active", "valid_from": "2026-01-01T00:00:00Z"}, False, id="active"),
    ],
)
def test_manifest_signer_must_have_been_active_when_it_signed(tmp_path, entry, refused):
    live = _state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")  # signed at NOW = 2026-05-01T12:00:00Z
    _keyring(live, **entry)
    if not refused:
        _verify(store, result.manifest.backup_id, live)
        return
    with pytest.raises(VerificationError) as caught:
        _verify(store, result.manifest.backup_id, live)
    assert caught.value.code == "backup_signature_invalid"
    assert caught.value.details["kid"] == SIGNER.kid
