"""Refreshing the lists from their publishers, over real HTTP on loopback, with the real OFAC and UN extracts.

A small threaded HTTP server plays the publishers: each path answers a scripted sequence of responses
(503 with Retry-After, 404, an HTML error page, a truncated list), then the real file. Every failure must
leave the lists in force byte for byte, and nothing half-written beside them.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from core import service
from core.audit import AuditLog
from core.errors import InvalidInputError
from core.lists_refresh import ListFetchError, ListShrinkError, ListSources, load_sources, refresh_lists
from core.sanctions import ListFormat
from core.settings import Settings
from core.status import observe_status
from tests.cli.conftest import EXAMPLES
from tests.live import run_cap
from tests.paths import FIXTURES

NOW = datetime(2026, 12, 1, 5, 30, tzinfo=UTC)
SDN, ALT, UN = (
    FIXTURES / "ofac" / "sdn.csv",
    FIXTURES / "ofac" / "alt.csv",
    FIXTURES / "un_consolidated_extract.xml",
)
HIGH_RISK = EXAMPLES / "high_risk.csv"


class Publisher:
    """Paths → scripted responses ``(status, headers, body)``; the last one repeats. Records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self.requests: list[str] = []
        publisher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                publisher.requests.append(self.path)
                script = publisher.routes.get(self.path) or [(404, {}, b"not found")]
                status, headers, body = script.pop(0) if len(script) > 1 else script[0]
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, path: str, *script: tuple[int, dict[str, str], bytes] | Path) -> str:
        self.routes[path] = [(200, {}, s.read_bytes()) if isinstance(s, Path) else s for s in script]
        return self.url + path


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    p = Publisher()
    yield p
    p.server.shutdown()
    p.server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


def sources(publisher: Publisher, **overrides: object) -> ListSources:
    doc = {
        "schema": "cap-list-sources.v1",
        "sanctions": [
            {
                "format": "ofac",
                "url": publisher.serve("/ofac/sdn.csv", SDN),
                "alt": {"url": publisher.serve("/ofac/alt.csv", ALT)},
            },
            {"format": "un", "url": publisher.serve("/un.xml", UN)},
        ],
        "high_risk": {"path": str(HIGH_RISK)},
        **overrides,
    }
    return ListSources.model_validate(doc)


def refresh(settings: Settings, src: ListSources, **kwargs: object):
    sleeps: list[float] = []
    with httpx.Client(timeout=10) as client:
        result = refresh_lists(settings, src, NOW, client=client, sleep=sleeps.append, **kwargs)
    return result, sleeps


def installed(settings: Settings) -> Path:
    return settings.layout.lists_dir / "lists.json"


def leftovers(settings: Settings) -> list[str]:
    """Anything but the installed file in lists/ (which backups copy whole), and any staging directory."""
    stray = [p.name for p in settings.layout.lists_dir.iterdir() if p.name != "lists.json"]
    return sorted(stray + [p.name for p in settings.layout.root.glob(".lists-refresh-*")])


def test_refresh_installs_what_lists_build_builds_from_the_same_files_and_audits_it(settings, publisher):
    result, _ = refresh(settings, sources(publisher))
    local = service.build_lists_file([(SDN, ListFormat.OFAC), (UN, ListFormat.UN)], HIGH_RISK, NOW)
    assert result.changed and result.previous_root is None
    assert (result.sanctions_root, result.sanctions_count) == (local.sanctions_root, local.sanctions_count)
    assert result.jurisdiction_root == local.jurisdiction_root is not None
    stored = json.loads(installed(settings).read_text())
    assert stored["sanctions_root"] == local.sanctions_root and stored["keys"] == list(local.keys)
    assert leftovers(settings) == []

    (event,) = [e for e in AuditLog(settings.layout.audit_log).events() if e.event == "lists_refreshed"]
    assert event.details["sanctions_root"] == local.sanctions_root
    assert {s["location"] for s in event.details["sources"]} == {
        publisher.url + "/ofac/sdn.csv",
        publisher.url + "/ofac/alt.csv",
        publisher.url + "/un.xml",
        str(HIGH_RISK),
    }

    before = installed(settings).read_bytes()
    again, _ = refresh(settings, sources(publisher))
    assert not again.changed and again.previous_root == local.sanctions_root
    assert installed(settings).read_bytes() == before  # unchanged lists are not rewritten
    assert sum(e.event == "lists_refreshed" for e in AuditLog(settings.layout.audit_log).events()) == 1

    later = NOW + timedelta(days=20)  # the publishers still say the same: only the time moves on
    with httpx.Client(timeout=10) as client:
        third = refresh_lists(settings, sources(publisher), later, client=client, sleep=lambda _: None)
    assert not third.changed
    restamped = json.loads(installed(settings).read_text())
    assert restamped["generated_at"] == "2026-12-21T05:30:00Z" != json.loads(before)["generated_at"]
    assert {k: v for k, v in restamped.items() if k != "generated_at"} == {
        k: v for k, v in json.loads(before).items() if k != "generated_at"
    }
    assert sum(e.event == "lists_refreshed" for e in AuditLog(settings.layout.audit_log).events()) == 1


