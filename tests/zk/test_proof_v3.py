"""``cap-proof.v3`` end to end: `cap proof build` (default scheme) proves, `cap verify` and ``POST /verify``
accept it, and every forgery fails with a named ``zk:<list>:<code>`` check.

One proof is built per module through the real CLI (development circuit B=2 d=3: 5 suppliers → 3 batches, 2
UBOs → 1; a fixed salt seed so the batch proofs come from the on-disk proof cache after the first run). The
negatives are edits of that proof, re-signed with the prover's own key where the attack is the prover's, so
only the zero-knowledge checks stand between the forgery and an OK.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import service
from core.anchors import trust_anchors
from core.commitments import RootScheme, Supplier, Ubo, read_suppliers, read_ubos, supplier_leaf, ubo_leaf
from core.manifest import sign_manifest
from core.modes import CheckStatus, EnforcementMode
from core.name_keys import KeyVersion
from core.proof import PROOF_SCHEMA_V3, Proof, parse_proof_bytes, proof_file_bytes, sign_proof
from core.screening import load_lists, screening_key
from core.settings import Settings
from core.verify import Report, verify_proof, verify_proof_bytes
from core.zk import prover
from core.zk.evidence import ScreeningEvidence, screening_root
from core.zk.gaptree import key248
from core.zk.proof_v3 import ZK_EVIDENCE
from core.zk.witness import Circuit, ScreenedLeaf, batch_root, blake_field
from deployments.api.app import create_app
from deployments.cli import demo
from tests.api.conftest import FakeFlows, TestIssuer, api_config, bearer
from tests.cli.conftest import Cap

SALT_SEED = demo.DEMO_SALT_SEED  # the demo's records and seed: both reuse the same cached batch proofs
OTHER_SANCTIONS = 'name,birthdate,nationality\n"HOLDING, Petrov Industrial",,RU\nSomeone Else Entirely,,IR\n'


class V3World:
    def __init__(self, root: Path) -> None:
        self.cap = Cap(root)
        self.cap.env.pop("CAP_PROOF_SCHEME", None)  # the real default
        self.root = root
        self.settings = Settings(data_dir=root / "var", build_dir=root / "build", subject="LEI-TEST-0001")
        self.files = {
            n: self.cap.write(n, t)
            for n, t in (
                ("suppliers.csv", demo.SUPPLIERS),
                ("ubos.csv", demo.UBOS),
                ("sanctions.csv", demo.SANCTIONS),
                ("other.csv", OTHER_SANCTIONS),
                ("high_risk.csv", demo.HIGH_RISK),
                ("policy.yml", demo.POLICY),
            )
        }

    def run(self, *args: str | Path) -> Any:
        result = self.cap(*args)
        assert result.code == 0, result.stderr + result.stdout
        return result

    def build(self) -> Path:
        f, b = self.files, self.root / "build"
        self.run("keys", "keygen", "--owner", "T")
        (self.settings.layout.keys_dir / "zk-salt-seed.hex").write_text(SALT_SEED)
        self.run("commit", "--suppliers", f["suppliers.csv"], "--ubos", f["ubos.csv"])
        self.run(
            "lists", "build", "--csv", f["sanctions.csv"], "--high-risk", f["high_risk.csv"], "--install"
        )
        self.run(
            "lists",
            "build",
            "--csv",
            f["other.csv"],
            "--high-risk",
            f["high_risk.csv"],
            "--out",
            b / "other.json",
        )
        self.run(
            "manifest",
            "build",
            "--commitments",
            b / "commitments.json",
            "--policy",
            f["policy.yml"],
            "--lists",
            b / "lists.json",
        )
        built = self.run(
            "proof", "build", "--manifest", b / "manifest.json", "--policy", f["policy.yml"],
            "--suppliers", f["suppliers.csv"], "--ubos", f["ubos.csv"], "--lists", b / "lists.json",
            "--enforce-mode", "relaxed", "--json",
        )  # fmt: skip
        assert built.json()["scheme"] == PROOF_SCHEMA_V3
        assert "NOT FOR PRODUCTION" in built.stderr
        self.run("zk", "pin", "--dev")
        self.run(
            "proof", "build", "--scheme", "v2", "--manifest", b / "manifest.json",
            "--policy", f["policy.yml"], "--suppliers", f["suppliers.csv"], "--ubos", f["ubos.csv"],
            "--lists", b / "lists.json", "--out", b / "v2.json",
        )  # fmt: skip
        return b / "proof.json"


@pytest.fixture(scope="module")
def v3(tmp_path_factory) -> V3World:
    world = V3World(tmp_path_factory.mktemp("v3"))
    world.proof_path = world.build()
    world.data = world.proof_path.read_bytes()
    return world


def _verify(w: V3World, data: bytes, *, allow_dev: bool = True, **trust: Any) -> Report:
    settings = w.settings.model_copy(update={"zk_allow_dev": allow_dev})
    return verify_proof_bytes(
        data,
        keyring=service.load_local_keyring(settings),
        mode=EnforcementMode.STRICT,
        now=datetime.now(UTC),
        trust=trust_anchors(settings, **trust),
    )


def _failed(report: Report) -> set[str]:
    return {c.id for c in report.checks if c.status is CheckStatus.FAIL}


def _forge(w: V3World, proof: Proof) -> bytes:
    """Re-sign manifest and proof with the prover's own key: only the zk checks can object."""
    signer = service.default_signer(w.settings)
    manifest = sign_manifest(proof.manifest.model_copy(update={"signatures": []}), signer)
    return proof_file_bytes(sign_proof(proof.model_copy(update={"manifest": manifest}), signer))


