"""The operator's path through the real Prefect UI, in Debian's chromium driven by Playwright.

`cap serve` (Prefect server, runner, API) on loopback ports over a fresh data dir. In the browser, from the
deployment's *Custom run* form: phase 0 and phase 1 (picked by their labels, forced), then phase 2, which
pauses. The paused run is found by its name in the runs list, opened, and approved through its Resume form
(Decision, Approver). Then the keyring on disk and the ``key-rotation`` artifact (Prefect API) must show the
sign-switch applied by that approver. Screenshots land in ``build/ui/`` when a step fails.

Chromium comes from ``scripts/install_browser.sh`` (``make install``); Playwright only drives it
(``executable_path``), it never downloads a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_serve import env_for, wait_ready
from tests.live import free_port
from tests.paths import REPO

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect"), pytest.mark.timeout(420)]

CHROMIUM = os.environ.get("CAP_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = REPO / "build" / "ui"
DEPLOYMENT = "rotate-signing-key"
APPROVER = "alice-ui"
ENDED = {"FAILED", "CRASHED", "CANCELLED"}
RUN_S = 180  # a served run: trigger to final state is 2-3 s idle, 20 s and more on a loaded 2-core box


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(data dir, Prefect URL) of a real `cap serve` with Prefect; stopped after the module.

    Its output goes to a file (copied to build/ui/serve.log), not a pipe: nobody reads a pipe while the
    browser works, and once its buffer is full the Prefect server and runner block on their log writes.
    """
    root = tmp_path_factory.mktemp("ui")
    prefect_port, port = free_port(), free_port()
    log = (root / "serve.log").open("w")
    command = ["serve", "--port", str(port), "--workers", "1", "--prefect-port", str(prefect_port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployments.cli", *command],
        cwd=REPO,
        env=env_for(root),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(proc, port)
        wait_deployment(f"http://127.0.0.1:{prefect_port}")
        yield root / "var", f"http://127.0.0.1:{prefect_port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
        (SHOTS / "serve.log").parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "serve.log", SHOTS / "serve.log")


@pytest.fixture
def page(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A chromium page with a fresh profile; a full-page screenshot to build/ui/ if the test fails."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run scripts/install_browser.sh (make install)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        problems: list[str] = []  # what the UI's "Oops. Something went wrong." toast does not say
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        page.on("requestfailed", lambda r: problems.append(f"failed {r.method} {r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} {r.url}"))
        try:
            yield page
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
                (SHOTS / f"{request.node.name}.txt").write_text("\n".join(problems) + "\n")
            context.close()


# --- the Prefect API, only to wait and to read what the UI cannot be trusted to show ------------------------


def flow_runs(prefect: str, name_prefix: str) -> list[dict[str, Any]]:
    body = {"flow_runs": {"name": {"like_": name_prefix}}, "sort": "EXPECTED_START_TIME_DESC", "limit": 20}
    return list(httpx.post(f"{prefect}/api/flow_runs/filter", json=body, timeout=10).json())


def wait_state(prefect: str, name_prefix: str, states: set[str]) -> dict[str, Any]:
    """The newest run named ``name_prefix…`` once in one of ``states``; fails if it ended otherwise."""
    deadline = time.monotonic() + RUN_S
    seen: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        runs = flow_runs(prefect, name_prefix)
        seen = [(r["name"], r["state_type"]) for r in runs]
        for run in runs:
            if not run["name"].startswith(name_prefix):
                continue
            if run["state_type"] in states:
                return run
            if run["state_type"] in ENDED:
                raise AssertionError(f"{run['name']} ended {run['state_type']}: {run['state']['message']}")
        time.sleep(0.5)
    raise AssertionError(f"no run {name_prefix}… in {states} within {RUN_S} s; runs: {seen}")


def wait_deployment(prefect: str) -> None:
    """The runner applies the deployments after the API answers /readyz."""
    deadline = time.monotonic() + RUN_S
    while time.monotonic() < deadline:
        body = {"deployments": {"name": {"any_": [DEPLOYMENT]}}}
        if httpx.post(f"{prefect}/api/deployments/filter", json=body, timeout=10).json():
            return
        time.sleep(0.5)
    raise AssertionError(f"deployment {DEPLOYMENT} not served within {RUN_S} s")


def rotation_artifacts(prefect: str) -> list[dict[str, Any]]:
    body = {"artifacts": {"key": {"any_": ["key-rotation"]}}, "sort": "CREATED_DESC", "limit": 10}
    return list(httpx.post(f"{prefect}/api/artifacts/filter", json=body, timeout=10).json())


def keyring(data: Path) -> dict[str, Any]:
    return dict(json.loads((data / "keyring.json").read_text()))


# --- the UI ------------------------------------------------------------------------------------------------


def field(scope: Any, title: str) -> Any:
    """One property of a Prefect schema form (in a page or a dialog), by the title our models give it."""
    return scope.locator(f'.schema-form-property:has(.schema-form-property__label:text("{title}"))').first


def start_rotation(page: Any, prefect: str, phase_label: str, *, force: bool, run_prefix: str) -> None:
    """Deployments → rotate-signing-key → Run → Custom run; pick the phase by its label; Submit; until the run
    named ``run_prefix…`` exists. The UI's "Something went wrong" toast (the server's 503 while a busy SQLite
    is locked) gets what an operator would do: the form filled and submitted again, at most three times."""
    known = {run["id"] for run in flow_runs(prefect, run_prefix)}
    for _ in range(3):
        page.goto(f"{prefect}/deployments")
        page.get_by_role("link", name=DEPLOYMENT).first.click()
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Custom run", exact=True).click()
        choose(page, field(page, "Phase"), phase_label)
        expect_text(field(page, "Phase"), phase_label)
        if force:
            field(page, "Force").get_by_role("switch").click()
        page.get_by_role("button", name="Submit").click()
        if created(page, prefect, run_prefix, known):
            return
    raise AssertionError(f"the UI did not create a run {run_prefix}… in three submissions")


def resumed(page: Any, prefect: str, run_id: str) -> bool:
    """True once the run has left PAUSED; False as soon as the UI shows its error toast."""
    oops = page.get_by_text("Something went wrong")
    deadline = time.monotonic() + RUN_S
    while time.monotonic() < deadline:
        state = httpx.get(f"{prefect}/api/flow_runs/{run_id}", timeout=10).json()["state_type"]
        if state != "PAUSED":
            return True
        if oops.count() and oops.first.is_visible():
            page.screenshot(path=str(shot("resume-refused")), full_page=True)
            return False
        time.sleep(0.5)
    return False


def created(page: Any, prefect: str, run_prefix: str, known: set[str]) -> bool:
    """True once a new run ``run_prefix…`` exists; False as soon as the UI shows its error toast."""
    oops = page.get_by_text("Something went wrong")
    deadline = time.monotonic() + RUN_S
    while time.monotonic() < deadline:
        if {run["id"] for run in flow_runs(prefect, run_prefix)} - known:
            return True
        if oops.count() and oops.first.is_visible():
            page.screenshot(path=str(shot("submit-refused")), full_page=True)
            return False
        time.sleep(0.5)
    return False


def choose(page: Any, prop: Any, label: str) -> None:
    """Pick ``label`` in a Prefect select: a click focuses it, ArrowDown opens its list of options."""
    prop.locator(".p-select-button__control").click()
    page.keyboard.press("ArrowDown")
    page.get_by_role("option", name=label, exact=True).click()


def expect_text(locator: Any, text: str) -> None:
    from playwright.sync_api import expect

    expect(locator).to_contain_text(text)


def test_rotation_through_the_prefect_ui(served: tuple[Path, str], page: Any) -> None:
    data, prefect = served
    before = keyring(data)
    old_kid = before["default_signing_kid"]

    start_rotation(page, prefect, "0 — prepare new key", force=True, run_prefix="rotate-phase-0-prepare")
    wait_state(prefect, "rotate-phase-0-prepare", {"COMPLETED"})
    start_rotation(
        page,
        prefect,
        "1 — dual-accept (verifiers accept both keys)",
        force=True,
        run_prefix="rotate-phase-1-dual-accept",
    )
    wait_state(prefect, "rotate-phase-1-dual-accept", {"COMPLETED"})
    dual = keyring(data)
    assert dual["mode"] == "dual-accept", dual
    assert dual["default_signing_kid"] == old_kid

    start_rotation(
        page, prefect, "2 — sign-switch (new key signs)", force=False, run_prefix="rotate-phase-2-sign-switch"
    )
    paused = wait_state(prefect, "rotate-phase-2-sign-switch", {"PAUSED"})
    assert keyring(data) == dual  # nothing applied before the approval

    # the runs list, searched by the run's name, then the run's page and its Resume form
    page.goto(f"{prefect}/runs")
    page.get_by_role("searchbox", name="Search by flow run name").fill("rotate-phase-2")
    page.get_by_role("link", name=paused["name"]).first.click()
    expect_text(page.locator("body"), "Paused")
    run_page = page.url
    from playwright.sync_api import TimeoutError as PageTimeout

    for attempt in range(3):  # on the UI's error toast (a 503), or a page that never offers Resume: again
        if attempt:
            page.goto(run_page)
        try:
            page.get_by_role("button", name="Resume").click(timeout=20_000)
        except PageTimeout:  # seen once in a clean-clone run: the paused run's page without its button
            page.screenshot(path=str(shot(f"no-resume-button-{attempt}")), full_page=True)
            continue
        dialog = page.get_by_role("dialog")
        expect_text(dialog, "Plan digest")
        page.screenshot(path=str(shot("approval-form")), full_page=True)
        choose(page, field(dialog, "Decision"), "approve")
        field(dialog, "Approver").locator("textarea").fill(APPROVER)
        field(dialog, "Comment").locator("textarea").fill("browser test")
        dialog.get_by_role("button", name="Submit").click()
        if resumed(page, prefect, paused["id"]):
            break
    else:
        raise AssertionError("the UI did not resume the paused run in three approvals")

    wait_state(prefect, "rotate-phase-2-sign-switch", {"COMPLETED"})
    after = keyring(data)
    assert after["version"] == dual["version"] + 1
    new_kid = after["default_signing_kid"]
    assert new_kid != old_kid and new_kid in {k["kid"] for k in dual["keys"]}
    assert after["history"][-1]["action"] == "sign-switch"
    assert after["history"][-1]["actor"] == APPROVER, after["history"][-1]
    (latest, *_) = rotation_artifacts(prefect)
    assert latest["flow_run_id"] == paused["id"]
    for row in ("| result | applied |", f"| approver | {APPROVER} |", "| comment | browser test |"):
        assert row in latest["data"], latest["data"]
    assert f"| verified signer | `{new_kid}` |" in latest["data"], latest["data"]


def shot(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / f"{name}.png"
