"""Fixtures of the flow tests (real flow runs on the session's Prefect API)."""

from __future__ import annotations

import pytest


@pytest.fixture
def captured_events(monkeypatch):
    """Prefect's own pattern: every event goes through a recording client that still forwards to the API."""
    from prefect.events.clients import AssertingPassthroughEventsClient
    from prefect.events.worker import EventsWorker

    worker = EventsWorker.instance(AssertingPassthroughEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_a, **_k: worker)
    try:
        yield worker
    finally:
        worker.drain()
