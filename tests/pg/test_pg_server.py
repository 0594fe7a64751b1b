"""The test PostgreSQL is a real server: SQL runs, databases are separate, and it listens on loopback only."""

from __future__ import annotations

import psycopg
import pytest


def test_each_test_gets_its_own_empty_database(pg_server, pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
        assert conn.execute("SELECT sum(x) FROM t").fetchone() == (3,)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    other = pg_server.create_database()
    try:
        with psycopg.connect(other) as conn, pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM t")
    finally:
        pg_server.drop_database(other)