def _evidence(proof: Proof, rule: str = "no_sanctioned_suppliers") -> ScreeningEvidence:
    (result,) = [r for r in proof.rules if r.rule_id == rule]
    return ScreeningEvidence.model_validate(result.evidence[ZK_EVIDENCE])


def _with_evidence(proof: Proof, ev: ScreeningEvidence, rule: str = "no_sanctioned_suppliers") -> Proof:
    rules = [
        r.model_copy(update={"evidence": {**r.evidence, ZK_EVIDENCE: ev.model_dump(mode="json")}})
        if r.rule_id == rule
        else r
        for r in proof.rules
    ]
    return proof.model_copy(update={"rules": rules})


def _with_commitment(proof: Proof, **update: Any) -> Proof:
    screening = proof.manifest.screening
    assert screening is not None
    changed = screening.model_copy(update={"suppliers": screening.suppliers.model_copy(update=update)})
    return proof.model_copy(update={"manifest": proof.manifest.model_copy(update={"screening": changed})})


def test_the_default_build_is_a_v3_proof_without_keys(v3):
    proof = parse_proof_bytes(v3.data)
    assert proof.schema_ == PROOF_SCHEMA_V3 and proof.manifest.proof.type == PROOF_SCHEMA_V3
    assert proof.manifest.screening is not None and proof.manifest.screening.ubos is not None
    screened = [r.evidence for r in proof.rules if "list_root" in r.evidence]
    assert len(screened) == 2 and all(set(e) == {"list_root", "key_version", ZK_EVIDENCE} for e in screened)
    assert b'"items"' not in v3.data and b"possible_matches" not in v3.data
    assert _evidence(proof).count == 5 and len(_evidence(proof).batches) == 3


def test_cap_verify_accepts_it_only_with_development_vks_allowed(v3):
    ok = v3.cap("verify", "--proof", v3.proof_path, "--allow-dev-zk", "--json")
    assert ok.code == 0, ok.stdout + ok.stderr
    report = ok.json()
    assert report["result"] == "ok" and report["scheme"] == PROOF_SCHEMA_V3
    ids = {c["id"]: c for c in report["checks"]}
    assert ids["zk:suppliers"]["status"] == "ok" and ids["zk:ubos"]["status"] == "ok"
    assert "NOT FOR PRODUCTION" in ids["zk:suppliers"]["message"]
    assert {"attested:commitments_agree", "attested:screened_names", "attested:possible_matches"} <= set(ids)
    # max tier and high-risk count are proved in the circuit, no longer attested
    assert not {"attested:max_supplier_tier", "attested:high_risk_supplier_count"} & set(ids)
    assert "highest tier 2, 0 in high-risk jurisdictions (IR, KP, RU)" in ids["zk:suppliers"]["message"]
    refused = v3.cap("verify", "--proof", v3.proof_path, "--json")
    assert refused.code == 3
    failed = {c["id"]: c["message"] for c in refused.json()["checks"] if c["status"] == "fail"}
    assert "development key" in failed["zk:suppliers:untrusted_vk"]


