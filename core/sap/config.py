"""The SAP adapter's configuration: a pydantic model loaded from YAML, with errors naming the field.

Secrets are never part of the model: it holds the *names* of environment variables
(``password_env``, ``client_secret_env``, ``company_secret_env``) and reads them at use time, so
``repr``/``model_dump`` cannot leak them. Relative paths are taken relative to the YAML file's folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import ConfigError
from core.modes import EnforcementMode
from core.sanctions import ListFormat
from core.sap.odata import BasicAuth, ClientAuth, NoAuth, OAuth2ClientCredentials
from core.sap.services import DEFAULT_PATHS, ServicePaths
from core.sap.wire import ODataVersion

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class AuthType(StrEnum):
    NONE = "none"
    BASIC = "basic"
    OAUTH2 = "oauth2"


class AuthConfig(BaseModel):
    """How the adapter authenticates; secrets come from the named environment variables."""

    model_config = _FROZEN

    type: AuthType = AuthType.NONE
    username: str | None = None
    password_env: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> AuthConfig:
        needed = {
            AuthType.BASIC: ("username", "password_env"),
            AuthType.OAUTH2: ("token_url", "client_id", "client_secret_env"),
        }
        for name in needed.get(self.type, ()):
            if not getattr(self, name):
                raise ValueError(f"auth.{name} is required when auth.type is {self.type.value}")
        return self

    def client_auth(self, env: Mapping[str, str] | None = None) -> ClientAuth:
        """Credentials for the OData client. Raises :class:`ConfigError` if a secret is unset."""
        if self.type is AuthType.BASIC:
            assert self.username and self.password_env
            return BasicAuth(
                username=self.username, password=read_secret(self.password_env, "auth.password_env", env)
            )
        if self.type is AuthType.OAUTH2:
            assert self.token_url and self.client_id and self.client_secret_env
            secret = read_secret(self.client_secret_env, "auth.client_secret_env", env)
            return OAuth2ClientCredentials(
                token_url=self.token_url, client_id=self.client_id, client_secret=secret
            )
        return NoAuth()


class CsvUboSource(BaseModel):
    """UBOs from a CSV ``name,birthdate,citizenship`` (header only = explicitly none)."""

    model_config = _FROZEN
    type: Literal["csv"]
    path: Path


class SapRelationshipsUboSource(BaseModel):
    """UBOs from BP relationships; ``categories`` are the system's customised ownership categories."""

    model_config = _FROZEN
    type: Literal["sap_relationships"]
    categories: tuple[str, ...] = ()


UboSourceConfig = Annotated[CsvUboSource | SapRelationshipsUboSource, Field(discriminator="type")]


class SanctionsListConfig(BaseModel):
    model_config = _FROZEN
    path: Path
    format: ListFormat


class ServicePathOverrides(BaseModel):
    """Entity-set paths that replace the defaults for the configured OData version."""

    model_config = _FROZEN
    business_partner: str | None = None
    supplier: str | None = None
    purchase_order: str | None = None


class SapConfig(BaseModel):
    """Everything the SAP ingest needs; load with :func:`load_sap_config`."""

    model_config = _FROZEN

    base_url: str
    odata_version: ODataVersion = ODataVersion.V2
    sap_client: str | None = None
    auth: AuthConfig = AuthConfig()
    page_size: int = Field(1000, ge=1, le=5000)
    lookback_days: int = Field(365, ge=1, le=3660)
    timeout_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(5, ge=1, le=20)
    ubo_source: UboSourceConfig | None = None
    sanctions: tuple[SanctionsListConfig, ...] = ()
    high_risk: Path | None = None
    lists_file: Path | None = Field(
        None,
        description="A cap-lists.v1 document instead of sanctions/high_risk, e.g. <data>/lists/lists.json "
        "as `cap lists refresh` installs it",
    )
    policy: str | None = None
    enforce_mode: EnforcementMode = EnforcementMode.STRICT
    company_id: str = Field(min_length=1)
    company_secret_env: str = Field(min_length=1)
    verify_url: str | None = None
    watermark_file: Path = Path("var/sap/watermarks.json")
    service_paths: ServicePathOverrides = ServicePathOverrides()

    @field_validator("base_url", "verify_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _one_kind_of_lists(self) -> SapConfig:
        if self.lists_file is not None and (self.sanctions or self.high_risk is not None):
            raise ValueError("give lists_file, or sanctions (and high_risk), not both")
        return self

    @field_validator("sap_client")
    @classmethod
    def _client_number(cls, value: str | None) -> str | None:
        if value is not None and not (len(value) == 3 and value.isdigit()):
            raise ValueError("must be a three-digit SAP client number such as '100'")
        return value

    def paths(self) -> ServicePaths:
        """The default entity-set paths of ``odata_version`` with the overrides applied."""
        overrides = self.service_paths.model_dump(exclude_none=True)
        return DEFAULT_PATHS[self.odata_version].model_copy(update=overrides)

    def company_secret(self, env: Mapping[str, str] | None = None) -> bytes:
        """The HMAC key for identifiers that leave the adapter. Raises :class:`ConfigError` if unset."""
        return read_secret(self.company_secret_env, "company_secret_env", env).get_secret_value().encode()

    def rebased(self, base: Path) -> SapConfig:
        """A copy whose relative file paths are taken relative to ``base``."""

        def fix(path: Path) -> Path:
            return path if path.is_absolute() else base / path

        update: dict[str, Any] = {"watermark_file": fix(self.watermark_file)}
        update["sanctions"] = tuple(s.model_copy(update={"path": fix(s.path)}) for s in self.sanctions)
        if self.high_risk is not None:
            update["high_risk"] = fix(self.high_risk)
        if self.lists_file is not None:
            update["lists_file"] = fix(self.lists_file)
        if isinstance(self.ubo_source, CsvUboSource):
            update["ubo_source"] = self.ubo_source.model_copy(update={"path": fix(self.ubo_source.path)})
        return self.model_copy(update=update)


def read_secret(var: str, field: str, env: Mapping[str, str] | None = None) -> SecretStr:
    """The value of environment variable ``var``; raises :class:`ConfigError` naming ``field`` if unset."""
    value = (os.environ if env is None else env).get(var)
    if not value:
        raise ConfigError(
            f"environment variable {var} is not set", field=field, expected="a non-empty secret"
        )
    return SecretStr(value)


def parse_sap_config(data: Any, *, source: str = "<config>") -> SapConfig:
    """Validate a parsed YAML/JSON mapping. Raises :class:`ConfigError` naming the first bad field."""
    if isinstance(data, Mapping) and isinstance(data.get("sap"), Mapping):
        data = data["sap"]
    try:
        return SapConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(root)"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid SAP configuration: {problems}", file=source, field=field) from exc


def load_sap_config(path: str | Path) -> SapConfig:
    """Load a YAML file (top-level mapping, or under a ``sap:`` key) into :class:`SapConfig`.

    Raises :class:`ConfigError` naming the file, the YAML line or the bad field.
    """
    target = Path(path)
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read SAP configuration: {exc.strerror}", file=str(target)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError("SAP configuration is not valid YAML", file=str(target), line=line) from exc
    return parse_sap_config(data, source=str(target)).rebased(target.parent)
