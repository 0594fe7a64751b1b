"""core.audit: the v1 hash chain, byte-compatible with the original, append/tail/verify on real files and on a
real PostgreSQL (the same line bytes, one chain under concurrent appends)."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.audit import GENESIS, AuditLog, check_line, event_digest, make_event
from core.errors import IntegrityError, InvalidInputError
from core.store import audit_log

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "stores"
REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 11, 27, 9, 0, 0, tzinfo=UTC)


def _load(name):
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _ts(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _write_lines(path, lines):
    path.write_bytes(b"".join(line.encode() + b"\n" for line in lines))


def test_original_vector_is_byte_exact():
    vec = _load("audit_v1_original.json")
    given = vec["input"]
    event = make_event(given["seq"], given["ts"], given["event"], given["details"], given["prev_digest"])
    assert event.digest == vec["expected"]["digest"]
    assert event.digest == "0x3c7bc357d3fd58e71a9ecddbc3802453f2a0b1997b6ce073897b8dcb7486db33"
    assert event.line().decode() == vec["expected"]["line"]


def test_digest_rule_is_the_plain_byte_concatenation():
    import hashlib

    data = (
        b'12025-11-27T11:34:22.644173Zproject_created{"name":"Audit-Test","schema":"taurin.project.v1"}'
        + (GENESIS.encode())
    )
    expected = "0x" + hashlib.sha3_256(data).hexdigest()
    details = {"schema": "taurin.project.v1", "name": "Audit-Test"}
    assert event_digest(1, "2025-11-27T11:34:22.644173Z", "project_created", details, GENESIS) == expected


@pytest.fixture
def any_log(engine_settings):
    """The audit log on each engine (the data dir's JSONL file, or the database)."""
    return audit_log(engine_settings)


def test_appending_the_chain_vector_writes_its_lines(tmp_path):
    vec = _load("audit_v1_chain.json")
    log = AuditLog(tmp_path / "audit.jsonl")
    for item in vec["events"]:
        log.append(item["event"], item["details"], _ts(item["ts"]))
    assert log.path.read_text(encoding="utf-8").splitlines() == vec["expected"]["lines"]
    assert log.tail() == (vec["expected"]["tail"]["digest"], vec["expected"]["tail"]["count"])
    assert log.verify().ok


def test_each_engine_stores_the_chain_vector_byte_exact(any_log):
    vec = _load("audit_v1_chain.json")
    for item in vec["events"]:
        any_log.append(item["event"], item["details"], _ts(item["ts"]))
    assert [e.line().decode() for e in any_log.events()] == vec["expected"]["lines"]
    assert any_log.tail() == (vec["expected"]["tail"]["digest"], vec["expected"]["tail"]["count"])
    assert any_log.verify().ok


@pytest.mark.parametrize("name", [n["name"] for n in _load("audit_v1_chain.json")["negatives"]])
def test_chain_vector_negatives_report_the_tamper_index(tmp_path, name):
    neg = next(n for n in _load("audit_v1_chain.json")["negatives"] if n["name"] == name)
    path = tmp_path / "audit.jsonl"
    _write_lines(path, neg["lines"])
    report = AuditLog(path).verify()
    assert (report.ok, report.tamper_index, report.total) == (False, neg["tamper_index"], len(neg["lines"]))
    assert report.error


def _chain(tmp_path, n=5):
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(n):
        log.append("step", {"i": i, "name": f"step {i}"}, T0 + timedelta(seconds=i))
    return log


def _edit(line, field, value):
    obj = json.loads(line)
    obj[field] = value
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    ("index", "edit", "message"),
    [
        pytest.param(
            2,
            lambda line: _edit(line, "details", {"i": 99, "name": "step 2"}),
            "digest mismatch",
            id="details_edited",
        ),
        pytest.param(
            0,
            lambda line: _edit(line, "ts", "2030-01-01T00:00:00.000000Z"),
            "digest mismatch",
            id="ts_edited",
        ),
        pytest.param(
            4, lambda line: _edit(line, "event", "other"), "digest mismatch", id="last_event_edited"
        ),
        pytest.param(
            3, lambda line: _edit(line, "prev_digest", GENESIS), "hash chain broken", id="prev_relinked"
        ),
        pytest.param(1, lambda line: _edit(line, "seq", 7), "expected 2", id="seq_edited"),
        pytest.param(
            2, lambda line: line.replace(",", ", ", 1), "not in canonical form", id="whitespace_added"
        ),
        pytest.param(1, lambda line: "not json", "not an audit v1 event", id="garbage_line"),
        pytest.param(3, lambda line: "", "not an audit v1 event", id="blank_line"),
    ],
)
def test_verify_finds_an_edited_line_at_the_right_index(tmp_path, index, edit, message):
    log = _chain(tmp_path)
    lines = log.path.read_text(encoding="utf-8").splitlines()
    lines[index] = edit(lines[index])
    _write_lines(log.path, lines)
    report = log.verify()
    assert (report.ok, report.tamper_index, report.total) == (False, index, 5)
    assert message in report.error


