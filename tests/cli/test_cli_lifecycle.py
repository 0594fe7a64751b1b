"""The ``cap`` CLI in subprocesses, on the real OFAC and UN extracts: the lifecycle, exit codes, bad input."""

from __future__ import annotations

import pytest

from tests.cli.conftest import EXAMPLES
from tests.paths import FIXTURES

SUPPLIERS = (EXAMPLES / "suppliers.csv").read_text()
UBOS = (EXAMPLES / "ubos.csv").read_text()
POLICY = EXAMPLES / "policy.lksg.v1.yml"


def _lists(cap):
    r = cap(
        "lists",
        "build",
        "--ofac",
        FIXTURES / "ofac" / "sdn.csv",
        "--un",
        FIXTURES / "un_consolidated_extract.xml",
        "--high-risk",
        EXAMPLES / "high_risk.csv",
        "--install",  # this data dir is the verifier, too: it trusts the lists it installed
        "--json",
    )
    assert r.code == 0, r.stderr
    return r.json()


def _prove(cap, suppliers_text, *extra):
    suppliers = cap.write("suppliers.csv", suppliers_text)
    ubos = cap.write("ubos.csv", UBOS)
    assert cap("commit", "--suppliers", suppliers, "--ubos", ubos).code == 0
    lists_path = cap.root / "build" / "lists.json"
    assert (
        cap(
            "manifest",
            "build",
            "--commitments",
            cap.root / "build" / "commitments.json",
            "--policy",
            POLICY,
            "--lists",
            lists_path,
        ).code
        == 0
    )
    return cap(
        "proof",
        "build",
        "--manifest",
        cap.root / "build" / "manifest.json",
        "--policy",
        POLICY,
        "--suppliers",
        suppliers,
        "--ubos",
        ubos,
        "--lists",
        lists_path,
        "--json",
        *extra,
    )


def test_lifecycle_on_real_lists_ok_then_tampered_fails(cap):
    assert cap("keys", "keygen", "--owner", "Test GmbH").code == 0
    lists = _lists(cap)
    assert lists["keys"] > 30 and lists["sanctions_root"].startswith("0x")
    built = _prove(cap, SUPPLIERS, "--enforce", "--enforce-mode", "strict")
    assert built.code == 0, built.stderr
    assert built.json()["verdict"] == "OK"
    proof = cap.root / "build" / "proof.json"
    verified = cap("verify", "--proof", proof, "--manifest", cap.root / "build" / "manifest.json", "--json")
    assert verified.code == 0, verified.stdout + verified.stderr
    report = verified.json()
    assert report["result"] == "ok"
    assert {c["id"] for c in report["checks"]} >= {
        "proof_signature",
        "rule:no_sanctioned_suppliers",
        "registry",
    }
    assert next(c for c in report["checks"] if c["id"] == "registry")["status"] == "ok"

    data = proof.read_bytes()
    i = data.index(b'"ubo_count":') + len(b'"ubo_count":')
    proof.write_bytes(data[:i] + b"7" + data[i + 1 :])
    tampered = cap("verify", "--proof", proof, "--json")
    assert tampered.code == 4
    failed = {c["id"] for c in tampered.json()["checks"] if c["status"] == "fail"}
    assert "proof_signature" in failed


@pytest.mark.parametrize(
    "listed_supplier",
    [
        pytest.param("Trade Center Hesa,DE,1", id="ofac_alias_other_order"),
        pytest.param("elvis angus LOGAN MOREY,BZ,2", id="ofac_individual_other_order_and_case"),
        pytest.param("Industrial Complex Amin,DE,1", id="un_entity_other_order"),
    ],
)
def test_supplier_on_a_real_list_is_caught(cap, listed_supplier):
    _lists(cap)
    refused = _prove(cap, SUPPLIERS + listed_supplier + "\n", "--enforce", "--enforce-mode", "strict")
    assert refused.code == 3
    assert "no_sanctioned_suppliers" in refused.stderr
    assert not (cap.root / "build" / "proof.json").exists()
    built = _prove(cap, SUPPLIERS + listed_supplier + "\n", "--enforce-mode", "strict")
    assert built.code == 0 and built.json()["verdict"] == "FAIL"
    assert [v["constraint"] for v in built.json()["violations"]] == ["no_sanctioned_suppliers"]
    verified = cap("verify", "--proof", cap.root / "build" / "proof.json")
    assert verified.code == 3
    assert cap("verify", "--proof", cap.root / "build" / "proof.json", "--enforce-mode", "audit").code == 0


@pytest.mark.parametrize(
    ("csv", "needle"),
    [
        pytest.param("name,tier\nA,1\n", "missing column 'jurisdiction'", id="missing_column"),
        pytest.param("name,jurisdiction,tier\nA,DE,x\n", "line 2, column tier", id="non_integer_tier"),
        pytest.param("name,jurisdiction,tier\nA,DE,0\n", "line 2, column tier", id="zero_tier"),
        pytest.param("name,jurisdiction,tier\nA,Germany,1\n", "column jurisdiction", id="bad_country"),
        pytest.param("", "file is empty", id="empty_file"),
    ],
)
def test_bad_supplier_csv_exits_2_names_the_place_and_writes_nothing(cap, csv, needle):
    suppliers = cap.write("s.csv", csv)
    ubos = cap.write("u.csv", UBOS)
    r = cap("commit", "--suppliers", suppliers, "--ubos", ubos)
    assert r.code == 2
    assert needle in r.stderr and "s.csv" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (cap.root / "build").exists()


