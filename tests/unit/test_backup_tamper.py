"""Every corruption of an archive or manifest is detected; unsafe tar members are refused."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from core.backup.archive import extract_archive, iter_gunzip
from core.backup.crypto import MasterKeyWrapper
from core.backup.manifest import FileType, ManifestFile, manifest_bytes, parse_manifest, sign_manifest
from core.backup.restore import RestoreOptions, run_restore
from core.backup.storage import MANIFEST_SUFFIX
from core.digest import sha3_hex
from core.errors import CapError, ConfigError, IntegrityError
from tests.unit.test_backup_helpers import MASTER, NOW, SIGNER, backup, tree_digest


def _tiny_state(root):
    """The smallest state with a keyring (needed to check signatures): tiny archives, fast loops."""
    from tests.unit.test_backup_helpers import write_keyring

    root.mkdir()
    write_keyring(root, 1)
    (root / "config.yaml").write_text("subject: X\n")
    return root


def _verify(store, bid, live, **opts):
    return run_restore(store, bid, live, SIGNER, now=NOW, options=RestoreOptions(verify_only=True, **opts))


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
def test_every_single_byte_flip_in_archive_is_detected(tmp_path, encrypt):
    live = _tiny_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store", encrypt=encrypt, key_wrapper=MASTER)
    path = tmp_path / "store" / result.manifest.archive.name
    original = path.read_bytes()
    assert len(original) < 4000
    _verify(store, result.manifest.backup_id, live, key_wrapper=MASTER)
    for pos in range(len(original)):
        damaged = bytearray(original)
        damaged[pos] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(CapError):
            _verify(store, result.manifest.backup_id, live, key_wrapper=MASTER)
    path.write_bytes(original)
    _verify(store, result.manifest.backup_id, live, key_wrapper=MASTER)


def test_every_single_byte_flip_in_manifest_is_detected(tmp_path):
    live = _tiny_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    path = tmp_path / "store" / (result.manifest.backup_id + MANIFEST_SUFFIX)
    original = path.read_bytes()
    for pos in range(len(original)):
        damaged = bytearray(original)
        damaged[pos] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(CapError):
            _verify(store, result.manifest.backup_id, live)


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("keep", [0, 1, 10, 100, -17, -1])
def test_truncated_archive_is_detected(tmp_path, encrypt, keep):
    live = _tiny_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store", encrypt=encrypt, key_wrapper=MASTER)
    path = tmp_path / "store" / result.manifest.archive.name
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(IntegrityError):
        _verify(store, result.manifest.backup_id, live, key_wrapper=MASTER)


def test_wrong_master_key_is_refused(tmp_path):
    live = _tiny_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store", encrypt=True, key_wrapper=MASTER)
    with pytest.raises(ConfigError) as err:
        _verify(store, result.manifest.backup_id, live, key_wrapper=MasterKeyWrapper(b"\x43" * 32))
    assert err.value.code == "backup_wrong_key"


def test_missing_key_for_encrypted_backup_is_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CAP_BACKUP_KEY_FILE", raising=False)
    live = _tiny_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store", encrypt=True, key_wrapper=MASTER)
    with pytest.raises(ConfigError):
        _verify(store, result.manifest.backup_id, live)


def test_master_key_from_env_file(tmp_path, monkeypatch):
    key_file = tmp_path / "backup.key"
    key_file.write_text((b"\x42" * 32).hex())
    monkeypatch.setenv("CAP_BACKUP_KEY_FILE", str(key_file))
    live = _tiny_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store", encrypt=True)
    _verify(store, result.manifest.backup_id, live, key_wrapper=MASTER)


def test_inner_tar_corruption_detected_by_file_digests(tmp_path):
    """Even with a re-signed manifest (a thief of the signing key), a changed byte inside a file fails."""
    live = _tiny_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store", backup_id="b1")
    path = tmp_path / "store" / result.manifest.archive.name
    raw = bytearray(gzip.decompress(path.read_bytes()))
    at = raw.index(b"subject: X")
    raw[at + 9] = ord("Y")
    forged = gzip.compress(bytes(raw))
    path.write_bytes(forged)
    archive = result.manifest.archive.model_copy(
        update={"sha3_256": sha3_hex(forged), "size_bytes": len(forged)}
    )
    m = sign_manifest(result.manifest.model_copy(update={"archive": archive, "signature": None}), SIGNER)
    (tmp_path / "store" / ("b1" + MANIFEST_SUFFIX)).write_bytes(manifest_bytes(m))
    with pytest.raises(IntegrityError) as err:
        _verify(store, "b1", live)
    assert err.value.code == "backup_digest_mismatch"


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _reg(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name, kind, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _entry(name, data=b"x"):
    return ManifestFile(path=name, sha3_256=sha3_hex(data), size_bytes=len(data), type=FileType.CONFIGURATION)


@pytest.mark.parametrize(
    ("members", "expected", "code"),
    [
        pytest.param(
            [_reg("../evil")], [_entry("../evil")] if False else [], "backup_unsafe_member", id="dotdot"
        ),
        pytest.param([_reg("/etc/evil")], [], "backup_unsafe_member", id="absolute"),
        pytest.param([_reg("a/../../evil")], [], "backup_unsafe_member", id="nested-dotdot"),
        pytest.param(
            [_special("link", tarfile.SYMTYPE, "/etc/passwd")], [], "backup_unsafe_member", id="symlink"
        ),
        pytest.param(
            [_special("hard", tarfile.LNKTYPE, "config.yaml")], [], "backup_unsafe_member", id="hardlink"
        ),
        pytest.param([_special("dev", tarfile.CHRTYPE)], [], "backup_unsafe_member", id="device"),
        pytest.param([_special("fifo", tarfile.FIFOTYPE)], [], "backup_unsafe_member", id="fifo"),
        pytest.param([_special("dir", tarfile.DIRTYPE)], [], "backup_unsafe_member", id="directory"),
        pytest.param(
            [_reg("config.yaml"), _reg("extra")], [_entry("config.yaml")], "backup_extra_file", id="extra"
        ),
        pytest.param(
            [_reg("config.yaml"), _reg("config.yaml")],
            [_entry("config.yaml")],
            "backup_extra_file",
            id="duplicate",
        ),
        pytest.param(
            [_reg("config.yaml")],
            [_entry("config.yaml"), _entry("keyring.json")],
            "backup_missing_file",
            id="missing",
        ),
        pytest.param(
            [_reg("config.yaml", b"y")], [_entry("config.yaml")], "backup_digest_mismatch", id="digest"
        ),
    ],
)
def test_unsafe_or_inconsistent_tar_is_refused(tmp_path, members, expected, code):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(IntegrityError) as err:
        extract_archive(io.BytesIO(_tar(members)), dest, expected)
    assert err.value.code == code
    assert not (tmp_path / "evil").exists()


def test_gunzip_refuses_trailing_garbage_and_empty_input():
    with pytest.raises(IntegrityError):
        list(iter_gunzip([gzip.compress(b"abc") + b"\x00junk"]))
    with pytest.raises(IntegrityError):
        list(iter_gunzip([]))
    assert b"".join(iter_gunzip([gzip.compress(b"a") + gzip.compress(b"b")])) == b"ab"


def test_parse_manifest_refuses_non_canonical_bytes(tmp_path):
    live = _tiny_state(tmp_path / "var")
    _, result = backup(live, tmp_path / "store")
    data = manifest_bytes(result.manifest)
    assert parse_manifest(data) == result.manifest
    with pytest.raises(IntegrityError):
        parse_manifest(data.replace(b'","', b'", "', 1))


def test_failed_verification_leaves_live_untouched(tmp_path):
    live = _tiny_state(tmp_path / "var")
    store, result = backup(live, tmp_path / "store")
    path = tmp_path / "store" / result.manifest.archive.name
    path.write_bytes(path.read_bytes()[:-5])
    before = tree_digest(live)
    with pytest.raises(IntegrityError):
        run_restore(store, result.manifest.backup_id, live, SIGNER, now=NOW)
    assert tree_digest(live) == before
    assert not list(tmp_path.glob("var.*")) and not list(tmp_path.glob(".var.restore-*"))
