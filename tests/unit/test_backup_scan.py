"""Private key material never enters a backup; PII refuses by default and warns on request."""

from __future__ import annotations

import base64
import json
import sqlite3
import sys

import pytest

from core.backup.scan import FindingKind, PiiMode, scan_document
from core.errors import InvalidInputError
from tests.unit.test_backup_helpers import SIGNER, backup, make_state

SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
SEED_B64 = base64.b64encode(bytes.fromhex(SEED_HEX)).decode()
PEM = SIGNER.to_pem().decode()


def _plant_json(path, **fields):
    doc = json.loads(path.read_text())
    doc.update(fields)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(
            lambda live: (live / "config.yaml").write_text(f"signing:\n  key: |\n{PEM}"), id="pem-in-config"
        ),
        pytest.param(
            lambda live: _plant_json(live / "keys" / f"{SIGNER.kid}.json", private_key=SEED_HEX),
            id="hex-seed-in-key-metadata",
        ),
        pytest.param(
            lambda live: _plant_json(live / "keys" / f"{SIGNER.kid}.json", seed=SEED_B64),
            id="b64-seed-in-key-metadata",
        ),
        pytest.param(
            lambda live: _plant_json(live / "keyring.json", secret=SEED_HEX), id="secret-in-keyring"
        ),
        pytest.param(
            lambda live: _plant_json(
                live / "keyring.json",
                keys=[{"kid": SIGNER.kid, "d": SEED_B64, "public_key": SIGNER.public_key_b64}],
            ),
            id="jwk-d-in-keyring",
        ),
        pytest.param(
            lambda live: (live / "keys" / "raw.json").write_bytes(bytes(range(32))), id="raw-32-byte-file"
        ),
        pytest.param(
            lambda live: (live / "audit.jsonl").write_text(json.dumps({"note": PEM}) + "\n"),
            id="pem-in-audit-log",
        ),
        pytest.param(lambda live: (live / "lists" / "k.csv").write_text(PEM), id="pem-in-lists"),
    ],
)
def test_private_key_material_refuses_backup(tmp_path, plant):
    live = make_state(tmp_path / "var")
    plant(live)
    with pytest.raises(InvalidInputError) as err:
        backup(live, tmp_path / "store", pii="warn")
    assert err.value.code == "backup_private_key_material"
    assert SEED_HEX not in json.dumps(err.value.to_dict()) and "BEGIN" not in json.dumps(err.value.to_dict())
    assert not list((tmp_path / "store").glob("*")) if (tmp_path / "store").exists() else True


def test_pem_inside_sqlite_blob_refused(tmp_path):
    live = make_state(tmp_path / "var")
    conn = sqlite3.connect(live / "registry.sqlite")
    conn.execute("CREATE TABLE notes(body BLOB)")
    conn.execute("INSERT INTO notes VALUES (?)", (b"x" * 5000 + SIGNER.to_pem(),))
    conn.commit()
    conn.close()
    with pytest.raises(InvalidInputError) as err:
        backup(live, tmp_path / "store")
    assert err.value.code == "backup_private_key_material"
    assert not [p for p in (tmp_path / "store").glob("*")]


def test_private_key_files_are_only_read_for_fingerprints_never_archived(tmp_path):
    """An audit hook records every file opened during the backup: ``.pem`` files are opened read-only (the
    scan fingerprints them, core/backup/fingerprints.py) and none of their bytes reach the store."""
    live = make_state(tmp_path / "var")
    opened: list[tuple[str, str]] = []
    active = [True]

    def hook(event, args):
        if active[0] and event == "open" and isinstance(args[0], str):
            opened.append((args[0], str(args[1] or "r")))

    sys.addaudithook(hook)
    try:
        _, result = backup(live, tmp_path / "store")
    finally:
        active[0] = False
    assert any(p.endswith("keyring.json") for p, _ in opened)
    pem_opens = [(p, mode) for p, mode in opened if p.endswith(".pem")]
    assert pem_opens, "the scan fingerprints the key directory's private keys"
    assert all(mode in ("r", "rb") for _, mode in pem_opens)
    assert not [f for f in result.manifest.files if f.path.endswith(".pem")]
    stored = b"".join(p.read_bytes() for p in (tmp_path / "store").glob("*"))
    assert SIGNER.to_pem() not in stored


