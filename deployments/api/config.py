"""API configuration from ``CAP_*`` variables, built by the app factory (never at import).

The embedded default (``CAP_ENV=dev`` and no JWKS configured) trusts the development issuer's
``<data>/dev-issuer/jwks.json``; any other environment must name its issuer and a JWKS URL or file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from core.auth import (
    DEFAULT_JWKS_COOLDOWN_S,
    DEFAULT_JWKS_TTL_S,
    DEFAULT_LEEWAY_S,
    DEFAULT_MAX_LIFETIME_S,
)
from core.dev_issuer import DEV_AUDIENCE, DEV_ISSUER, DevIssuer, require_dev
from core.errors import ConfigError
from core.settings import Settings

API_VERSION = "0.12.0"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# POST /verify carries the whole proof: ~2.7 KB per screened supplier, so 32 MiB holds ~12,000 suppliers.
DEFAULT_MAX_VERIFY_BODY_BYTES = 32 * 1024 * 1024
# Admin routes take a handful of parameters (backup id, key kid, reason): 64 KiB is generous.
DEFAULT_MAX_ADMIN_BODY_BYTES = 64 * 1024
# Bodies over 1 MiB read at once per worker; the next one is 503 ``busy`` (a 32 MiB proof peaks ~340 MB).
DEFAULT_MAX_LARGE_BODIES = 4
DEFAULT_TOKEN_URL = "https://auth.example.com/oauth/token"  # noqa: S105 - the original's, for the OpenAPI document only


class FlowNames(BaseModel):
    """The Prefect deployments the admin routes trigger (``flow name/deployment name``), in one place."""

    model_config = ConfigDict(frozen=True)
    backup: str = "backup/backup-daily"
    restore: str = "restore/restore"
    rotate: str = "rotate-signing-key/rotate-signing-key"
    verification: str = "verification-run/verification-hourly"


class ApiConfig(BaseModel):
    model_config = ConfigDict(frozen=True)
    issuer: str = DEV_ISSUER
    audience: str = DEV_AUDIENCE
    jwks_url: str | None = None
    jwks_file: Path | None = None
    jwks_ttl_seconds: float = DEFAULT_JWKS_TTL_S
    jwks_cooldown_seconds: float = DEFAULT_JWKS_COOLDOWN_S
    leeway_seconds: int = DEFAULT_LEEWAY_S
    max_token_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_verify_body_bytes: int = DEFAULT_MAX_VERIFY_BODY_BYTES
    max_large_bodies: int = DEFAULT_MAX_LARGE_BODIES
    max_admin_body_bytes: int = DEFAULT_MAX_ADMIN_BODY_BYTES
    metrics_public: bool = False
    backup_uri: str | None = None
    prefect_api_url: str | None = None
    prefect_timeout_seconds: float = 5.0
    token_url: str = DEFAULT_TOKEN_URL
    build: str | None = None
    flows: FlowNames = FlowNames()

    @classmethod
    def from_env(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> ApiConfig:
        """Raises :class:`ConfigError` when no usable token issuer is configured."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {k: env[v] for k, v in _VARS.items() if env.get(v)}
        values["metrics_public"] = env.get("CAP_METRICS_PUBLIC", "").lower() in ("1", "true", "yes")
        values.setdefault("build", git_build(Path(__file__).resolve().parents[2]))
        if "jwks_url" not in values and "jwks_file" not in values:
            require_dev(settings)
            values.update(
                issuer=DEV_ISSUER,
                audience=DEV_AUDIENCE,
                jwks_file=DevIssuer(settings.layout.dev_issuer_dir).jwks_path,
            )
        elif "issuer" not in values:
            raise ConfigError("a JWKS is configured but no issuer", field="CAP_OAUTH_ISSUER")
        return cls.model_validate(values)

    def backup_store_uri(self, settings: Settings) -> str:
        return self.backup_uri or f"file://{settings.layout.backups_dir.resolve()}"


_VARS = {
    "issuer": "CAP_OAUTH_ISSUER",
    "audience": "CAP_OAUTH_AUDIENCE",
    "jwks_url": "CAP_JWKS_URL",
    "jwks_file": "CAP_JWKS_FILE",
    "jwks_ttl_seconds": "CAP_JWKS_TTL_SECONDS",
    "jwks_cooldown_seconds": "CAP_JWKS_COOLDOWN_SECONDS",
    "leeway_seconds": "CAP_JWT_LEEWAY_SECONDS",
    "max_token_lifetime_seconds": "CAP_JWT_MAX_LIFETIME_SECONDS",
    "max_body_bytes": "CAP_MAX_BODY_BYTES",
    "max_verify_body_bytes": "CAP_MAX_VERIFY_BODY_BYTES",
    "max_large_bodies": "CAP_MAX_LARGE_BODIES",
    "max_admin_body_bytes": "CAP_MAX_ADMIN_BODY_BYTES",
    "backup_uri": "CAP_BACKUP_URI",
    "prefect_api_url": "PREFECT_API_URL",
    "token_url": "CAP_OAUTH_TOKEN_URL",
    "build": "CAP_BUILD",
}


def git_build(root: Path) -> str | None:
    """The short commit of a git checkout at ``root`` read from ``.git`` (no subprocess), else None."""
    head = root / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref = (root / ".git" / ref.removeprefix("ref: ")).read_text().strip()
    except OSError:
        return None
    return ref[:12] or None