def test_post_verify_accepts_it_on_a_server_that_allows_development_vks(v3, tmp_path):
    issuer = TestIssuer(tmp_path / "jwks.json")
    for allow, expected in ((True, "OK"), (False, "FAIL")):
        settings = v3.settings.model_copy(update={"zk_allow_dev": allow, "env": "test"})
        client = TestClient(create_app(settings, api_config(issuer.jwks_path), flows=FakeFlows()))
        r = client.post(
            "/verify", json={"proof": json.loads(v3.data)}, headers=bearer(issuer.token("verify:run"))
        )
        assert r.status_code == 200, r.text
        assert r.json()["result"] == expected
        checks = {c["id"]: c["status"] for c in r.json()["checks"]}
        assert checks.get("zk:suppliers" if allow else "zk:suppliers:untrusted_vk") == (
            "ok" if allow else "fail"
        )


def test_cap_verify_labels_v2_not_confidential_and_v3_not(v3):
    text = v3.cap("verify", "--proof", v3.proof_path, "--allow-dev-zk").stdout
    assert "not confidential" not in text and "result OK" in text
    out = v3.cap("verify", "--proof", v3.root / "build" / "v2.json")
    assert out.code == 0 and "cap-proof.v2: not confidential" in out.stdout


def test_honest_proof_verifies_in_process(v3):
    assert _verify(v3, v3.data).result is CheckStatus.OK


def _tampered_batch_root(w: V3World, proof: Proof) -> bytes:
    ev = _evidence(proof)
    first = ev.batches[0]
    forged_root = "0x" + format(int(first.batch_root, 16) ^ 1, "064x")
    batches = (first.model_copy(update={"batch_root": forged_root}), *ev.batches[1:])
    root = screening_root(ev.batch_size, ev.count, [int(b.batch_root, 16) for b in batches])
    ev = ev.model_copy(update={"batches": batches, "screening_root": root})
    return _forge(w, _with_commitment(_with_evidence(proof, ev), screening_root=root))


def _another_list_root(w: V3World, proof: Proof) -> bytes:
    other = load_lists(w.root / "build" / "other.json")
    manifest = proof.manifest.model_copy(update={"sanctions_root": other.sanctions_root})
    rules = [
        r.model_copy(update={"evidence": {**r.evidence, "list_root": other.sanctions_root}})
        if "list_root" in r.evidence
        else r
        for r in proof.rules
    ]
    return _forge(w, proof.model_copy(update={"manifest": manifest, "rules": rules}))


def _another_commitment(w: V3World, proof: Proof) -> bytes:
    others = [Supplier(f"Other Supplier {i}", "DE", 1) for i in range(5)]
    leaves = prover.screened_leaves(others, bytes(32))
    return _forge(
        w, _with_commitment(proof, screening_root=prover.commit(leaves, Circuit(2, 3)).screening_root)
    )


def _wrong_count(w: V3World, proof: Proof) -> bytes:
    return _forge(w, _with_commitment(proof, count=4))


def _batch_omitted(w: V3World, proof: Proof) -> bytes:
    ev = _evidence(proof)
    return _forge(w, _with_evidence(proof, ev.model_copy(update={"batches": ev.batches[:2]})))


def _batch_duplicated(w: V3World, proof: Proof) -> bytes:
    ev = _evidence(proof)
    batches = (ev.batches[0], ev.batches[0], ev.batches[2])
    return _forge(w, _with_evidence(proof, ev.model_copy(update={"batches": batches})))