def test_bad_ubo_date_exits_2(cap):
    r = cap(
        "commit",
        "--suppliers",
        cap.write("s.csv", SUPPLIERS),
        "--ubos",
        cap.write("u.csv", "name,birthdate,citizenship\nA,1970-02-30,DE\n"),
    )
    assert r.code == 2 and "birthdate" in r.stderr and "line 2" in r.stderr


def test_bom_quoted_commas_and_non_ascii_names_work(cap):
    s = cap.root / "s.csv"
    s.write_bytes('\ufeffname,jurisdiction,tier\n"Müller, Söhne & Co",DE,1\nŁódź Tekstil,PL,2\n'.encode())
    r = cap("commit", "--suppliers", s, "--ubos", cap.write("u.csv", UBOS), "--json")
    assert r.code == 0 and r.json()["supplier_count"] == 2


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("- just\n- a list\n", "mapping", id="yaml_not_a_mapping"),
        pytest.param(
            "id: p\nversion: '1'\nlegal_basis: [{directive: LkSG}]\ndescription: d\ninputs: {}\n"
            "rules:\n  - {id: r1, op: frobnicate, lhs: a, rhs: b}\n",
            "E2001",
            id="unknown_op",
        ),
        pytest.param(
            "id: p\nversion: '1'\nlegal_basis: [{directive: LkSG}]\ndescription: d\ninputs: {}\n"
            "rules:\n  - {id: r1, op: eq, lhs: a, rhs: b}\n  - {id: r1, op: eq, lhs: a, rhs: c}\n",
            "E1003",
            id="duplicate_rule_id",
        ),
        pytest.param("id: p\nversion: [unclosed\n", "line", id="yaml_syntax_error"),
    ],
)
def test_bad_policy_exits_2_with_a_clear_error(cap, text, needle):
    policy = cap.write("p.yml", text)
    r = cap("policy", "compile", policy, "-o", cap.root / "ir.json")
    assert r.code == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (cap.root / "ir.json").exists()


def test_policy_compile_golden_ir_and_lint(cap):
    out = cap.root / "ir.json"
    r = cap("policy", "compile", FIXTURES.parent / "reference" / "lksg_v1.policy.yml", "-o", out, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["ir_hash"] == "sha3-256:df3a3eeb7c72f6204131397e4b0a4b16235f1e20cc66102153ad6d4ee78f892c"
    assert len(out.read_bytes()) == 435
    no_basis = cap.write(
        "p.yml", "id: p\nversion: '1'\nlegal_basis: []\ndescription: d\ninputs: {}\nrules: []\n"
    )
    assert cap("policy", "lint", no_basis).code == 0
    strict = cap("policy", "lint", no_basis, "--strict", "--json")
    assert strict.code == 3 and [d["code"] for d in strict.json()] == ["E1002"]


@pytest.mark.parametrize(
    ("content", "check"),
    [
        pytest.param(b'{"schema":"cap-proof.v2","created_at":', "proof_format", id="truncated"),
        pytest.param(b"\x00\x01garbage", "proof_format", id="not_json"),
        pytest.param(
            b'{"schema":"cap-proof.v2","policy_id":"\\ud800"}', "proof_format", id="lone_surrogate_escape"
        ),
    ],
)
def test_unreadable_proof_exits_4(cap, content, check):
    assert cap("keys", "keygen").code == 0
    proof = cap.root / "proof.json"
    proof.write_bytes(content)
    r = cap("verify", "--proof", proof, "--json")
    assert r.code == 4, r.stderr
    assert [c["id"] for c in r.json()["checks"]] == [check]
    assert "Traceback" not in r.stderr


def test_missing_file_and_usage_errors_exit_2(cap):
    assert cap("verify", "--proof", cap.root / "nope.json").code == 2
    r = cap("commit", "--suppliers")
    assert r.code == 2 and "Traceback" not in r.stderr


def test_keys_list_and_show_never_print_private_material(cap):
    kid = cap("keys", "keygen", "--json").json()["kid"]
    listed = cap("keys", "list", "--json")
    shown = cap("keys", "show", kid, "--json")
    assert listed.code == shown.code == 0 and shown.json()["kid"] == kid
    pem = (cap.root / "var" / "keys" / f"{kid}.pem").read_text()
    body = "".join(pem.splitlines()[1:-1])
    for r in (listed, shown):
        assert "PRIVATE" not in r.stdout and body not in r.stdout
    assert (cap.root / "var" / "keys" / f"{kid}.pem").stat().st_mode & 0o777 == 0o600


def test_demo_tells_the_whole_story(cap):
    r = cap("demo", "--workdir", cap.root / "demo")
    assert r.code == 0, r.stderr
    for needle in (
        "verdict OK",
        "cap-proof.v3",
        "zk:suppliers",
        "strict: OK",
        "FAIL",
        "refused (policy_failed)",
    ):
        assert needle in r.stdout
