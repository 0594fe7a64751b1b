"""The proof document (core/proof.py): parsing refuses what is not a canonical cap-proof.v2 and names
why; the stored, signed and hashed byte forms are exactly the documented ones; a signature is checked
over those bytes with the documented algorithm only.

Each test kills mutants of core/proof.py (``make mutation MODULE=core/proof.py``).
"""

import base64
import json

import pytest

from core.errors import IntegrityError, InvalidInputError
from core.proof import (
    PROOF_SCHEMA,
    ProofForms,
    check_proof_signature,
    parse_proof_bytes,
    parse_proof_obj,
    proof_file_bytes,
    proof_signing_bytes,
    sign_proof,
)
from core.signing import Ed25519Signer, verify_signature
from tests.world import World

OTHER = Ed25519Signer.from_seed(b"\x05" * 32)


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def good(world):
    return world.build().proof


def test_signed_bytes_are_the_documented_domain_and_canonical_json(world, good):
    """docs/formats/proof.md: Ed25519 over "cap-proof.v2\\n" + canonical JSON without the signature."""
    body = proof_file_bytes(good.model_copy(update={"signature": None})).removesuffix(b"\n")
    assert proof_signing_bytes(good) == b"cap-proof.v2\n" + body
    assert ProofForms(good).signing_bytes() == b"cap-proof.v2\n" + body
    raw = base64.b64decode(good.signature.sig)
    assert verify_signature(world.signer.public_key_b64, raw, b"cap-proof.v2\n" + body)
    assert good.signature.alg == "Ed25519" and good.signature.kid == world.signer.kid


def test_file_bytes_are_canonical_json_with_one_newline(good):
    data = proof_file_bytes(good)
    assert data.endswith(b"}\n") and not data.endswith(b"\n\n")
    assert json.loads(data) == json.loads(ProofForms(good).file_bytes())
    assert ProofForms(good).file_bytes() == data
    unsigned = good.model_copy(update={"signature": None})
    assert ProofForms(unsigned).file_bytes() == proof_file_bytes(unsigned)
    assert b'"signature"' not in ProofForms(unsigned).file_bytes()
    assert data.index(b'"signature":') > data.index(b'"enforcement":')


def test_manifest_forms(good):
    forms = ProofForms(good)
    manifest = json.loads(forms.manifest_bytes())
    assert manifest["signatures"] == [s.model_dump() for s in good.manifest.signatures]
    signing = forms.manifest_signing_bytes()
    assert signing.startswith(b"manifest.v1.0\n")
    assert json.loads(signing.removeprefix(b"manifest.v1.0\n"))["signatures"] == []


def test_ir_hash_is_over_the_ir_with_an_empty_hash_field(good):
    from core.canonical import dumps
    from core.digest import sha3_prefixed

    ir = json.loads(ProofForms(good).manifest_bytes() and dumps(ProofForms(good).obj["ir"]))
    assert ProofForms(good).ir_hash() == sha3_prefixed(dumps({**ir, "ir_hash": ""})) == good.ir_hash


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: None, id="unsigned"),
        pytest.param(lambda s: s.model_copy(update={"alg": "Ed448"}), id="other_alg"),
        pytest.param(lambda s: s.model_copy(update={"sig": s.sig + "!"}), id="not_base64"),
        pytest.param(lambda s: s.model_copy(update={"sig": s.sig[:-4]}), id="short"),
    ],
)
def test_signature_check_refuses_what_is_not_an_ed25519_signature_over_the_proof(world, good, edit):
    proof = good.model_copy(update={"signature": edit(good.signature)})
    assert check_proof_signature(proof, world.signer.public_key_b64) is False
    assert check_proof_signature(good, world.signer.public_key_b64) is True
    assert check_proof_signature(good, OTHER.public_key_b64) is False


def test_signature_check_without_precomputed_bytes_covers_the_whole_proof(world, good):
    changed = good.model_copy(update={"created_at": "2026-03-02T12:00:00Z"})
    assert check_proof_signature(changed, world.signer.public_key_b64) is False
    assert check_proof_signature(sign_proof(changed, world.signer), world.signer.public_key_b64) is True
    assert check_proof_signature(good, world.signer.public_key_b64, proof_signing_bytes(changed)) is False


