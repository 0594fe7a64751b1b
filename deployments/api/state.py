"""What one API process holds: settings, the hot-reloaded keyring, the token validator, the flow gateway.

Built once by the app factory; nothing in the request path depends on it beyond caches that any replica
can rebuild from files and the JWKS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.anchors import InstalledListsWatcher, trust_anchors
from core.auth import JwksCache, TokenValidator, file_fetcher, url_fetcher
from core.errors import CapError
from core.keyring import Keyring, KeyringWatcher
from core.settings import Settings
from core.store import RegistryHandleApi, keyring_watcher, registry_handle
from core.trust import TrustAnchors
from deployments.api.config import ApiConfig
from deployments.api.flows import FlowGateway, PrefectFlows


class KeyringUnavailableError(CapError):
    """The server has no usable keyring (HTTP 503): a server-side state, not a bad request."""

    code = "keyring_unavailable"


class ListsUnavailableError(CapError):
    """The installed lists file exists but does not load (HTTP 503): never silently trusted or ignored."""

    code = "lists_unavailable"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiState:
    settings: Settings
    config: ApiConfig
    keyring: KeyringWatcher
    tokens: TokenValidator
    flows: FlowGateway
    registry: RegistryHandleApi
    lists: InstalledListsWatcher
    clock: Callable[[], datetime] = utc_now

    def current_keyring(self, now: datetime) -> Keyring:
        """The keyring in force (hot-reloaded). Raises :class:`KeyringUnavailableError` if none loads."""
        try:
            return self.keyring.current(now)
        except CapError as exc:
            raise KeyringUnavailableError(f"no usable keyring: {exc.message}", cause=exc.code) from exc

    def trust(self) -> TrustAnchors:
        """The verifier's anchors: the installed lists (hot-reloaded) and the configured maximum age.

        Raises :class:`ListsUnavailableError` if the installed lists file does not load."""
        try:
            installed = self.lists.current()
        except CapError as exc:
            raise ListsUnavailableError(f"installed lists unusable: {exc.message}", cause=exc.code) from exc
        return trust_anchors(self.settings, installed=installed)

    @classmethod
    def build(
        cls,
        settings: Settings,
        config: ApiConfig,
        *,
        flows: FlowGateway | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> ApiState:
        return cls(
            settings=settings,
            config=config,
            keyring=keyring_watcher(settings),
            tokens=token_validator(config),
            registry=registry_handle(settings),
            lists=InstalledListsWatcher(settings),
            clock=clock,
            flows=flows or PrefectFlows(config.prefect_api_url, timeout=config.prefect_timeout_seconds),
        )


def token_validator(config: ApiConfig) -> TokenValidator:
    if config.jwks_url:
        fetch, source = url_fetcher(config.jwks_url), config.jwks_url
    else:
        assert config.jwks_file is not None
        fetch, source = file_fetcher(config.jwks_file), str(config.jwks_file)
    keys = JwksCache(fetch, source=source, ttl=config.jwks_ttl_seconds, cooldown=config.jwks_cooldown_seconds)
    return TokenValidator(
        keys,
        issuer=config.issuer,
        audience=config.audience,
        leeway=config.leeway_seconds,
        max_lifetime=config.max_token_lifetime_seconds,
    )
