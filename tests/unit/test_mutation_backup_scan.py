"""What the backup scanners flag, file by file and field by field (core/backup/scan.py).

Each case kills a mutant of core/backup/scan.py (``make mutation MODULE=core/backup/scan.py``). Values are
planted in real files (JSON, JSONL, YAML, text, SQLite) and the findings must name file, field and kind.
"""

import base64
import sqlite3

import pytest

from core.backup.manifest import FileType
from core.backup.scan import (
    Finding,
    FindingKind,
    PiiMode,
    ScanReport,
    enforce,
    scan_bytes_for_pem,
    scan_document,
    scan_file,
    scan_sqlite,
    scan_value,
)
from core.errors import InvalidInputError
from core.signing import Ed25519Signer

SIGNER = Ed25519Signer.from_seed(bytes(range(32)))
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
SEED_B64 = base64.b64encode(bytes.fromhex(SEED_HEX)).decode()
PEM = SIGNER.to_pem().decode()
K = FindingKind


def kinds(key, value, pii=True):
    return list(scan_value(key, value, pii=pii))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param("note", PEM, [K.PRIVATE_KEY_PEM], id="pem"),
        pytest.param("note", "-----BEGIN PGP PRIVATE KEY BLOCK-----", [K.PRIVATE_KEY_PEM], id="pgp_block"),
        pytest.param("note", "-----BEGIN PUBLIC KEY-----", [], id="public_pem"),
        pytest.param("private_key", SEED_HEX, [K.PRIVATE_KEY_SEED], id="hex_seed"),
        pytest.param("Secret-Key", f"  {SEED_B64} ", [K.PRIVATE_KEY_SEED], id="b64_seed_padded_case"),
        pytest.param("seed", SEED_HEX.upper(), [K.PRIVATE_KEY_SEED], id="upper_hex"),
        pytest.param("d", SEED_B64, [K.PRIVATE_KEY_SEED], id="jwk_d"),
        pytest.param("signing_key", SEED_HEX, [K.PRIVATE_KEY_SEED], id="signing_key"),
        pytest.param("privkey", SEED_HEX, [K.PRIVATE_KEY_SEED], id="privkey"),
        pytest.param("sk", SEED_HEX, [K.PRIVATE_KEY_SEED], id="sk"),
        pytest.param("private", SEED_HEX, [K.PRIVATE_KEY_SEED], id="private"),
        pytest.param("public_key", SEED_B64, [], id="public_key_name"),
        pytest.param("my_seed", SEED_HEX, [], id="key_name_must_match_whole"),
        pytest.param("seed", SEED_HEX[:-1], [], id="63_hex"),
        pytest.param("seed", SEED_HEX + "0", [], id="65_hex"),
        pytest.param("seed", base64.b64encode(bytes(33)).decode(), [], id="b64_33_bytes"),
        pytest.param("seed", "A" * 43 + "=", [K.PRIVATE_KEY_SEED], id="b64_zero_seed"),
        pytest.param("seed", 12345, [], id="not_a_string"),
    ],
)
def test_private_key_material(key, value, expected):
    assert kinds(key, value, pii=False) == expected


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param("contact", "write to jane.doe@mail.example.com today", [K.EMAIL], id="email"),
        pytest.param("contact", "jane@localhost", [], id="email_needs_tld"),
        pytest.param("support", "+49 30 1234 5678", [K.PHONE], id="phone_text"),
        pytest.param("support", "+1 (555) 010-9999", [K.PHONE], id="phone_parens"),
        pytest.param("support", "x+49 30 1234 5678", [], id="phone_glued_to_word"),
        pytest.param("Mobile", "123 456", [K.PHONE], id="phone_field_six_digits"),
        pytest.param("tel", "123 45", [], id="phone_field_five_digits"),
        pytest.param("hotel", "0301234567", [], id="tel_must_be_whole_key"),
        pytest.param("bank", "DE89370400440532013000", [K.IBAN], id="iban"),
        pytest.param("bank", "DE89370400440532013001", [], id="iban_bad_checksum"),
        pytest.param("date_of_birth", "1970-01-01", [K.BIRTH_DATE], id="birth"),
        pytest.param("dob", "1970", [K.BIRTH_DATE], id="dob"),
        pytest.param("geburtsdatum", "1970", [K.BIRTH_DATE], id="geburt"),
        pytest.param("dob", "  ", [], id="birth_blank"),
        pytest.param("dobby", "x", [], id="dob_must_be_whole_key"),
        pytest.param("last_name", "Roe", [K.PERSON_NAME], id="last_name"),
        pytest.param("Vorname", "Jane", [K.PERSON_NAME], id="vorname"),
        pytest.param("full-name", "Jane Roe", [K.PERSON_NAME], id="full_name"),
        pytest.param("first_name", "", [], id="name_blank"),
        pytest.param("company_name", "ACME", [], id="company_name_is_not_a_person"),
        pytest.param("phone", None, [], id="none"),
        pytest.param("phone", True, [], id="bool"),
        pytest.param("phone", 4930123456, [K.PHONE], id="int_phone"),
    ],
)
def test_personal_data(key, value, expected):
    assert kinds(key, value) == expected
    assert kinds(key, value, pii=False) == []


