"""Ed25519 helpers: a signature is valid only for its key, its bytes and a well-formed key (core/signing.py).

Each case kills a mutant of core/signing.py (``make mutation MODULE=core/signing.py``).
"""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from core.errors import InvalidInputError
from core.signing import ALG, Ed25519Signer, derive_kid, load_public_key, public_key_b64, verify_signature

SIGNER = Ed25519Signer.from_seed(bytes(range(32)))
OTHER = Ed25519Signer.from_seed(bytes(range(1, 33)))
DATA = b"manifest bytes"


def test_alg_name_and_kid_vector():
    """Fixed seed -> fixed public key and KID (first 16 bytes of BLAKE3 over the base64 text)."""
    assert ALG == "Ed25519"
    assert SIGNER.public_key_b64 == "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
    assert SIGNER.kid == derive_kid(SIGNER.public_key_b64)
    assert len(SIGNER.kid) == 32
    assert SIGNER.kid != OTHER.kid
    assert public_key_b64(load_public_key(SIGNER.public_key_b64)) == SIGNER.public_key_b64


def test_signature_verifies_only_for_its_key_and_data():
    signature = SIGNER.sign(DATA)
    assert len(signature) == 64
    assert verify_signature(SIGNER.public_key_b64, signature, DATA)
    assert not verify_signature(OTHER.public_key_b64, signature, DATA)
    assert not verify_signature(SIGNER.public_key_b64, signature, DATA + b"!")


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(b"", id="empty"),
        pytest.param(SIGNER.sign(DATA)[:63], id="63_bytes"),
        pytest.param(SIGNER.sign(DATA) + b"\x00", id="65_bytes"),
    ],
)
def test_signature_of_wrong_length_is_invalid_not_an_error(signature):
    assert verify_signature(SIGNER.public_key_b64, signature, DATA) is False


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("not base64!", id="not_base64"),
        pytest.param(base64.b64encode(bytes(31)).decode(), id="31_bytes"),
        pytest.param(base64.b64encode(bytes(33)).decode(), id="33_bytes"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_public_key_never_makes_a_signature_valid(key):
    assert verify_signature(key, SIGNER.sign(DATA), DATA) is False


@pytest.mark.parametrize(
    ("key", "message", "found"),
    [
        pytest.param("@@@@", "public key is not valid base64", None, id="not_base64"),
        pytest.param(base64.b64encode(bytes(31)).decode(), "public key must be 32 bytes", 31, id="short"),
    ],
)
def test_load_public_key_names_the_field(key, message, found):
    with pytest.raises(InvalidInputError) as caught:
        load_public_key(key, field="keys[0].public_key")
    assert caught.value.message == message
    assert caught.value.details.get("field") == "keys[0].public_key"
    assert caught.value.details.get("found") == found


def test_load_public_key_default_field_name():
    with pytest.raises(InvalidInputError) as caught:
        load_public_key("@@@@")
    assert caught.value.details["field"] == "public_key"


def test_pem_round_trip_keeps_the_key():
    again = Ed25519Signer.from_pem(SIGNER.to_pem())
    assert again.kid == SIGNER.kid
    assert verify_signature(SIGNER.public_key_b64, again.sign(DATA), DATA)
    assert SIGNER.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_from_pem_refuses_garbage_and_other_algorithms_naming_the_source():
    with pytest.raises(InvalidInputError) as caught:
        Ed25519Signer.from_pem(b"garbage", source="keys/a.pem")
    assert caught.value.message == "not a PKCS#8 PEM private key"
    assert caught.value.details["file"] == "keys/a.pem"
    ec_pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidInputError) as caught:
        Ed25519Signer.from_pem(ec_pem, source="keys/b.pem")
    assert caught.value.message == "private key is not Ed25519"
    assert caught.value.details["file"] == "keys/b.pem"
    with pytest.raises(InvalidInputError) as caught:
        Ed25519Signer.from_pem(b"garbage")
    assert caught.value.details["file"] == "private key"


def test_generated_signers_differ_and_repr_shows_only_the_kid():
    a, b = Ed25519Signer.generate(), Ed25519Signer.generate()
    assert a.kid != b.kid
    assert repr(a) == f"Ed25519Signer(kid={a.kid})"
