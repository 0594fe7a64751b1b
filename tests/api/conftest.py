"""API test fixtures: a data directory with the test world's keyring, a token issuer, a fake flow gateway."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from core.keyring import save_keyring
from core.policy_store import PolicyStore
from core.proof import proof_file_bytes
from core.registry import Registry
from core.screening import save_lists
from core.settings import Settings
from deployments.api.app import create_app
from deployments.api.config import ApiConfig
from deployments.api.flows import FlowRunInfo
from tests.world import World

ISSUER = "https://issuer.test"
AUDIENCE = "cap-verifier"


class TestIssuer:
    """An RS256 and an ES256 key published in a JWKS file; mints tokens with any claim overridden."""

    __test__ = False

    def __init__(self, jwks_path: Path) -> None:
        self.jwks_path = jwks_path
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_kid, self.ec_kid = "rsa-1", "ec-1"
        self.publish()

    def jwks(self) -> dict[str, Any]:
        r = json.loads(RSAAlgorithm.to_jwk(self.rsa.public_key()))
        e = json.loads(ECAlgorithm.to_jwk(self.ec.public_key()))
        r.update(kid=self.rsa_kid, alg="RS256", use="sig")
        e.update(kid=self.ec_kid, alg="ES256", use="sig")
        return {"keys": [r, e]}

    def publish(self) -> None:
        self.jwks_path.write_text(json.dumps(self.jwks()))

    def rotate_rsa(self, kid: str) -> None:
        self.rsa, self.rsa_kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), kid
        self.publish()

    def claims(self, scope: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "tester",
            "iat": now,
            "nbf": now - 1,
            "exp": now + 300,
            "scope": scope,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self, scope: str = "admin:full", *, alg: str = "RS256", kid: str | None = None, **claims: Any
    ) -> str:
        key = self.rsa if alg == "RS256" else self.ec
        default_kid = self.rsa_kid if alg == "RS256" else self.ec_kid
        return jwt.encode(
            self.claims(scope, **claims), key, algorithm=alg, headers={"kid": kid or default_kid}
        )


@dataclass
class FakeFlows:
    """A FlowGateway that records triggers; ``down`` makes it behave like an unreachable Prefect."""

    triggered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False

    async def trigger(self, deployment: str, parameters: dict[str, Any]) -> FlowRunInfo:
        self._check()
        self.triggered.append((deployment, parameters))
        return FlowRunInfo(
            flow_run_id=str(uuid.uuid4()),
            deployment=deployment,
            state_type="SCHEDULED",
            state_name="Scheduled",
        )

    async def read_run(self, run_id: uuid.UUID) -> FlowRunInfo:
        self._check()
        return FlowRunInfo(
            flow_run_id=str(run_id), name="brave-otter", state_type="COMPLETED", state_name="Completed"
        )

    def _check(self) -> None:
        from deployments.api.flows import FlowsUnavailableError

        if self.down:
            raise FlowsUnavailableError("Prefect API unreachable: ConnectError")


def prepare_data_dir(root: Path, world: World) -> Settings:
    settings = Settings(data_dir=root, env="test")
    save_keyring(settings.layout.keyring, world.keyring)
    if world.lists_file is not None:  # the server trusts the lists the world's proofs were screened against
        settings.layout.lists_dir.mkdir(parents=True, exist_ok=True)
        save_lists(settings.layout.lists_dir / "lists.json", world.lists_file)
    Registry(settings.layout.registry_db).close()
    PolicyStore(settings.layout.policy_db).close()
    return settings


def api_config(jwks: Path, **overrides: Any) -> ApiConfig:
    return ApiConfig(issuer=ISSUER, audience=AUDIENCE, jwks_file=jwks, leeway_seconds=5, **overrides)


@pytest.fixture(scope="session")
def world() -> World:
    return World(lists_built_at=datetime.now(UTC))  # the API verifies on the real clock: fresh lists


@pytest.fixture(scope="session")
def proof_doc(world: World) -> dict[str, Any]:
    return json.loads(proof_file_bytes(world.build().proof))


@pytest.fixture
def issuer(tmp_path: Path) -> TestIssuer:
    return TestIssuer(tmp_path / "jwks.json")


@pytest.fixture
def settings(tmp_path: Path, world: World) -> Settings:
    return prepare_data_dir(tmp_path / "var", world)


@pytest.fixture
def flows() -> FakeFlows:
    return FakeFlows()


@pytest.fixture
def client(settings: Settings, issuer: TestIssuer, flows: FakeFlows) -> TestClient:
    app = create_app(settings, api_config(issuer.jwks_path), flows=flows)
    return TestClient(app, raise_server_exceptions=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