def test_document_paths_name_nested_fields_and_list_items():
    doc = {"a": {"b": [{"email": "x@y.org"}, "z@w.de"]}, "seed": SEED_HEX, "ok": 1}
    assert scan_document("c.json", doc, pii=True) == [
        Finding(file="c.json", field="$.a.b[0].email", kind=K.EMAIL),
        Finding(file="c.json", field="$.a.b[1]", kind=K.EMAIL),
        Finding(file="c.json", field="$.seed", kind=K.PRIVATE_KEY_SEED),
    ]
    assert scan_document("c.json", doc, pii=False) == [
        Finding(file="c.json", field="$.seed", kind=K.PRIVATE_KEY_SEED)
    ]
    assert scan_document("s.json", "a@b.org", pii=True, prefix="P") == [
        Finding(file="s.json", field="P", kind=K.EMAIL)
    ]


def test_pem_in_raw_bytes():
    assert scan_bytes_for_pem("x.bin", b"\x00" + PEM.encode()) == [
        Finding(file="x.bin", field="<bytes>", kind=K.PRIVATE_KEY_PEM)
    ]
    assert scan_bytes_for_pem("x.bin", b"-----BEGIN PUBLIC KEY-----") == []


def _scan(tmp_path, name, data, kind=FileType.CONFIGURATION):
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return [(f.file, f.field, f.kind) for f in scan_file(name, path, kind)]


def test_jsonl_findings_name_the_line(tmp_path):
    data = '{"a": 1}\n\n{"email": "x@y.org"}\nnot json x@y.org\n'
    assert _scan(tmp_path, "audit.jsonl", data, FileType.AUDIT_LOG) == [
        ("audit.jsonl", "line 3: $.email", K.EMAIL),
        ("audit.jsonl", "line 4: $ <unparsed>", K.EMAIL),
    ]


@pytest.mark.parametrize("name", ["config.yaml", "config.yml"])
def test_yaml_findings_name_the_path(tmp_path, name):
    assert _scan(tmp_path, name, "contact:\n  email: x@y.org\n") == [(name, "$.contact.email", K.EMAIL)]


def test_unparsable_yaml_and_json_fall_back_to_text(tmp_path):
    assert _scan(tmp_path, "c.yaml", "a: [x@y.org\n") == [("c.yaml", "$ <unparsed>", K.EMAIL)]
    assert _scan(tmp_path, "c.json", "{x@y.org") == [("c.json", "$ <unparsed>", K.EMAIL)]


def test_unparsable_list_files_are_not_scanned_for_pii(tmp_path):
    assert _scan(tmp_path, "lists/a.json", "{x@y.org", FileType.LISTS) == []
    assert _scan(tmp_path, "lists/a.yaml", "a: [x@y.org\n", FileType.LISTS) == []


def test_empty_documents_have_no_findings(tmp_path):
    assert _scan(tmp_path, "c.json", "  \n") == []
    assert _scan(tmp_path, "c.yaml", "") == []


def test_plain_text_is_scanned_line_by_line(tmp_path):
    assert _scan(tmp_path, "notes.txt", "hello\ncall +49 30 1234 5678\n") == [
        ("notes.txt", "<text>", K.PHONE)
    ]


def test_bytes_that_are_not_utf8_are_still_scanned(tmp_path):
    assert _scan(tmp_path, "notes.txt", b"\xff\xfe contact x@y.org\n") == [("notes.txt", "<text>", K.EMAIL)]


def test_lists_are_scanned_for_keys_only(tmp_path):
    text = "name,email\nJohn Roe,x@y.org\n"
    assert _scan(tmp_path, "lists/a.csv", text, FileType.LISTS) == []
    assert _scan(tmp_path, "lists/a.json", '{"email": "x@y.org"}', FileType.LISTS) == []
    assert _scan(tmp_path, "lists/a.json", f'{{"seed": "{SEED_HEX}"}}', FileType.LISTS) == [
        ("lists/a.json", "$.seed", K.PRIVATE_KEY_SEED)
    ]
    assert _scan(tmp_path, "lists/a.csv", PEM, FileType.LISTS) == [
        ("lists/a.csv", "<bytes>", K.PRIVATE_KEY_PEM)
    ]