def test_transient_failures_are_retried_honouring_retry_after(settings, publisher):
    src = sources(publisher)
    publisher.serve("/un.xml", (503, {"Retry-After": "7"}, b"busy"), (502, {}, b"bad gateway"), UN)
    result, sleeps = refresh(settings, src)
    assert result.changed
    assert sleeps == [7.0, 2.0]  # Retry-After first, then the second backoff step
    assert publisher.requests.count("/un.xml") == 3


@pytest.mark.parametrize(
    ("script", "error", "needle"),
    [
        pytest.param([(404, {}, b"gone")], ListFetchError, "answered HTTP 404", id="not_found_is_final"),
        pytest.param([(503, {}, b"busy")], ListFetchError, "answered HTTP 503", id="transient_gives_up"),
        pytest.param(
            [(200, {"Content-Type": "text/html"}, b"<html><body>Maintenance</body></html>")],
            InvalidInputError,
            "does not parse as un",
            id="error_page_with_200",
        ),
        pytest.param([(200, {}, b"")], ListFetchError, "empty body", id="empty_body"),
    ],
)
def test_a_failing_source_leaves_the_lists_in_force_untouched(settings, publisher, script, error, needle):
    refresh(settings, sources(publisher))
    before = installed(settings).read_bytes()
    src = sources(publisher)
    publisher.serve("/un.xml", *script)
    with pytest.raises(error) as err:
        refresh(settings, src)
    assert needle in err.value.message
    assert installed(settings).read_bytes() == before
    assert leftovers(settings) == []


def test_a_list_that_lost_most_of_its_keys_is_refused_unless_allowed(settings, publisher, tmp_path):
    refresh(settings, sources(publisher))
    before = installed(settings).read_bytes()
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("name,birthdate,nationality\nOnly One Listed Person,,\n")
    shrunk = sources(publisher, sanctions=[{"format": "csv", "path": str(tiny)}])
    with pytest.raises(ListShrinkError) as err:
        refresh(settings, shrunk)
    assert "--allow-shrink" in err.value.message
    assert installed(settings).read_bytes() == before
    result, _ = refresh(settings, shrunk, allow_shrink=True)
    assert result.changed and result.sanctions_count == 1


def test_downloads_are_size_capped(settings, publisher):
    with pytest.raises(ListFetchError) as err:
        refresh(settings, sources(publisher, max_bytes=1000))
    assert "larger than 1000 bytes" in err.value.message
    assert not installed(settings).exists()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("schema: cap-list-sources.v1\nsanctions: [\n", {"line": 3}, id="yaml_syntax_line"),
        pytest.param(
            "schema: cap-list-sources.v1\nsanctions: []\n", {"field": "sanctions"}, id="no_sanctions"
        ),
        pytest.param(
            "schema: cap-list-sources.v1\nsanctions:\n  - {format: un, url: 'https://x/u', path: /u}\n",
            {"field": "sanctions[0]"},
            id="url_and_path",
        ),
        pytest.param(
            "schema: cap-list-sources.v1\nsanctions:\n  - {format: un, url: 'ftp://x/u.xml'}\n",
            {"field": "sanctions[0].url"},
            id="not_http",
        ),
        pytest.param(
            "schema: cap-list-sources.v1\nsanctions:\n  - {format: un, path: /u.xml, alt: {path: /a.csv}}\n",
            {"field": "sanctions[0]"},
            id="alt_only_for_ofac",
        ),
        pytest.param("sanctions:\n  - {format: un, path: /u.xml}\n", {"field": "schema"}, id="no_schema"),
    ],
)
def test_bad_sources_files_name_the_place(tmp_path, text, where):
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as err:
        load_sources(path)
    assert err.value.details["file"] == str(path)
    assert where.items() <= err.value.details.items()