@pytest.mark.parametrize(
    ("forge", "named"),
    [
        pytest.param(_tampered_batch_root, "zk:suppliers:zk_proof_invalid", id="tampered_public_input"),
        pytest.param(
            _another_list_root, "zk:suppliers:untrusted_list_root", id="proof_for_another_list_root"
        ),
        pytest.param(
            _another_commitment, "zk:suppliers:screening_commitment_mismatch", id="another_commitment"
        ),
        pytest.param(_wrong_count, "zk:suppliers:count_mismatch", id="wrong_count"),
        pytest.param(_batch_omitted, "zk:suppliers:batch_layout", id="batch_omitted"),
        pytest.param(_batch_duplicated, "zk:suppliers:screening_commitment_mismatch", id="batch_duplicated"),
    ],
)
def test_forgeries_signed_by_the_prover_fail_a_named_zk_check(v3, forge, named):
    data = forge(v3, parse_proof_bytes(v3.data))
    report = _verify(v3, data, lists=[v3.root / "build" / "other.json"])
    failed = _failed(report)
    assert report.result is CheckStatus.FAIL
    assert named in failed, failed
    assert not failed & {"proof_signature", "manifest_signature"}  # the prover's own, valid signatures


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        pytest.param("max_supplier_tier", 1, "zk:suppliers:max_tier", id="max_tier_understated"),
        pytest.param("max_supplier_tier", 3, "zk:suppliers:max_tier", id="max_tier_overstated"),
        pytest.param(
            "high_risk_supplier_count", 1, "zk:suppliers:high_risk_count", id="high_risk_count_changed"
        ),
    ],
)
def test_a_disclosed_attribute_the_proofs_contradict_fails(v3, name, value, named):
    # v2 can only report these as the prover's attestation; v3 proves them, so a re-signed lie fails.
    proof = parse_proof_bytes(v3.data)
    report = _verify(v3, _forge(v3, proof.model_copy(update={"public": {**proof.public, name: value}})))
    assert report.result is CheckStatus.FAIL
    assert named in _failed(report)
    assert not _failed(report) & {"proof_signature", "manifest_signature"}


def test_attributes_edited_into_the_evidence_too_fail_the_pairing(v3):
    # The lie told consistently: public value and the batch output both lowered, re-signed.
    proof = parse_proof_bytes(v3.data)
    ev = _evidence(proof)
    batches = [b.model_copy(update={"max_tier": min(b.max_tier, 1)}) for b in ev.batches]
    forged = _with_evidence(proof, ev.model_copy(update={"batches": tuple(batches)}))
    forged = forged.model_copy(update={"public": {**forged.public, "max_supplier_tier": 1}})
    failed = _failed(_verify(v3, _forge(v3, forged)))
    assert "zk:suppliers:zk_proof_invalid" in failed and "zk:suppliers:max_tier" not in failed


def test_wrong_count_also_contradicts_the_disclosed_supplier_count(v3):
    report = _verify(v3, _wrong_count(v3, parse_proof_bytes(v3.data)))
    assert "public:supplier_count" in _failed(report)


def test_a_vk_the_verifier_did_not_pin_is_untrusted(v3):
    for pin in v3.settings.layout.zk_pins_dir.glob("*.json"):
        pin.rename(pin.with_suffix(".off"))
    try:
        report = _verify(v3, v3.data)
    finally:
        for pin in v3.settings.layout.zk_pins_dir.glob("*.off"):
            pin.rename(pin.with_suffix(".json"))
    messages = {c.id: c.message for c in report.checks}
    assert "not pinned" in messages["zk:suppliers:untrusted_vk"] and "zk:ubos:untrusted_vk" in messages


def test_a_development_vk_fails_without_the_development_setting(v3):
    failed = _failed(_verify(v3, v3.data, allow_dev=False))
    assert {"zk:suppliers:untrusted_vk", "zk:ubos:untrusted_vk"} <= failed


def test_a_proof_relabelled_between_versions_fails_its_signature(v3):
    proof = parse_proof_bytes(v3.data)
    relabelled = proof.model_copy(update={"schema_": "cap-proof.v2"})
    report = verify_proof(
        relabelled,
        keyring=service.load_local_keyring(v3.settings),
        mode=EnforcementMode.STRICT,
        now=datetime.now(UTC),
        trust=trust_anchors(v3.settings.model_copy(update={"zk_allow_dev": True})),
    )
    assert {"proof_signature", "evidence:no_sanctioned_suppliers"} <= _failed(report)


def _traces(leaf: bytes, names: list[str]) -> set[str]:
    """Everything a prover could leak about one record: its keys (every version), its BLAKE3 leaf."""
    texts = {leaf.hex(), str(blake_field(leaf)), f"{blake_field(leaf):064x}"}
    for name in names:
        for version in KeyVersion:
            key = screening_key(name, version)
            texts |= {key.hex(), key.hex()[:62], str(key248(key)), f"{key248(key):064x}"}
    return texts


