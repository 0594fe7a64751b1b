"""openapi/openapi.yaml is what the app generates: OAuth2 client credentials, 16 scopes, per-route scopes."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.auth import Scope
from deployments.api.openapi import document, document_text

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.yaml"


def test_committed_document_matches_the_app():
    assert COMMITTED.read_text(encoding="utf-8") == document_text(), "run `cap openapi` to regenerate"


def test_oauth2_client_credentials_with_all_sixteen_scopes():
    scheme = document()["components"]["securitySchemes"]["oauth2"]
    assert set(scheme["flows"]["clientCredentials"]["scopes"]) == {s.value for s in Scope}


def test_every_protected_route_names_its_scope():
    paths = yaml.safe_load(COMMITTED.read_text())["paths"]
    assert paths["/verify"]["post"]["security"] == [{"oauth2": ["verify:run"]}]
    assert paths["/policy/{policy_id}"]["get"]["security"] == [{"oauth2": ["policy:read"]}]
    assert paths["/admin/keys/{kid}/revoke"]["post"]["security"] == [{"oauth2": ["keys:revoke"]}]
    assert "security" not in paths["/healthz"]["get"]