@pytest.mark.parametrize(
    ("size", "kind", "flagged"),
    [
        pytest.param(32, FileType.CONFIGURATION, True, id="32_bytes_anywhere"),
        pytest.param(64, FileType.KEY_METADATA, True, id="64_bytes_key_metadata"),
        pytest.param(64, FileType.CONFIGURATION, False, id="64_bytes_elsewhere"),
        pytest.param(33, FileType.KEY_METADATA, False, id="33_bytes"),
    ],
)
def test_raw_seed_sized_files(tmp_path, size, kind, flagged):
    found = _scan(tmp_path, "blob.bin", bytes(range(1, size + 1)), kind)
    assert found == ([("blob.bin", "<file>", K.PRIVATE_KEY_SEED)] if flagged else [])


def _db(tmp_path, *statements):
    path = tmp_path / "s.sqlite"
    conn = sqlite3.connect(path)
    for statement, *params in statements:
        conn.execute(statement, *params)
    conn.commit()
    conn.close()
    return path


def test_sqlite_columns_are_named_table_dot_column(tmp_path):
    path = _db(
        tmp_path,
        ('CREATE TABLE "we""ird"(email TEXT, seed BLOB, n INT, sk BLOB)',),
        ('INSERT INTO "we""ird" VALUES (?, ?, ?, ?)', ("a@b.org", bytes(32), 1, bytes(31))),
        ('INSERT INTO "we""ird" VALUES (?, ?, ?, ?)', ("c@d.org", bytes(64), 2, bytes(64))),
    )
    assert [(f.field, f.kind) for f in scan_sqlite("s.sqlite", path, pii=True)] == [
        ('we"ird.email', K.EMAIL),
        ('we"ird.seed', K.PRIVATE_KEY_SEED),
        ('we"ird.sk', K.PRIVATE_KEY_SEED),
    ]
    assert [(f.field, f.kind) for f in scan_sqlite("s.sqlite", path, pii=False)] == [
        ('we"ird.seed', K.PRIVATE_KEY_SEED),
        ('we"ird.sk', K.PRIVATE_KEY_SEED),
    ]


def test_sqlite_samples_only_the_first_rows(tmp_path):
    path = _db(
        tmp_path,
        ("CREATE TABLE t(note TEXT)",),
        ("INSERT INTO t VALUES ('nothing')",),
        ("INSERT INTO t VALUES ('x@y.org')",),
    )
    assert scan_sqlite("s.sqlite", path, pii=True, sample_rows=1) == []
    assert len(scan_sqlite("s.sqlite", path, pii=True, sample_rows=2)) == 1
    assert scan_file("s.sqlite", path, FileType.DATABASE) == [
        Finding(file="s.sqlite", field="t.note", kind=K.EMAIL)
    ]
    assert scan_file("s.sqlite", path, FileType.POLICY_STORE)[0].field == "t.note"


