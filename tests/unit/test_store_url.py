"""CAP_DATABASE_URL: the default stays SQLite under the data dir; a bad URL is refused naming the variable and
what is expected, never showing the password."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from core.settings import Settings
from core.store import Engine, parse_database_url
from core.store.url import SQLITE


@pytest.mark.parametrize("text", [None, "", "  ", "sqlite://", "sqlite:"])
def test_unset_or_sqlite_is_the_embedded_default(text):
    assert parse_database_url(text) == SQLITE
    assert parse_database_url(text).engine is Engine.SQLITE


def test_the_environment_default_is_sqlite_under_the_data_dir(tmp_path):
    settings = Settings.from_env({"CAP_DATA_DIR": str(tmp_path)})
    assert settings.database.engine is Engine.SQLITE
    assert settings.database_url is None


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        pytest.param("postgresql://cap:pw@db:5432/cap", "postgresql://cap:***@db:5432/cap", id="full"),
        pytest.param("postgres://cap@10.0.0.1/cap", "postgres://cap@10.0.0.1/cap", id="postgres_scheme"),
        pytest.param("postgresql://[::1]:6432/cap?sslmode=require", "postgresql://[::1]:6432/cap", id="ipv6"),
        pytest.param("postgresql:///cap?host=/run/postgresql", "postgresql:///cap", id="socket_dir"),
    ],
)
def test_postgresql_urls_select_postgresql_and_redact_the_password(text, redacted):
    url = parse_database_url(text)
    assert (url.engine, url.redacted, url.conninfo.get_secret_value()) == (Engine.POSTGRESQL, redacted, text)
    assert "pw" not in repr(url)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("mysql://u:hunter2@h/db", "unsupported scheme 'mysql'", id="other_engine"),
        pytest.param("postgresql+psycopg://u:hunter2@h/db", "drop the '+driver' part", id="sqlalchemy_style"),
        pytest.param("sqlite:////var/cap/registry.sqlite", "set that instead", id="sqlite_path"),
        pytest.param("u:hunter2@h/db", "is not a URL", id="no_scheme"),
        pytest.param("postgresql://u:hunter2@h:99999/db", "port", id="bad_port"),
        pytest.param("postgresql://u:hunter2@h:5432", "names no database", id="no_database"),
        pytest.param("postgresql://u:hunter2@/db", "names no host", id="no_host"),
        pytest.param("postgresql://u:hun#ter2@h/db", "percent-encode", id="unencoded_hash_in_password"),
    ],
)
def test_bad_urls_name_the_variable_and_never_the_password(text, problem):
    with pytest.raises(InvalidInputError) as info:
        Settings.from_env({"CAP_DATABASE_URL": text})
    error = info.value
    assert problem in error.message
    assert error.details["field"] == "CAP_DATABASE_URL"
    assert "postgresql://USER[:PASSWORD]@HOST" in error.details["expected"]
    shown = error.message + repr(error.details)
    assert "hunter2" not in shown and "ter2" not in shown


def test_settings_never_show_the_url(tmp_path):
    settings = Settings.from_env({"CAP_DATABASE_URL": "postgresql://cap:hunter2@db/cap"})
    assert "hunter2" not in repr(settings) + settings.model_dump_json()
    assert settings.database.is_postgresql