@pytest.mark.parametrize(
    ("plant", "kind", "field"),
    [
        pytest.param(
            lambda live: (live / "config.yaml").write_text("contact: jane.doe@example.com\n"),
            FindingKind.EMAIL,
            "$.contact",
            id="email",
        ),
        pytest.param(
            lambda live: (live / "config.yaml").write_text("support: '+49 30 1234 5678'\n"),
            FindingKind.PHONE,
            "$.support",
            id="phone",
        ),
        pytest.param(
            lambda live: (live / "config.yaml").write_text("bank: DE89370400440532013000\n"),
            FindingKind.IBAN,
            "$.bank",
            id="iban",
        ),
        pytest.param(
            lambda live: (live / "audit.jsonl").write_text('{"ubo":{"birthdate":"1970-01-01"}}\n'),
            FindingKind.BIRTH_DATE,
            "line 1: $.ubo.birthdate",
            id="birthdate",
        ),
        pytest.param(
            lambda live: _plant_json(live / "keys" / f"{SIGNER.kid}.json", first_name="Jane"),
            FindingKind.PERSON_NAME,
            "$.first_name",
            id="name-field",
        ),
    ],
)
def test_pii_refused_by_default_and_warn_passes(tmp_path, plant, kind, field):
    live = make_state(tmp_path / "var")
    plant(live)
    with pytest.raises(InvalidInputError) as err:
        backup(live, tmp_path / "store")
    assert err.value.code == "backup_pii_detected"
    assert {"kind": kind.value, "field": field} in [
        {"kind": f["kind"], "field": f["field"]} for f in err.value.details["findings"]
    ]
    _, result = backup(live, tmp_path / "store", pii=PiiMode.WARN)
    assert any(f.kind is kind and f.field == field for f in result.scan.pii)


def test_pii_in_sqlite_column_named(tmp_path):
    live = make_state(tmp_path / "var")
    conn = sqlite3.connect(live / "policies.sqlite")
    conn.execute("CREATE TABLE contacts(email TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('a.b@example.org')")
    conn.commit()
    conn.close()
    with pytest.raises(InvalidInputError) as err:
        backup(live, tmp_path / "store")
    assert err.value.details["file"] == "policies.sqlite" and err.value.details["field"] == "contacts.email"


def test_lists_are_exempt_from_pii_but_not_private_keys(tmp_path):
    live = make_state(tmp_path / "var")
    (live / "lists" / "sanctions.csv").write_text("name,birthdate,nationality\nJohn Roe,1970-01-01,IR\n")
    backup(live, tmp_path / "store")


def test_public_key_material_is_not_flagged():
    doc = {"kid": SIGNER.kid, "public_key": SIGNER.public_key_b64, "fingerprint": SEED_HEX}
    assert scan_document("k.json", doc, pii=True) == []


# --- the fingerprint search itself: every encoding at every alignment, wrapped or not, and nothing else -----


def _fingerprints():
    from core.backup.fingerprints import KeyFingerprints, secrets_of_pem
    from core.signing import Ed25519Signer as Signer

    return KeyFingerprints(secrets_of_pem(Signer.from_seed(bytes(range(32))).to_pem()))


def _wrap(text: bytes, how: str) -> bytes:
    width = {"none": 0, "pem": 64, "json_escaped": 76}[how]
    if not width:
        return text
    lines = [text[i : i + width] for i in range(0, len(text), width)]
    return (b"\\n" if how == "json_escaped" else b"\n").join(lines)


@pytest.mark.parametrize("before", range(6))
@pytest.mark.parametrize("wrap", ["none", "pem", "json_escaped"])
@pytest.mark.parametrize("alphabet", ["standard", "urlsafe"])
def test_base64_of_the_seed_is_found_at_every_alignment(before, wrap, alphabet):
    seed = bytes(range(32))
    encode = base64.b64encode if alphabet == "standard" else base64.urlsafe_b64encode
    blob = encode(bytes([0xFB]) * before + seed + b"\xff\xfe")  # neighbours that give + / - _ characters
    data = b'{"x": "' + _wrap(blob, wrap) + b'"}'
    assert _fingerprints().encoding_in(data) == "base64"


@pytest.mark.parametrize("case", ["lower", "upper"])
@pytest.mark.parametrize("wrap", ["none", "pem", "json_escaped"])
def test_hex_of_the_seed_is_found_wrapped_or_not(case, wrap):
    text = (b"00ff" + bytes(range(32)).hex().encode() + b"ab").decode()
    data = _wrap((text.upper() if case == "upper" else text).encode(), wrap)
    assert _fingerprints().encoding_in(b"x=" + data) == "hex"


def test_other_keys_and_public_material_are_not_found():
    from core.signing import Ed25519Signer as Signer

    other = Signer.from_seed(bytes(range(100, 132)))
    seed = bytes(range(100, 132))
    data = b"\n".join(
        [
            other.to_pem(),
            seed.hex().encode(),
            base64.b64encode(b"ab" + seed),
            base64.b64decode(Signer.from_seed(bytes(range(32))).public_key_b64).hex().encode(),  # public half
        ]
    )
    assert _fingerprints().encoding_in(data) is None


def test_an_encoding_across_a_piece_boundary_is_found(tmp_path):
    from core.backup.fingerprints import PIECE

    encoded = base64.b64encode(bytes(range(32)))
    path = tmp_path / "big.bin"
    path.write_bytes(b"\x00" * (PIECE - 20) + encoded + b"\x00" * 100)  # starts 20 bytes before the cut
    assert _fingerprints().encoding_in_file(path) == "base64"
