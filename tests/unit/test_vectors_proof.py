"""The committed commitment and proof vectors check out against the implementation."""

import base64
import json
from datetime import timedelta

import pytest

from core.commitments import RootScheme, commit, parse_suppliers, parse_ubos
from core.errors import InvalidInputError
from core.keyring import Keyring
from core.merkle import InclusionProof, verify_inclusion
from core.modes import CheckStatus, EnforcementMode
from core.screening import ListsFile
from core.trust import TrustAnchors, TrustedLists
from core.verify import verify_proof_bytes
from tests.vectorgen import VECTORS_DIR
from tests.world import NOW


def _load(area):
    return sorted((VECTORS_DIR / area).glob("*.json"))


@pytest.mark.parametrize("path", _load("commitments"), ids=lambda p: p.stem)
def test_commitment_vectors(path):
    v = json.loads(path.read_text())
    if "expected_error" in v:
        with pytest.raises(InvalidInputError) as err:
            parse_suppliers(v["suppliers_csv"], "suppliers.csv")
        assert {
            "code": err.value.code,
            "line": err.value.details.get("line"),
            "column": err.value.details.get("column"),
        } == v["expected_error"]
        return
    c = commit(parse_suppliers(v["suppliers_csv"]), parse_ubos(v["ubos_csv"]), RootScheme(v["scheme"]), "x")
    for key, value in v["expected"].items():
        if key != "created_at":
            assert getattr(c, key) == value, key
    root = bytes.fromhex(c.supplier_root[2:])
    for p in v.get("inclusion_proofs", []):
        proof = InclusionProof(index=p["index"], tree_size=p["tree_size"], path=p["path"])
        assert verify_inclusion(bytes.fromhex(p["leaf"][2:]), proof, root)


def test_original_flat_vector_is_the_documented_one():
    v = json.loads((VECTORS_DIR / "commitments" / "original_flat.json").read_text())
    assert (
        v["expected"]["company_commitment_root"]
        == "0x83a8779d0d7e3a7590133318265569f2651a4f8090afcae880741efcfc898ae5"
    )
    assert v["first_leaf"] == "0x31942afffb1e91955bc3ba208797f071874c442f4133bb9e49cce062580b40d3"


@pytest.mark.parametrize("path", _load("proof"), ids=lambda p: p.stem)
def test_proof_vectors(path):
    v = json.loads(path.read_text())
    keyring = Keyring.model_validate(v["keyring"])
    trusted = tuple(
        TrustedLists(origin="vector", lists=ListsFile.model_validate(doc)) for doc in v["trusted_lists"]
    )
    trust = TrustAnchors(lists=trusted, max_list_age=timedelta(days=v["max_list_age_days"]))
    report = verify_proof_bytes(
        base64.b64decode(v["proof_b64"]),
        keyring=keyring,
        mode=EnforcementMode(v["mode"]),
        now=NOW,
        trust=trust,
    )
    assert report.result is CheckStatus(v["expected_result"])
    assert sorted(c.id for c in report.checks if c.status is CheckStatus.FAIL) == v["expected_failing_checks"]