@pytest.mark.parametrize(
    ("obj", "message", "field"),
    [
        pytest.param([], "proof is not a JSON object", None, id="list"),
        pytest.param({}, "not a cap-proof.v2 or v3 document", "schema", id="no_schema"),
        pytest.param({"schema": "cap-proof.v1"}, "not a cap-proof.v2 or v3 document", "schema", id="v1"),
    ],
)
def test_parse_refuses_what_is_not_a_proof_naming_file_and_field(obj, message, field):
    with pytest.raises(InvalidInputError) as exc:
        parse_proof_obj(obj, "p.json")
    assert exc.value.message == message
    assert exc.value.details.get("file") == "p.json"
    assert exc.value.details.get("field") == field
    if field:
        assert exc.value.details["expected"] == f"{PROOF_SCHEMA} or cap-proof.v3"


def test_parse_names_the_first_bad_field(good):
    obj = json.loads(proof_file_bytes(good))
    del obj["policy_id"]
    with pytest.raises(InvalidInputError) as exc:
        parse_proof_obj(obj, "p.json")
    assert exc.value.details["field"] == "policy_id"
    assert exc.value.details["expected"] == PROOF_SCHEMA
    assert exc.value.message.startswith("invalid proof: ")


def test_parse_default_source_is_named(good):
    with pytest.raises(InvalidInputError) as exc:
        parse_proof_obj([])
    assert exc.value.details["file"] == "<proof>"
    with pytest.raises(IntegrityError) as exc2:
        parse_proof_bytes(proof_file_bytes(good) + b"\n")
    assert exc2.value.details["file"] == "<proof>"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d + b"\n", id="two_newlines"),
        pytest.param(lambda d: b" " + d, id="leading_space"),
        pytest.param(lambda d: json.dumps(json.loads(d), indent=1).encode(), id="indented"),
    ],
)
def test_bytes_that_are_not_the_canonical_form_are_an_integrity_error(good, mutate):
    with pytest.raises(IntegrityError) as exc:
        parse_proof_bytes(mutate(proof_file_bytes(good)), "p.json")
    assert exc.value.message == "proof bytes are not in canonical form (edited after signing?)"
    assert exc.value.details["file"] == "p.json"


def test_canonical_bytes_with_or_without_the_newline_parse(good):
    data = proof_file_bytes(good)
    assert parse_proof_bytes(data, "p.json") == good
    assert parse_proof_bytes(data.removesuffix(b"\n"), "p.json") == good


def test_a_value_the_canonical_form_cannot_hold_is_an_integrity_error(good):
    obj = json.loads(proof_file_bytes(good))
    obj["rules"][0]["evidence"]["weight"] = 1.5  # floats are not allowed in signed payloads
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(IntegrityError) as exc:
        parse_proof_bytes(data, "p.json")
    assert exc.value.message == "proof is not canonical: floating-point number in canonical data"
    assert exc.value.details["file"] == "p.json"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b'{"schema": "cap-proof.v2",', "proof is not JSON: ", id="truncated"),
        pytest.param(b"\xff{}", "proof is not UTF-8", id="not_utf8"),
    ],
)
def test_bytes_that_are_not_json_name_the_file_and_the_expected_schema(data, message):
    """A damaged proof file: the user learns which file, that it is not a proof, and what was expected."""
    with pytest.raises(InvalidInputError) as exc:
        parse_proof_bytes(data, "p.json")
    assert exc.value.message.startswith(message)
    assert exc.value.details["file"] == "p.json"
    assert exc.value.details["expected"] == PROOF_SCHEMA


def test_a_bad_field_in_stored_bytes_names_the_file(good):
    obj = json.loads(proof_file_bytes(good))
    obj["enforcement"]["mode"] = "lenient"
    with pytest.raises(InvalidInputError) as exc:
        parse_proof_bytes(json.dumps(obj).encode(), "p.json")
    assert exc.value.details["file"] == "p.json"
    assert exc.value.details["field"] == "enforcement.mode"
    with pytest.raises(InvalidInputError) as exc2:
        parse_proof_obj(obj, "q.json")
    assert exc2.value.details["file"] == "q.json"