def test_recomputing_an_edited_line_digest_still_breaks_the_next_link(tmp_path):
    log = _chain(tmp_path)
    lines = log.path.read_text(encoding="utf-8").splitlines()
    old = json.loads(lines[1])
    forged = make_event(2, old["ts"], old["event"], {"i": 1, "name": "forged"}, old["prev_digest"])
    lines[1] = forged.line().decode()
    _write_lines(log.path, lines)
    report = log.verify()
    assert (report.tamper_index, "hash chain broken" in report.error) == (2, True)


def test_append_after_reopening_continues_the_chain(engine_settings):
    assert audit_log(engine_settings).tail() == (GENESIS, 0)
    first = audit_log(engine_settings).append("a", {}, T0)
    second = audit_log(engine_settings).append("b", {"k": "v"}, T0 + timedelta(seconds=1))
    assert (first.seq, first.prev_digest) == (1, GENESIS)
    assert (second.seq, second.prev_digest) == (2, first.digest)
    assert audit_log(engine_settings).tail() == (second.digest, 2)
    assert audit_log(engine_settings).verify().ok
    assert [e.event for e in audit_log(engine_settings).events()] == ["a", "b"]


def test_missing_and_empty_logs(tmp_path):
    missing = AuditLog(tmp_path / "sub" / "audit.jsonl")
    assert missing.tail() == (GENESIS, 0)
    assert missing.verify().model_dump() == {"total": 0, "ok": True, "tamper_index": None, "error": None}
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert AuditLog(tmp_path / "empty.jsonl").tail() == (GENESIS, 0)
    assert missing.append("first", {}, T0).seq == 1


def test_a_torn_last_line_stops_appends_and_shows_in_verify(tmp_path):
    log = _chain(tmp_path, 2)
    with log.path.open("ab") as fh:
        fh.write(b'{"seq":3,"ts":"2025')
    with pytest.raises(IntegrityError) as info:
        log.append("more", {}, T0)
    assert "partial line" in info.value.message
    assert log.verify().tamper_index == 2


def test_floats_in_details_are_refused_before_writing(any_log):
    first = any_log.append("ok", {}, T0)
    with pytest.raises(InvalidInputError):
        any_log.append("bad", {"ratio": 0.5}, T0)
    assert any_log.tail() == (first.digest, 1)


def test_long_lines_are_read_back_from_the_tail(any_log):
    log = any_log
    log.append("big", {"blob": "x" * 20000}, T0)
    last = log.append("big", {"blob": "y" * 9000}, T0)
    assert log.tail() == (last.digest, 2)
    assert log.append("after", {}, T0).prev_digest == last.digest


def test_non_ascii_details_are_written_unescaped(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("note", {"text": "Prüfung – ok"}, T0)
    assert "Prüfung – ok" in log.path.read_text(encoding="utf-8")
    assert log.verify().ok


def test_non_ascii_details_round_trip_on_each_engine(any_log):
    any_log.append("note", {"text": "Prüfung – ok"}, T0)
    assert "Prüfung – ok".encode() in next(any_log.events()).line()
    assert any_log.verify().ok


def test_check_line_raises_integrity_error_naming_the_line():
    event = make_event(1, "t", "e", {}, GENESIS)
    with pytest.raises(IntegrityError) as info:
        check_line(0, event.line(), "0x" + "1" * 64)
    assert info.value.details["line"] == 1


def test_concurrent_processes_append_one_unbroken_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    code = (
        "import sys\n"
        "from datetime import datetime, UTC\n"
        "from core.audit import AuditLog\n"
        "log = AuditLog(sys.argv[1])\n"
        "for i in range(25):\n"
        "    log.append('worker', {'worker': sys.argv[2], 'i': i}, datetime(2025, 1, 1, tzinfo=UTC))\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", code, str(path), str(w)], cwd=REPO) for w in range(4)]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0, 0]
    report = AuditLog(path).verify()
    assert (report.ok, report.total) == (True, 100)