def _dictionary_attack(data: bytes, candidates: list[Supplier], ubos: list[Ubo]) -> set[str]:
    """Names recovered from a proof document by searching it for every candidate's traces and by
    rebuilding batch roots from guessed records under guessable salts (0, 1), alone and in pairs."""
    text = data.decode()
    found = {c.name for c in candidates if any(t in text for t in _traces(supplier_leaf(c), [c.name]))}
    found |= {u.name for u in ubos if any(t in text for t in _traces(ubo_leaf(u), [u.name]))}
    proof = parse_proof_bytes(data)
    roots = set()
    for r in proof.rules:
        if ZK_EVIDENCE in r.evidence:
            roots |= {
                int(b.batch_root, 16)
                for b in ScreeningEvidence.model_validate(r.evidence[ZK_EVIDENCE]).batches
            }
    records = [(c.name, supplier_leaf(c)) for c in candidates] + [(u.name, ubo_leaf(u)) for u in ubos]
    leaves = [
        (name, ScreenedLeaf(key248(screening_key(name, version)), salt, blake_field(leaf)))
        for name, leaf in records
        for version in KeyVersion
        for salt in (0, 1)
    ]
    circuit = Circuit(2, 3)
    found |= {name for name, leaf in leaves if batch_root([leaf], circuit) in roots}
    for (a, la), (b, lb) in itertools.permutations(leaves, 2):
        if batch_root([la, lb], circuit) in roots:
            found |= {a, b}
    return found


def test_a_dictionary_attack_on_the_whole_v3_proof_recovers_nothing(v3):
    suppliers = read_suppliers(v3.files["suppliers.csv"])
    ubos = read_ubos(v3.files["ubos.csv"])
    decoys = [Supplier(f"Decoy Supplier {i} GmbH", "DE", 1 + i % 3) for i in range(6)]
    assert _dictionary_attack(v3.data, [*suppliers, *decoys], ubos) == set()
    # control: the same attack on the v2 proof of the same records recovers every supplier and UBO
    v2 = (v3.root / "build" / "v2.json").read_bytes()
    assert _dictionary_attack(v2, [*suppliers, *decoys], ubos) == {x.name for x in [*suppliers, *ubos]}


def test_a_v3_manifest_without_screening_commitment_fails(v3):
    proof = parse_proof_bytes(v3.data)
    bare = proof.model_copy(update={"manifest": proof.manifest.model_copy(update={"screening": None})})
    failed = _failed(_verify(v3, _forge(v3, bare)))
    assert {"zk:commitment", "evidence:no_sanctioned_suppliers"} <= failed


def test_sap_ingest_builds_a_v3_proof_and_verifies_it_with_the_pinned_vk(tmp_path):
    from core.anchors import install_pin
    from core.sap.pipeline import ingest, load_ingest_config
    from core.zk.service import dev_pin
    from deployments.sap_mock import create_app as create_sap
    from deployments.sap_mock import running_server
    from deployments.sap_mock_data import generate_dataset
    from tests.integration.test_sap_pilot import NOW, SECRET_ENV, write_config

    sanctions = tmp_path / "sanctions.csv"
    sanctions.write_text(demo.SANCTIONS)
    settings = Settings(data_dir=tmp_path / "var", build_dir=tmp_path / "build", proof_scheme="v3")
    service.keygen(settings, now=NOW)
    (settings.layout.keys_dir / "zk-salt-seed.hex").write_text(SALT_SEED)
    install_pin(settings, dev_pin(Circuit(2, 3)))
    outcomes = {}
    with running_server(create_sap(generate_dataset(3, 6, include_fixture=False), 2)) as url:
        path = write_config(
            tmp_path, url, odata_version=2, sanctions=[{"path": str(sanctions), "format": "csv"}]
        )
        for allow in (True, False):
            run = settings.model_copy(update={"zk_allow_dev": allow})
            outcomes[allow] = ingest(load_ingest_config(path), run, NOW, env=SECRET_ENV).verification
    assert outcomes[True].result is CheckStatus.OK, outcomes[True]
    assert "zk:suppliers:untrusted_vk" in outcomes[False].failed_checks


def test_a_v3_possible_match_count_must_be_a_count(v3):
    proof = parse_proof_bytes(v3.data)
    bad = proof.model_copy(update={"public": {**proof.public, "possible_match_count": -1}})
    assert "public:possible_match_count" in _failed(_verify(v3, _forge(v3, bad)))


