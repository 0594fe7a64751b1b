"""The attack suite reuses the API fixtures: the test world's data directory, a JWKS issuer, fake flows."""

from tests.api.conftest import client, flows, issuer, proof_doc, settings, world  # noqa: F401
