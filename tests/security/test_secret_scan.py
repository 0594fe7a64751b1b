"""Attack: the real signing key smuggled into a backup in an encoding the header patterns miss. The scan
compares every file's bytes (and decoded hex/base64 runs) with the private keys in ``keys/`` and refuses,
naming the file. Each case failed before the fingerprint scan (the backup was written)."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from core.errors import InvalidInputError
from tests.unit.test_backup_helpers import SIGNER, backup, make_state

PEM = SIGNER.to_pem()
BODY_LINES = PEM.decode().strip().splitlines()[1:-1]
DER = base64.b64decode("".join(BODY_LINES))
SEED = bytes(range(32))  # SIGNER's seed


def _sqlite_blob(live):
    conn = sqlite3.connect(live / "registry.sqlite")
    conn.execute("CREATE TABLE attachments(id INTEGER PRIMARY KEY, payload BLOB)")
    conn.execute("INSERT INTO attachments(payload) VALUES (?)", (b"\x00" * 7 + SEED + b"\x00" * 9,))
    conn.commit()
    conn.close()
    return "registry.sqlite"


def _write(rel, data):
    def plant(live):
        (live / rel).write_bytes(data)
        return rel

    return plant


CASES = [
    pytest.param(_write("lists/export.der", DER), id="der"),
    pytest.param(_write("lists/notes.txt", b"key material: " + DER.hex().encode() + b"\n"), id="der_as_hex"),
    pytest.param(_write("lists/seed.txt", SEED.hex().upper().encode()), id="seed_as_hex"),
    pytest.param(
        _write("config.yaml", ("blob: |\n" + "".join(f"  {line}\n" for line in BODY_LINES)).encode()),
        id="pem_body",
    ),
    pytest.param(
        _write(
            "audit.jsonl", json.dumps({"seq": 2, "blob": base64.b64encode(SEED).decode()}).encode() + b"\n"
        ),
        id="seed_base64_neutral_field",
    ),
    pytest.param(
        _write("lists/x.json", json.dumps({"v": base64.urlsafe_b64encode(b"pad" + DER).decode()}).encode()),
        id="der_urlsafe_base64",
    ),
    pytest.param(
        _write("lists/k.json", json.dumps({"note": "".join(BODY_LINES)}).encode()), id="pem_body_one_line"
    ),
    pytest.param(_sqlite_blob, id="seed_in_sqlite_blob"),
]


@pytest.mark.parametrize("plant", CASES)
def test_signing_key_in_any_encoding_refuses_the_backup_naming_the_file(tmp_path, plant):
    live = make_state(tmp_path / "var")
    rel = plant(live)
    with pytest.raises(InvalidInputError) as caught:
        backup(live, tmp_path / "store")
    assert caught.value.code == "backup_private_key_material"
    assert caught.value.details["file"] == rel
    assert not list((tmp_path / "store").glob("*")), "nothing may be stored"


def test_public_key_and_unrelated_base64_pass(tmp_path):
    live = make_state(tmp_path / "var")
    (live / "lists" / "pub.txt").write_text(
        SIGNER.public_key_b64 + "\n" + base64.b64encode(bytes(64)).decode()
    )
    _, result = backup(live, tmp_path / "store")
    assert result.scan.private == ()


def test_a_key_is_named_before_personal_data_and_nothing_is_streamed(tmp_path):
    """Personal data refuses a backup before the archive is written; the key search, which otherwise runs
    beside the archive stream, then runs first, so the key (the graver finding) is what the error names."""
    live = make_state(tmp_path / "var")
    (live / "config.yaml").write_text("contact: jane.doe@example.com\n")
    with pytest.raises(InvalidInputError) as caught:
        backup(live, tmp_path / "store")
    assert caught.value.code == "backup_pii_detected"  # the personal data alone refuses
    (live / "lists" / "export.der").write_bytes(DER)
    with pytest.raises(InvalidInputError) as caught:
        backup(live, tmp_path / "store")
    assert caught.value.code == "backup_private_key_material"
    assert caught.value.details["file"] == "lists/export.der"
    assert not list((tmp_path / "store").glob("*"))