def test_a_pin_whose_vk_is_not_its_hash_is_refused(v3, tmp_path):
    from core.anchors import read_pin
    from core.errors import IntegrityError

    (pin,) = v3.settings.layout.zk_pins_dir.glob("*.json")
    doc = json.loads(pin.read_text())
    doc["vk"]["ic"][0][0] = str(int(doc["vk"]["ic"][0][0]) + 1)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError) as exc:
        read_pin(forged)
    assert exc.value.details["file"] == str(forged)


def test_a_listed_supplier_refuses_v3_and_names_v2(v3, tmp_path):
    from core.errors import InvalidInputError
    from core.prover import ProofScheme

    listed = v3.cap.write("listed.csv", demo.SUPPLIERS + "Petrov Industrial Holding GmbH,DE,1\n")
    now = datetime.now(UTC)
    commitments = service.commit_files(listed, v3.files["ubos.csv"], RootScheme.MERKLE, now)
    lists = load_lists(v3.root / "build" / "lists.json")
    loaded = service.load_policy(v3.files["policy.yml"])
    with pytest.raises(InvalidInputError) as exc:
        service.prove(
            v3.settings, manifest=service.make_manifest(v3.settings, commitments, loaded, lists, now),
            loaded=loaded, suppliers=listed, ubos=v3.files["ubos.csv"], lists=lists,
            mode=EnforcementMode.RELAXED, enforce=False, now=now, scheme=ProofScheme.V3,
        )  # fmt: skip
    assert exc.value.code == "v3_listed_name"
    assert "no_sanctioned_suppliers" in exc.value.message and "--scheme v2" in exc.value.message


# ---------------------------------------------------------------- auditor openings (`cap zk open`)


def _open(v3: V3World, *args: str | Path) -> Any:
    return v3.cap("zk", "open", "--proof", v3.proof_path, "--suppliers", v3.files["suppliers.csv"], *args)


def test_an_auditor_checks_one_opened_supplier_against_both_commitments(v3):
    suppliers = read_suppliers(v3.files["suppliers.csv"])
    target = v3.root / "build" / "opening.json"
    opened = _open(v3, "--name", suppliers[3].name, "--out", target)
    assert opened.code == 0, opened.stderr + opened.stdout
    text = target.read_text()
    assert suppliers[3].name in text
    assert not [s.name for i, s in enumerate(suppliers) if i != 3 and s.name in text]  # one supplier only
    checked = v3.cap("zk", "check-opening", target, "--proof", v3.proof_path, "--json")
    assert checked.code == 0, checked.stdout + checked.stderr
    assert checked.json() == {"ok": True, "row": 3, "name": suppliers[3].name, "failures": []}


def _opening(v3: V3World, row: int) -> dict[str, Any]:
    from core.zk.service import open_supplier_row

    suppliers = read_suppliers(v3.files["suppliers.csv"])
    seed = bytes.fromhex(SALT_SEED)
    return open_supplier_row(parse_proof_bytes(v3.data), suppliers, seed, row=row, name=None).model_dump(
        mode="json", by_alias=True
    )


def _check(v3: V3World, doc: dict[str, Any]) -> list[str]:
    from core.zk.opening import OpeningDocument
    from core.zk.service import check_supplier_opening

    return check_supplier_opening(parse_proof_bytes(v3.data), OpeningDocument.model_validate(doc))


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("tier", 9, "BLAKE3 supplier commitment"),
        ("row", 2, "row of the proved batch"),
        ("salt", "0x" + "0" * 63 + "1", "Poseidon leaf"),
    ],
)
def test_a_changed_opening_fails_the_auditors_check(v3, field, value, named):
    doc = _opening(v3, 3)
    assert _check(v3, doc) == []
    doc["opening"][field] = value
    assert any(named in failure for failure in _check(v3, doc))


def test_a_changed_opening_fails_cap_zk_check_opening_with_exit_3(v3):
    doc = _opening(v3, 1)
    doc["opening"]["jurisdiction"] = "FR"
    target = v3.cap.write("opening-tampered.json", json.dumps(doc))
    checked = v3.cap("zk", "check-opening", target, "--proof", v3.proof_path)
    assert checked.code == 3, checked.stdout + checked.stderr
    assert "FAIL record is not at this row of the BLAKE3 supplier commitment" in checked.stdout


def test_an_opening_of_another_proof_is_refused(v3):
    doc = _opening(v3, 0)
    doc["subject"] = "LEI-SOMEONE-ELSE"
    assert _check(v3, doc) == ["the opening names another proof (subject or supplier_root differ)"]