@pytest.mark.slow
def test_cli_refresh_over_http_then_bad_sources_exit_2(tmp_path, publisher):
    env_root = tmp_path / "cli"
    env = {**os.environ, "CAP_DATA_DIR": str(env_root / "var"), "CAP_BUILD_DIR": str(env_root / "build")}
    env["NO_COLOR"] = "1"
    doc = sources(publisher).model_dump(mode="json", by_alias=True, exclude_none=True)
    file = tmp_path / "sources.yaml"
    file.write_text(yaml.safe_dump(doc))
    ok = run_cap("lists", "refresh", "--sources", str(file), "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["changed"] is True and summary["keys"] > 0
    assert Path(summary["lists"]) == env_root / "var" / "lists" / "lists.json"

    missing = run_cap("lists", "refresh", env=env)  # default <data>/lists/sources.yaml does not exist
    assert missing.returncode == 2 and "sources.yaml" in missing.stderr and "Traceback" not in missing.stderr


def test_the_example_sources_file_loads():
    from tests.paths import REPO

    example = load_sources(REPO / "examples" / "list-sources.yml")
    assert [s.format for s in example.sanctions] == [ListFormat.OFAC, ListFormat.UN]
    assert example.sanctions[0].alt is not None and example.high_risk is not None


def test_relative_paths_are_relative_to_the_sources_file_not_the_working_directory(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ofac").mkdir()
    for src in (SDN, ALT):
        (conf / "ofac" / src.name).write_bytes(src.read_bytes())
    (conf / "hr.csv").write_bytes(HIGH_RISK.read_bytes())
    (conf / "sources.yaml").write_text(
        "schema: cap-list-sources.v1\n"
        "sanctions:\n  - {format: ofac, path: ofac/sdn.csv, alt: {path: ofac/alt.csv}}\n"
        "high_risk: {path: hr.csv}\n"
    )
    monkeypatch.chdir(tmp_path)  # somewhere else than the sources file
    settings = Settings(data_dir=tmp_path / "var")
    result = service.refresh_lists(settings, NOW, sources_path=conf / "sources.yaml")
    assert result.changed and result.jurisdiction_root is not None
    assert {s.location for s in result.sources} == {
        str(conf / "ofac" / "sdn.csv"),
        str(conf / "ofac" / "alt.csv"),
        str(conf / "hr.csv"),
    }


def test_refreshes_are_metered_for_the_staleness_alert(settings, publisher):
    from core.metrics import REGISTRY

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    changed, unchanged, failed = (
        sample("cap_lists_refresh_total", result=r) for r in ("changed", "unchanged", "failure")
    )
    result, _ = refresh(settings, sources(publisher))
    refresh(settings, sources(publisher))
    src = sources(publisher)
    publisher.serve("/un.xml", (404, {}, b"gone"))
    with pytest.raises(ListFetchError):
        refresh(settings, src)
    assert sample("cap_lists_refresh_total", result="changed") == changed + 1
    assert sample("cap_lists_refresh_total", result="unchanged") == unchanged + 1
    assert sample("cap_lists_refresh_total", result="failure") == failed + 1
    state = observe_status(settings.layout, None, NOW)  # what /metrics reports, from the status book
    assert state.lists_refresh_last_success == NOW.timestamp()  # the failure did not move it
    assert state.lists_keys == result.sanctions_count