def test_unreadable_sqlite_names_the_file(tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(InvalidInputError, match="cannot scan SQLite snapshot") as caught:
        scan_sqlite("registry.sqlite", path, pii=True)
    assert caught.value.details["file"] == "registry.sqlite"


PRIVATE = Finding(file="k.json", field="$.seed", kind=K.PRIVATE_KEY_SEED)
PII = Finding(file="c.yaml", field="$.email", kind=K.EMAIL)
PII2 = Finding(file="d.yaml", field="$.phone", kind=K.PHONE)


def test_report_splits_private_from_pii():
    report = ScanReport(files_scanned=2, findings=(PII, PRIVATE, PII2))
    assert report.private == (PRIVATE,)
    assert report.pii == (PII, PII2)


@pytest.mark.parametrize("mode", list(PiiMode))
def test_private_material_is_refused_in_every_mode(mode):
    with pytest.raises(InvalidInputError) as caught:
        enforce(ScanReport(findings=(PII, PRIVATE)), mode)
    assert caught.value.code == "backup_private_key_material"
    assert caught.value.message == "private key material found in k.json; backups never contain private keys"
    (finding,) = caught.value.details["findings"]
    assert finding == {"file": "k.json", "field": "$.seed", "kind": "private_key_seed"}
    assert type(finding["kind"]) is str  # plain JSON, as the API and CLI print it


def test_pii_refuses_by_default_naming_the_first_finding_and_warn_passes():
    report = ScanReport(findings=(PII, PII2))
    with pytest.raises(InvalidInputError) as caught:
        enforce(report, PiiMode.REFUSE)
    error = caught.value
    assert error.code == "backup_pii_detected"
    assert error.message.startswith("possible personal data found (2 findings)")
    assert (error.details["file"], error.details["field"]) == ("c.yaml", "$.email")
    assert [f["kind"] for f in error.details["findings"]] == ["email", "phone"]
    assert all(type(f["kind"]) is str for f in error.details["findings"])
    assert enforce(report, PiiMode.WARN) is report
    clean = ScanReport(files_scanned=3)
    assert enforce(clean, PiiMode.REFUSE) is clean


@pytest.mark.parametrize(
    ("name", "text", "parsed"),
    [
        ("notes.json", '{"pem": "%s", "email": "a@b.org"}', [("notes.json", "$.email", K.EMAIL)]),
        ("notes.yaml", "pem: '%s'\nemail: a@b.org\n", [("notes.yaml", "$.email", K.EMAIL)]),
        ("notes.txt", "%s\ncontact a@b.org\n", [("notes.txt", "<text>", K.EMAIL)]),
    ],
)
def test_a_file_keeps_its_byte_level_pem_finding_beside_the_parsed_ones(tmp_path, name, text, parsed):
    """The PEM marker found in the raw bytes is reported with what the parser finds, not replaced by it."""
    marker = "-----BEGIN PRIVATE KEY-----"
    found = _scan(tmp_path, name, text % marker)
    assert (name, "<bytes>", K.PRIVATE_KEY_PEM) in found
    assert all(f in found for f in parsed)


def test_a_list_item_is_judged_by_its_own_key_not_its_parents():
    """``$.birth.notes[0]`` is a note, not a birth date; a JSON key with a dot in it is one key."""
    assert scan_document("c.json", {"birth": {"notes": ["hello"]}}, pii=True) == []
    assert scan_document("c.json", {"mobile.number": "12345678"}, pii=True) == [
        Finding(file="c.json", field="$.mobile.number", kind=K.PHONE)
    ]


@pytest.mark.parametrize(("key", "value"), [("surname", None), ("first_name", False), ("dob", True)])
def test_null_and_boolean_values_are_never_personal_data(key, value):
    assert kinds(key, value) == []


def test_private_key_refusal_names_the_field_of_the_first_finding():
    with pytest.raises(InvalidInputError) as caught:
        enforce(ScanReport(findings=(PRIVATE,)), PiiMode.WARN)
    assert (caught.value.details["file"], caught.value.details["field"]) == ("k.json", "$.seed")


def test_scan_file_with_the_live_keys_finds_them_in_any_file(tmp_path):
    """A file holding a live private key's seed as hex in an innocent-looking field."""
    from core.backup.fingerprints import KeyFingerprints

    keys = KeyFingerprints([bytes.fromhex(SEED_HEX)])
    path = tmp_path / "notes.yaml"
    path.write_text(f"comment: {SEED_HEX}\n")
    assert scan_file("config/notes.yaml", path, FileType.CONFIGURATION, keys) == [
        Finding(file="config/notes.yaml", field="<hex bytes>", kind=K.PRIVATE_KEY_MATCH)
    ]
    assert scan_file("config/notes.yaml", path, FileType.CONFIGURATION, KeyFingerprints([])) == []


def test_sqlite_blobs_are_seeds_only_in_key_columns_at_seed_sizes_and_every_table_counts(tmp_path):
    path = _db(
        tmp_path,
        ("CREATE TABLE a(payload BLOB, seed BLOB, note TEXT)",),
        ("INSERT INTO a VALUES (?, ?, ?)", (bytes(32), bytes(33), "x")),
        ("CREATE TABLE b(sk BLOB, email TEXT)",),
        ("INSERT INTO b VALUES (?, ?)", (bytes(32), "c@d.org")),
    )
    assert [(f.field, f.kind) for f in scan_sqlite("s.sqlite", path, pii=True)] == [
        ("b.email", K.EMAIL),
        ("b.sk", K.PRIVATE_KEY_SEED),
    ]
    second = tmp_path / "second"
    second.mkdir()
    path2 = _db(
        second,
        ("CREATE TABLE a(seed BLOB)",),
        ("INSERT INTO a VALUES (?)", (bytes(32),)),
        ("CREATE TABLE b(note TEXT)",),
        ("INSERT INTO b VALUES ('y@z.org')",),
    )
    assert [(f.field, f.kind) for f in scan_sqlite("s.sqlite", path2, pii=True)] == [
        ("a.seed", K.PRIVATE_KEY_SEED),
        ("b.note", K.EMAIL),
    ]
