"""``cap proof build --drift-detect``, ``cap verify --drift-detect``, ``cap drift`` and the enforcement exit
codes, in real subprocesses: drift is reported and never changes the exit code."""

from __future__ import annotations

from tests.cli.conftest import EXAMPLES
from tests.paths import FIXTURES

SUPPLIERS = (EXAMPLES / "suppliers.csv").read_text()
UBOS = (EXAMPLES / "ubos.csv").read_text()
POLICY = EXAMPLES / "policy.lksg.v1.yml"


def _prove(cap, suppliers_text, name, *extra):
    """commit → manifest → proof build into build/<name>.json (lists built once by the caller)."""
    suppliers, ubos = cap.write(f"{name}.csv", suppliers_text), cap.write("ubos.csv", UBOS)
    build = cap.root / "build"
    assert cap("commit", "--suppliers", suppliers, "--ubos", ubos).code == 0
    assert (
        cap(
            "manifest",
            "build",
            "--commitments",
            build / "commitments.json",
            "--policy",
            POLICY,
            "--lists",
            build / "lists.json",
            "--out",
            build / f"{name}.manifest.json",
        ).code
        == 0
    )
    return cap(
        "proof",
        "build",
        "--manifest",
        build / f"{name}.manifest.json",
        "--policy",
        POLICY,
        "--suppliers",
        suppliers,
        "--ubos",
        ubos,
        "--lists",
        build / "lists.json",
        "--out",
        build / f"{name}.json",
        "--json",
        *extra,
    )


def test_drift_detect_on_build_and_verify_and_cap_drift(cap):
    lists = cap(
        "lists",
        "build",
        "--ofac",
        FIXTURES / "ofac" / "sdn.csv",
        "--high-risk",
        EXAMPLES / "high_risk.csv",
        "--install",  # the verifier (same data dir) trusts the lists the proofs were screened against
    )
    assert lists.code == 0
    first = _prove(cap, SUPPLIERS, "first", "--drift-detect")
    assert first.code == 0, first.stderr
    assert first.json()["verdict"] == "OK" and first.json()["drift"] is None  # no baseline yet

    second = _prove(cap, SUPPLIERS + "Baltic Parts,LT,1\n", "second", "--drift-detect")
    assert second.code == 0, second.stderr
    drift = second.json()["drift"]
    assert drift["baseline"] == "registry:proof_001" and drift["score"] == 15 and drift["level"] == "low"
    root = next(i for i in drift["items"] if i["type"] == "root")
    assert root["weight"] == 0.5 and "supplier_root changed" in root["reason"]

    build = cap.root / "build"
    compared = cap("drift", "--baseline", build / "first.json", "--current", build / "second.json", "--json")
    assert compared.code == 0, compared.stderr
    assert compared.json()["score"] == 15 and compared.json()["schema"] == "cap-drift.v1"
    unsigned = build / "first.manifest.json"  # a manifest carries no signature: no key to compare
    human = cap("drift", "--baseline", unsigned, "--current", build / "second.json")
    assert human.code == 0 and "drift score 15 (low)" in human.stdout and "supplier_root" in human.stdout

    verified = cap("verify", "--proof", build / "second.json", "--drift-detect", "--json")
    assert verified.code == 0, verified.stdout + verified.stderr
    check = next(c for c in verified.json()["checks"] if c["kind"] == "drift")
    assert (
        check["status"] == "ok"
        and "drift score 15" in check["message"]
        and "registry:proof_001" in check["message"]
    )
    assert cap("drift", "--baseline", cap.root / "nope.json", "--current", build / "second.json").code == 2


def test_audit_prints_violations_and_exits_0_strict_and_relaxed_exit_3(cap):
    assert (
        cap(
            "lists",
            "build",
            "--ofac",
            FIXTURES / "ofac" / "sdn.csv",
            "--high-risk",
            EXAMPLES / "high_risk.csv",
            "--install",
        ).code
        == 0
    )
    listed = SUPPLIERS + "Trade Center Hesa,DE,1\n"  # an OFAC alias: a critical violation
    for mode in ("strict", "relaxed"):
        refused = _prove(cap, listed, f"refused-{mode}", "--enforce", "--enforce-mode", mode)
        assert refused.code == 3 and "no_sanctioned_suppliers" in refused.stderr
    audited = _prove(cap, listed, "audited", "--enforce", "--enforce-mode", "audit")
    assert audited.code == 0, audited.stderr
    assert audited.json()["verdict"] == "WARN"
    assert [v["constraint"] for v in audited.json()["violations"]] == ["no_sanctioned_suppliers"]
    proof = cap.root / "build" / "audited.json"
    human = cap("verify", "--proof", proof, "--enforce-mode", "audit")
    assert (
        human.code == 0 and "critical violation" in human.stdout and "no_sanctioned_suppliers" in human.stdout
    )
    assert cap("verify", "--proof", proof, "--enforce-mode", "relaxed").code == 3
