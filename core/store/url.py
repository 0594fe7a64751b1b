"""``CAP_DATABASE_URL``: which engine holds the trusted state, parsed once, never shown with its password.

Unset or ``sqlite://`` selects the embedded engine: SQLite files and the audit JSONL under ``CAP_DATA_DIR``,
exactly as before the variable existed. ``postgresql://user:password@host:port/dbname`` (or ``postgres://``)
selects PostgreSQL. Anything else is an :class:`InvalidInputError` naming the variable and what is expected;
no message, ``repr`` or log line carries the password (:attr:`DatabaseUrl.redacted`).
"""

from __future__ import annotations

from enum import Enum
from urllib.parse import SplitResult, parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from core.errors import InvalidInputError

VARIABLE = "CAP_DATABASE_URL"
EXPECTED = (
    "sqlite:// (the default: files under CAP_DATA_DIR) or postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME"
)


class Engine(str, Enum):  # noqa: UP042 - str mix-in on purpose (JSON, comparisons)
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class DatabaseUrl(BaseModel):
    """A parsed ``CAP_DATABASE_URL``: the engine and, for PostgreSQL, the connection string (secret)."""

    model_config = ConfigDict(frozen=True)

    engine: Engine
    conninfo: SecretStr = SecretStr("")
    redacted: str = "sqlite://"
    """The URL with its password replaced by ``***``: what messages and logs may show."""

    @property
    def is_postgresql(self) -> bool:
        return self.engine is Engine.POSTGRESQL


SQLITE = DatabaseUrl(engine=Engine.SQLITE)


def _refuse(problem: str, shown: str) -> InvalidInputError:
    return InvalidInputError(f"{VARIABLE} {problem}", field=VARIABLE, found=shown, expected=EXPECTED)


def _redact(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ":<bad port>"
    user = parts.username or ""
    auth = f"{user}{':***' if parts.password is not None else ''}@" if user or parts.password else ""
    return f"{parts.scheme}://{auth}{host}{port}{parts.path}"


def parse_database_url(text: str | None) -> DatabaseUrl:
    """The engine ``text`` selects (None or blank: SQLite). Raises :class:`InvalidInputError` that names
    ``CAP_DATABASE_URL``, shows the URL without its password and says what is expected."""
    value = (text or "").strip()
    if not value or value in ("sqlite://", "sqlite:"):
        return SQLITE
    scheme, sep, _ = value.partition("://")
    if not sep:
        raise _refuse("is not a URL", "<no scheme>")
    scheme = scheme.lower()
    if scheme == "sqlite":
        raise _refuse(
            "names an SQLite path: the SQLite engine keeps its files under CAP_DATA_DIR (set that instead)",
            "sqlite://…",
        )
    if scheme not in ("postgresql", "postgres"):
        hint = " (drop the '+driver' part)" if "+" in scheme else ""
        raise _refuse(f"has the unsupported scheme {scheme!r}{hint}", f"{scheme}://…")
    return _postgresql(value)


def _postgresql(value: str) -> DatabaseUrl:
    try:
        parts = urlsplit(value)
    except ValueError:
        raise _refuse("is not a valid URL", "postgresql://…") from None
    shown = _redact(parts)
    if "#" in value:
        raise _refuse("contains '#' (percent-encode it in a password as %23)", shown)
    try:
        parts.port  # noqa: B018 - urlsplit checks the port lazily
    except ValueError:
        raise _refuse("has a port that is not a number between 0 and 65535", shown) from None
    query = parse_qs(parts.query)
    if not parts.hostname and "host" not in query:
        raise _refuse("names no host", shown)
    if not parts.path.strip("/") and "dbname" not in query:
        raise _refuse("names no database (the path after the host)", shown)
    return DatabaseUrl(engine=Engine.POSTGRESQL, conninfo=SecretStr(value), redacted=shown)
