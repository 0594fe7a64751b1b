"""Replica URLs, the Litestream config and environment, and the replicating children of ``cap serve``.

The real binary reads these configs in tests/integration/test_replica_pitr.py; here each rule is pinned
with its negative cases.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from core.backup.replica import (
    litestream_config,
    litestream_env,
    parse_replica_url,
    write_config,
)
from core.errors import ConfigError
from core.layout import DataLayout
from core.settings import Settings
from deployments.serve import children, replicators


@pytest.mark.parametrize(
    ("url", "scheme", "bucket", "path"),
    [
        pytest.param("file:///srv/replica/", "file", "", "/srv/replica", id="file_dir"),
        pytest.param("s3://cap-dr/prod/eu", "s3", "cap-dr", "prod/eu", id="s3_prefix"),
        pytest.param("s3://cap-dr", "s3", "cap-dr", "", id="s3_bucket_only"),
    ],
)
def test_replica_urls_parse(url, scheme, bucket, path):
    parsed = parse_replica_url(url)
    assert (parsed.scheme, parsed.bucket, parsed.path) == (scheme, bucket, path)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("file://relative/dir", id="file_with_host"),
        pytest.param("/srv/replica", id="no_scheme"),
        pytest.param("s3:///prefix", id="s3_without_bucket"),
        pytest.param("s3://b/p?endpoint=http://x", id="s3_query_smuggles_options"),
        pytest.param("gcs://b/p", id="unsupported_scheme"),
    ],
)
def test_bad_replica_urls_name_the_variable(url):
    with pytest.raises(ConfigError) as caught:
        parse_replica_url(url)
    assert caught.value.details["field"] == "CAP_REPLICA_URL"


def test_s3_replica_uses_the_backups_endpoint_and_no_credentials(tmp_path):
    env = {
        "CAP_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
        "CAP_REPLICA_SYNC_INTERVAL": "250ms",
    }
    config = litestream_config(
        DataLayout(tmp_path), parse_replica_url("s3://cap-dr/prod"), tmp_path / "m", env
    )
    written = write_config(tmp_path / "run" / "litestream.yml", config)
    text = written.read_text()
    assert "AKIAEXAMPLE" not in text and "s3cr3t-value" not in text
    assert written.stat().st_mode & 0o777 == 0o600
    registry, policies, state = yaml.safe_load(text)["dbs"]
    assert registry["replica"] == {
        "type": "s3",
        "bucket": "cap-dr",
        "path": "prod/registry",
        "sync-interval": "250ms",
        "region": "eu-central-1",
        "endpoint": "http://127.0.0.1:9000",
        "force-path-style": True,
    }
    assert policies["replica"]["path"] == "prod/policies"
    assert state["replica"]["path"] == "prod/state" and state["path"] == str(tmp_path / "state.sqlite")
    assert registry["meta-path"] == str(tmp_path / "m" / "registry")


def test_file_replica_and_default_interval(tmp_path):
    config = litestream_config(DataLayout(tmp_path), parse_replica_url("file:///srv/r"), tmp_path / "m", {})
    assert [d["replica"] for d in config["dbs"]] == [
        {"type": "file", "path": "/srv/r/registry", "sync-interval": "1s"},
        {"type": "file", "path": "/srv/r/policies", "sync-interval": "1s"},
        {"type": "file", "path": "/srv/r/state", "sync-interval": "1s"},
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(
            {"AWS_CA_BUNDLE": "/ca.pem"}, {"SSL_CERT_FILE": "/ca.pem"}, id="bundle_becomes_ssl_cert"
        ),
        pytest.param(
            {"AWS_CA_BUNDLE": "/ca.pem", "SSL_CERT_FILE": "/own.pem"},
            {"SSL_CERT_FILE": "/own.pem"},
            id="own_kept",
        ),
        pytest.param({"X": "1"}, {"X": "1"}, id="nothing_to_do"),
    ],
)
def test_litestream_env_never_passes_aws_ca_bundle(given, expected):
    assert litestream_env(given) == expected


def test_serve_runs_one_replicator_per_url_first(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    assert replicators(settings, {}) == []
    env = {"CAP_REPLICA_URL": "s3://a/p", "CAP_REPLICA_URL_2": (tmp_path / "dr").as_uri()}
    one, two = replicators(settings, env)
    assert (one.name, two.name) == ("litestream", "litestream-2")
    assert one.argv[1:3] == ["replicate", "-config"] and one.argv[3] != two.argv[3]
    metas = {yaml.safe_load(Path(c.argv[3]).read_text())["dbs"][0]["meta-path"] for c in (one, two)}
    assert len(metas) == 2  # each process keeps its own Litestream state
    with pytest.raises(ConfigError):
        replicators(settings, {"CAP_REPLICA_URL": "ftp://x"})


def test_serve_without_replica_url_starts_no_litestream(tmp_path, monkeypatch):
    from deployments.serve import ServeOptions

    monkeypatch.delenv("CAP_REPLICA_URL", raising=False)
    monkeypatch.delenv("CAP_REPLICA_URL_2", raising=False)
    names = [c.name for c in children(ServeOptions(prefect=False), False, Settings(data_dir=tmp_path))]
    assert names == ["api"]
    monkeypatch.setenv("CAP_REPLICA_URL", (tmp_path / "r").as_uri())
    names = [c.name for c in children(ServeOptions(prefect=False), False, Settings(data_dir=tmp_path))]
    assert names == ["litestream", "api"]  # started first, stopped last (after its final sync)


def test_replication_only_runs_no_api_and_needs_a_replica_url(tmp_path, monkeypatch):
    from deployments.serve import ServeOptions
    from tests.live import run_cap

    settings = Settings(data_dir=tmp_path)
    monkeypatch.setenv("CAP_REPLICA_URL", (tmp_path / "r").as_uri())
    names = [c.name for c in children(ServeOptions(prefect=False, api=False), False, settings)]
    assert names == ["litestream"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAP_REPLICA")}
    done = run_cap("serve", "--replication-only", env={**env, "CAP_DATA_DIR": str(tmp_path / "var")})
    assert done.returncode == 2 and "needs CAP_REPLICA_URL" in done.stderr
    assert not (tmp_path / "var").exists()  # refused before touching the data dir