def test_opening_refuses_other_records_a_v2_proof_and_an_unknown_name(v3):
    from core.errors import InvalidInputError, NotFoundError
    from core.zk.service import open_supplier_row

    other = v3.cap.write("other-suppliers.csv", demo.SUPPLIERS.replace(",1\n", ",2\n", 1))
    wrong = v3.cap("zk", "open", "--proof", v3.proof_path, "--suppliers", other, "--row", "0")
    assert wrong.code == 2 and "not the ones the proof commits to" in wrong.stderr
    proof, seed = parse_proof_bytes(v3.data), bytes.fromhex(SALT_SEED)
    suppliers = read_suppliers(v3.files["suppliers.csv"])
    v2 = parse_proof_bytes((v3.root / "build" / "v2.json").read_bytes())
    with pytest.raises(InvalidInputError, match=r"needs a cap-proof\.v3"):
        open_supplier_row(v2, suppliers, seed, row=0, name=None)
    with pytest.raises(NotFoundError, match="Nobody GmbH"):
        open_supplier_row(proof, suppliers, seed, row=None, name="Nobody GmbH")
    with pytest.raises(InvalidInputError, match="outside the 5 committed"):
        open_supplier_row(proof, suppliers, seed, row=99, name=None)
    with pytest.raises(InvalidInputError, match="exactly one of row or name"):
        open_supplier_row(proof, suppliers, seed, row=1, name="ACME GmbH")
    twice = [*suppliers, suppliers[0]]
    with pytest.raises(InvalidInputError, match="not the ones"):
        open_supplier_row(proof, twice, seed, row=None, name="ACME GmbH")


def test_opening_with_another_salt_seed_is_refused_before_anything_is_written(v3):
    from core.errors import InvalidInputError
    from core.zk.service import open_supplier_row

    proof = parse_proof_bytes(v3.data)
    suppliers = read_suppliers(v3.files["suppliers.csv"])
    with pytest.raises(InvalidInputError, match="salt seed did not build"):
        open_supplier_row(proof, suppliers, bytes(32), row=1, name=None)
    assert open_supplier_row(proof, suppliers, bytes.fromhex(SALT_SEED), row=1, name=None).opening.row == 1


def test_cap_drift_reads_a_v3_proof_like_a_v2_one(v3):
    """Same records, same policy, same signer: the v2 and v3 proofs do not drift from each other."""
    drift = v3.cap("drift", "--baseline", v3.proof_path, "--current", v3.root / "build" / "v2.json", "--json")
    assert drift.code == 0, drift.stdout + drift.stderr  # v3 built first: time moves forward
    assert drift.json()["score"] == 0, drift.stdout


def test_cap_smoke_takes_a_v3_proof_for_its_signed_proof_check(v3):
    from deployments.cli.smoke import _read_proof

    assert _read_proof(v3.proof_path)["schema"] == PROOF_SCHEMA_V3  # it refused every v3 proof before
    manifest = v3.cap.write("not-a-proof.json", json.dumps({"schema": "cap-proof.v9"}))
    refused = v3.cap("smoke", "--url", "http://127.0.0.1:9", "--proof", manifest)
    assert refused.code == 2 and "cap-proof.v2 or cap-proof.v3" in refused.stderr


def test_a_verification_run_reverifies_the_registered_v3_proof_against_the_pins(v3):
    """The verification-run tasks over the registry `cap proof build` filled (a v3 and a v2 entry)."""
    from tasks import verification as t

    reports = {}
    for allow in (True, False):
        settings = v3.settings.model_copy(update={"zk_allow_dev": allow})
        entries = t.load_entries.fn(settings)
        trust = t.load_trust.fn(settings)
        reports[allow] = {
            parse_proof_bytes(e.proof_json.encode()).schema_: r
            for e, r in zip(
                entries,
                t.reverify_entries.fn(entries, trust, EnforcementMode.STRICT, datetime.now(UTC)),
                strict=True,
            )
        }
    assert set(reports[True]) == {PROOF_SCHEMA_V3, "cap-proof.v2"}
    assert {s: r.result for s, r in reports[True].items()} == {s: CheckStatus.OK for s in reports[True]}
    assert "zk:suppliers:untrusted_vk" in _failed(reports[False][PROOF_SCHEMA_V3])
    assert reports[False]["cap-proof.v2"].result is CheckStatus.OK
