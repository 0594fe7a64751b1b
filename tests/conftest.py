"""Session-wide test setup: hermetic Prefect settings and one lazily started Prefect API.

Only tests that request ``prefect_api`` start a server (once per xdist worker); mark them
``@pytest.mark.xdist_group("prefect")`` so they all land on one worker and share it.
"""

from __future__ import annotations

import os
import tempfile

import pytest

# Hermetic Prefect settings: must run before anything imports prefect.
for _var in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
    os.environ.pop(_var, None)
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "240")
os.environ.setdefault("CAP_SERVE_STARTUP_TIMEOUT_S", "240")  # `cap serve` children started by tests
os.environ.setdefault("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE", "200")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE", "100")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL", "1")
os.environ.pop("CAP_DEBUG", None)
os.environ.pop("CAP_DATABASE_URL", None)  # SQLite unless a test asks for PostgreSQL (`engine_settings`)
# `cap proof build` makes cap-proof.v3 by default: seconds of Groth16 proving per build. The suite's many
# lifecycle, drift, trust, smoke and ops tests are about everything but the screening scheme and keep v2
# (inherited by their `cap` subprocesses); tests/zk/test_proof_v3*.py drop this to test the v3 default.
os.environ.setdefault("CAP_PROOF_SCHEME", "v2")


@pytest.fixture(scope="session")
def prefect_api():
    """One throwaway Prefect API per session (per worker); only started if a test asks for it."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness  # heavy import: keep it lazy

    with (
        prefect_test_harness(server_startup_timeout=240),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL cluster per session (per xdist worker), started only if a test asks for it."""
    from tests.pgserver import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server):
    """A fresh empty database on the session's PostgreSQL; dropped after the test."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture(scope="session")
def pg_store_database(pg_server):
    """One database per session (per worker) for the engine-parametrised store tests; each test gets its own
    schema in it (much cheaper than a database per test)."""
    url = pg_server.create_database("stores")
    yield url
    pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_settings(request, tmp_path):
    """Settings on each storage engine: SQLite files under ``tmp_path/data``, or PostgreSQL in a fresh empty
    schema (its own ``search_path``). Store tests that take this run once per engine."""
    from core.settings import Settings

    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "data")
        return
    import uuid

    import psycopg

    from core.store.postgres.db import close_all

    base = request.getfixturevalue("pg_store_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield Settings(data_dir=tmp_path / "data", database_url=f"{base}?options=-csearch_path%3D{schema}")
    close_all()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


# --- how `make test` spreads the suite over its xdist workers (--dist loadgroup) -------------------------
# A test without an explicit xdist_group runs with the rest of its module, as under --dist loadscope: a
# module-scoped fixture (a proof built by real proving, a live server, a Prefect stack) is then set up once,
# not once on each worker. Explicit groups (the shared Prefect harness) span modules.


@pytest.hookimpl(tryfirst=True)  # before xdist's worker hook turns the marks into node-id suffixes
def pytest_collection_modifyitems(config, items):
    dist = config.getoption("dist", default=None)  # None without xdist (mutation testing runs -p no:xdist)
    if dist != "loadgroup" and not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        if "prefect_api" in getattr(item, "fixturenames", ()):  # one harness per session, not one per worker
            item.add_marker(pytest.mark.xdist_group("prefect"))
        else:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Note, on a worker, the tests xdist failed to group (pytest-xdist#1386: pytest 9.2 ignores its node-id
    suffix, so a Prefect server and every module fixture would silently start on each worker)."""
    if getattr(session.config.option, "loadgroup", False):
        session.config.stash[_UNGROUPED] = [
            i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid
        ]


_UNGROUPED = pytest.StashKey[list]()


@pytest.fixture(scope="session", autouse=True)
def _xdist_groups_hold(request):
    lost = request.config.stash.get(_UNGROUPED, [])
    if lost:
        pytest.fail(
            f"--dist loadgroup did not group {len(lost)} tests (first: {lost[0]}): see pytest-xdist#1386 and "
            "the pytest pin in pyproject.toml",
            pytrace=False,
        )
